"""Signals and security log lines: emitted once per refusal, never carrying a token."""

from __future__ import annotations

import logging

import pytest

from django_mcp_scopes.signals import scope_denied, token_rejected
from tests.enforcement_support import make_scopes, make_token

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.enforcement_views")]


@pytest.fixture
def received():
    events: list[tuple[str, dict]] = []

    def on_rejected(sender, **kwargs):
        events.append(("token_rejected", kwargs))

    def on_denied(sender, **kwargs):
        events.append(("scope_denied", kwargs))

    token_rejected.connect(on_rejected)
    scope_denied.connect(on_denied)
    yield events
    token_rejected.disconnect(on_rejected)
    scope_denied.disconnect(on_denied)


@pytest.fixture(autouse=True)
def scopes():
    return make_scopes()


@pytest.mark.parametrize(
    ("header", "reason", "error"),
    [
        ("Bearer unknown-token", "unknown_token", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "wrong_scheme", "invalid_request"),
        ("Bearer", "empty_token", "invalid_request"),
        ("Bearer a, Bearer b", "multiple_credentials", "invalid_request"),
    ],
)
def test_token_rejected_signal(client, received, header, reason, error):
    response = client.get("/mcp", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert [name for name, _ in received] == ["token_rejected"]
    event = received[0][1]
    assert event["reason"] == reason
    assert event["error"] == error
    assert event["request"].path == "/mcp"


def test_wrong_resource_and_revoked_reasons(client, received):
    token, _ = make_token(resource=["https://other.example/mcp"])
    client.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert received[-1][1]["reason"] == "wrong_resource"
    token, _ = make_token(resource=[])
    client.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert received[-1][1]["reason"] == "no_resource"


def test_token_in_query_reason(client, received):
    client.get("/mcp?access_token=abc")
    assert received[-1][1]["reason"] == "token_in_query"


def test_no_header_sends_no_signal(client, received):
    assert client.get("/mcp").status_code == 401
    assert received == []


def test_scope_denied_signal_drf(client, received):
    token, _ = make_token("notes:read", resource=["http://testserver/api/by-method"])
    assert client.delete("/api/by-method", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403
    assert [name for name, _ in received] == ["scope_denied"]
    event = received[0][1]
    assert event["required_scopes"] == ["notes:delete", "notes:write"]
    assert event["principal"].granted_scopes == {"notes:read"}
    assert event["request"].path == "/api/by-method"


def test_scope_denied_signal_plain_view(client, received):
    token, _ = make_token("notes:delete", resource=["http://testserver/plain/scoped"])
    assert client.get("/plain/scoped", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403
    assert [(name, kwargs["required_scopes"]) for name, kwargs in received] == [("scope_denied", ["notes:read"])]


def test_composed_permission_passing_sends_no_signal(client, received):
    token, _ = make_token("notes:write", resource=["http://testserver/api/composed-or"])
    assert client.get("/api/composed-or", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert received == []


def test_security_log_lines_never_hold_a_token(client, caplog):
    caplog.set_level(logging.DEBUG)
    token, _ = make_token("notes:read", resource=["http://testserver/api/by-method"])
    other, _ = make_token("notes:read", resource=["https://other.example/mcp"])
    client.delete("/api/by-method", HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {other}")
    client.get(f"/mcp?access_token={other}")
    client.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {other}, Bearer {token}")
    security = [record for record in caplog.records if record.name == "django_mcp_scopes.security"]
    messages = [record.getMessage() for record in security]
    assert any(
        message.startswith("mcp_scope_denied ") and "required=notes:delete,notes:write" in message
        for message in messages
    )
    assert any(
        "mcp_token_rejected reason=wrong_resource error=invalid_token path=/mcp" in message for message in messages
    )
    assert any("reason=token_in_query" in message for message in messages)
    assert all(record.levelno == logging.WARNING for record in security)
    for text in (caplog.text, *messages):
        assert token not in text
        assert other not in text


def test_security_log_lines_cannot_be_forged_through_the_path_or_client_id(caplog):
    # Django decodes the path: "%0A" is a newline that would start a fake log line.
    from types import SimpleNamespace

    from django.test import RequestFactory

    from django_mcp_scopes.signals import report_scope_denied, report_token_rejected

    request = RequestFactory().get("/api/x%0D%0Amcp_scope_denied%20path=/admin")
    principal = SimpleNamespace(client_id="evil\nmcp_token_rejected", granted_scopes=(), extra={}, token_id="")
    with caplog.at_level(logging.WARNING, logger="django_mcp_scopes.security"):
        report_token_rejected(request, reason="unknown_token", error="invalid_token", token_hash=None)
        report_scope_denied(request, principal=principal, required_scopes=["admin"])
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    for line in lines:
        assert "\n" not in line and "\r" not in line
        assert " path=/api/x%0D%0Amcp_scope_denied%20path=/admin " in line
    assert "client_id=evil\\nmcp_token_rejected " in lines[1]
