"""docs/settings.md documents every settings key, with the default the code uses, and nothing else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from django_mcp_scopes.conf import DEFAULTS, ISSUER_DEFAULTS
from django_mcp_scopes.oauth.conf import DEFAULTS as OAUTH_DEFAULTS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
ROW = re.compile(r"^\| `(?P<key>[A-Z][A-Z0-9_]*)` \| (?P<type>[^|]+) \| (?P<default>[^|]+) \|", re.MULTILINE)


def documented(heading: str) -> dict[str, str]:
    """``{key: default cell}`` of the tables in the page's section with this ``## `` heading."""
    text = PAGE.read_text()
    start = text.index(f"\n## {heading}\n")
    following = text.find("\n## ", start + 1)
    body = text[start : following if following != -1 else len(text)]
    return {match["key"]: match["default"].strip() for match in ROW.finditer(body)}


SECTIONS = [
    pytest.param("`MCP_SCOPES`", DEFAULTS, id="MCP_SCOPES"),
    pytest.param("`JWT_ISSUERS` entries", ISSUER_DEFAULTS, id="JWT_ISSUERS"),
    pytest.param("`MCP_SCOPES_OAUTH`", OAUTH_DEFAULTS, id="MCP_SCOPES_OAUTH"),
]


@pytest.mark.parametrize(("section", "defaults"), SECTIONS)
def test_every_key_is_documented_and_no_other(section, defaults):
    rows = documented(section)
    assert sorted(set(defaults) - set(rows)) == [], f"add these keys to docs/settings.md, {section}"
    assert sorted(set(rows) - set(defaults)) == [], f"docs/settings.md, {section}, documents keys the code lacks"


@pytest.mark.parametrize(("section", "defaults"), SECTIONS)
def test_documented_defaults_are_the_code_defaults(section, defaults):
    for key, cell in documented(section).items():
        if cell == "required":
            assert defaults[key] is None, key
            continue
        assert cell.startswith("`") and cell.endswith("`"), f"{key}: write the default as `literal`"
        assert ast.literal_eval(cell.strip("`")) == defaults[key], key


def test_the_check_finds_a_missing_key(tmp_path, monkeypatch):
    """The test above can fail: a page without one key's row is caught."""
    text = PAGE.read_text()
    trimmed = tmp_path / "settings.md"
    trimmed.write_text("\n".join(line for line in text.splitlines() if not line.startswith("| `MAX_BODY_BYTES`")))
    monkeypatch.setattr(__import__(__name__, fromlist=["PAGE"]), "PAGE", trimmed)
    assert "MAX_BODY_BYTES" not in documented("`MCP_SCOPES`")
    assert "MAX_BODY_BYTES" in DEFAULTS
