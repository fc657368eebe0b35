"""Relative links in README.md, SECURITY.md and CHANGELOG.md point at files that exist (GitHub renders them).

Links between the pages of docs/ are checked by `make docs` (mkdocs build --strict).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def relative_links(text: str) -> list[str]:
    return [m["target"] for m in LINK.finditer(text) if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", m["target"])]


@pytest.mark.parametrize("name", ["README.md", "SECURITY.md", "CHANGELOG.md"])
def test_relative_links_resolve(name):
    page = ROOT / name
    missing = [link for link in relative_links(page.read_text()) if not (ROOT / link.split("#")[0]).exists()]
    assert missing == []


def test_the_check_sees_a_broken_link():
    assert relative_links("see [x](docs/nope.md#a) and [y](https://example.com) and [z](#here)") == ["docs/nope.md#a"]
    assert not (ROOT / "docs/nope.md").exists()
