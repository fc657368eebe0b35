"""``manage.py mcp_scopes usage`` and ``mcp_scopes refusals``: what they print, and malformed arguments."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_mcp_scopes.models import Refusal, Scope
from tests.enforcement_support import make_application, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_refusals_from_earlier_tests():
    """Live servers of earlier tests write their refusals after the response, possibly after
    their test's database flush: start from an empty record."""
    Refusal.objects.all().delete()


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("mcp_scopes", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def hierarchy():
    read = Scope.objects.create(name="entries:read")
    write = Scope.objects.create(name="entries:write")
    Scope.objects.create(name="unused")
    write.implies.add(read)


def test_usage_counts_live_tokens_directly_and_through_the_hierarchy_by_client(hierarchy):
    claude = make_application(name="Claude")
    make_token("entries:write", application=claude)
    make_token("entries:write", application=claude)
    make_token("entries:read", application=make_application(name="Other"))
    make_token("entries:read", application=claude, expires_in=-5)  # expired
    out, _ = run("usage")
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["SCOPE", "DIRECT", "THROUGH", "HIERARCHY", "CLIENTS", "(direct+through)"]
    assert lines[1:] == [
        ["entries:read", "1", "2", "Claude=0+2,", "Other=1+0"],
        ["entries:write", "2", "0", "Claude=2+0"],
        ["unused", "0", "0", "-"],
    ]
    out, _ = run("usage", "--scope", "entries:read", "--limit", "1")
    assert out.splitlines()[1].split() == ["entries:read", "1", "2", "Claude=0+2,", "...", "1", "more"]


def test_usage_of_a_token_whose_scope_is_inactive_is_direct_only(hierarchy):
    Scope.objects.filter(name="entries:write").update(is_active=False)
    make_token("entries:write")
    out, _ = run("usage")
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:]}
    assert rows["entries:write"] == ["1", "0"]
    assert rows["entries:read"] == ["0", "0"]  # an inactive scope passes nothing on


def test_usage_empty_states(monkeypatch):
    out, _ = run("usage")
    assert out.strip() == "No scopes in the database and no live token holds any scope."
    monkeypatch.setattr("django_mcp_scopes.usage.tokens_available", lambda: False)
    out, _ = run("usage")
    assert out.strip() == "django-oauth-toolkit is not installed: there is no token table to count."


def test_usage_of_an_unknown_scope_is_an_error(hierarchy):
    with pytest.raises(CommandError, match="Unknown scope 'nope'"):
        run("usage", "--scope", "nope")


@pytest.fixture
def recorded():
    now = timezone.now()
    Refusal.objects.create(
        created_at=now - timedelta(hours=3), kind="invalid_token", reason="unknown_token", endpoint="/mcp"
    )
    Refusal.objects.create(
        created_at=now - timedelta(minutes=5),
        kind="insufficient_scope",
        reason="insufficient_scope",
        operation="tools/call create_entry",
        endpoint="/mcp",
        client_id="cid-1",
        missing_scopes="entries:write",
    )
    Refusal.objects.create(
        created_at=now - timedelta(minutes=1),
        kind="rate_limited",
        reason="rate_limited",
        operation="GET /api/x\x1b[2J",
        endpoint="/api/x",
        client_id="cid-2",
    )


def test_refusals_newest_first_with_since_limit_and_kind(recorded):
    out, _ = run("refusals")
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "KIND", "REASON", "CLIENT", "OPERATION", "ENDPOINT", "MISSING"]
    assert [line.split()[1] for line in lines[1:]] == ["rate_limited", "insufficient_scope", "invalid_token"]
    assert "tools/call create_entry" in lines[2] and "entries:write" in lines[2] and "cid-1" in lines[2]
    assert "\x1b" not in out and "\\x1b[2J" in out  # recorded text cannot drive the terminal
    out, _ = run("refusals", "--since", "1h")
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["rate_limited", "insufficient_scope"]
    out, _ = run("refusals", "--since", "1h", "--limit", "1")
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["rate_limited"]
    out, _ = run("refusals", "--kind", "invalid_token")
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["invalid_token"]
    iso = (timezone.now() - timedelta(minutes=3)).isoformat()
    out, _ = run("refusals", "--since", iso)
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["rate_limited"]
    naive = timezone.localtime(timezone.now() - timedelta(minutes=3)).replace(tzinfo=None).isoformat()
    out, _ = run("refusals", "--since", naive)
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["rate_limited"]


def test_refusals_empty_states(settings):
    out, err = run("refusals")
    assert out.strip() == "No refusals recorded."
    assert err == ""
    out, _ = run("refusals", "--since", "2d")
    assert out.startswith("No refusals recorded since ")
    settings.MCP_SCOPES = {"REFUSAL_LOG": False}
    _, err = run("refusals")
    assert 'MCP_SCOPES["REFUSAL_LOG"] is False' in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "abc"], "neither a duration"),
        (["--since=-1h"], "neither a duration"),
        (["--since", "1y"], "neither a duration"),
        (["--since", "1.5h"], "neither a duration"),
        (["--since", ""], "neither a duration"),
        (["--since", "2026-13-45T99:00"], "neither a duration"),
        (["--since", "999999999w"], "reaches back too far"),
        (["--limit", "0"], "not a whole number from 1 to 10000"),
        (["--limit=-3"], "not a whole number from 1 to 10000"),
        (["--limit", "x"], "not a whole number from 1 to 10000"),
        (["--limit", "10001"], "not a whole number from 1 to 10000"),
        (["--kind", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_refusals_malformed_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        run("refusals", *args)


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "many"], ["--scope"]])
def test_usage_malformed_arguments(args):
    with pytest.raises(CommandError):
        run("usage", *args)


def test_a_malformed_argument_exits_non_zero_from_the_shell():
    result = subprocess.run(
        [sys.executable, "-m", "django", "mcp_scopes", "refusals", "--since", "soon", "--settings=tests.settings"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "neither a duration" in result.stderr
