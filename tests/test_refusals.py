"""The record of recent refusals: written from the refusal signals after the response, bounded,
pruned, never a token, never an error for the request; shown read-only in the admin."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from django_mcp_scopes import refusals
from django_mcp_scopes.models import Refusal, Scope
from tests.enforcement_support import make_application, make_token

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("example_project.urls"),
    pytest.mark.usefixtures("journal_declarations", "empty_refusal_record"),
]

API = "/api/entries"
API_RESOURCE = "http://testserver/api/entries"
MCP_RESOURCE = "http://testserver/mcp"
MODERN = "2026-07-28"


@pytest.fixture(autouse=True)
def demo():
    call_command("setup_demo", "--no-admin", verbosity=0, stdout=None)


def fields(refusal: Refusal) -> list[str]:
    return [
        refusal.kind,
        refusal.reason,
        refusal.operation,
        refusal.endpoint,
        refusal.client_id,
        refusal.missing_scopes,
    ]


def call_tool(client: Client, token: str, name: str, arguments: dict):
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}},
    }
    return client.post(
        "/mcp",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT="application/json, text/event-stream",
        HTTP_MCP_PROTOCOL_VERSION=MODERN,
        HTTP_MCP_METHOD="tools/call",
        HTTP_MCP_NAME=name,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_an_unknown_token_is_recorded_without_the_token(client):
    token = "not-a-real-token-abcdefghijklmnop"
    assert client.get(API, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    refusal = Refusal.objects.get()
    assert (refusal.kind, refusal.operation, refusal.endpoint, refusal.client_id) == (
        "invalid_token",
        "GET /api/entries",
        "/api/entries",
        "",
    )
    assert refusal.reason
    assert not any(token in value or token[:12] in value for value in fields(refusal))


def test_a_malformed_header_is_an_invalid_request(client):
    assert client.get(API, HTTP_AUTHORIZATION="Bearer a b").status_code in (400, 401)
    assert Refusal.objects.get().kind == "invalid_request"


def test_a_drf_scope_denial_names_the_operation_client_and_missing_scope(client):
    app = make_application(name="Claude")
    token, _ = make_token("entries:read", [API_RESOURCE], application=app)
    response = client.post(API, {"title": "t"}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    refusal = Refusal.objects.get()
    assert fields(refusal) == [
        "insufficient_scope",
        "insufficient_scope",
        "POST /api/entries",
        "/api/entries",
        app.client_id,
        "entries:write",
    ]
    assert not any(token[:12] in value for value in fields(refusal))


def test_an_mcp_scope_denial_names_the_tool(client):
    app = make_application(name="Claude")
    token, _ = make_token("entries:read", [MCP_RESOURCE], application=app)
    response = call_tool(client, token, "create_entry", {"title": "t", "content": "c"})
    assert response.status_code == 403
    refusal = Refusal.objects.get()
    assert (refusal.kind, refusal.operation, refusal.endpoint, refusal.client_id, refusal.missing_scopes) == (
        "insufficient_scope",
        "tools/call create_entry",
        "/mcp",
        app.client_id,
        "entries:write",
    )


def test_a_token_holding_an_inactive_scope_is_told_apart(client):
    Scope.objects.filter(name="entries:write").update(is_active=False)
    token, _ = make_token("entries:write", [API_RESOURCE])
    assert (
        client.post(API, {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403
    )
    refusal = Refusal.objects.get()
    assert (refusal.kind, refusal.missing_scopes) == ("inactive_scope", "entries:write")


def test_a_rate_limited_request_is_recorded(client, settings):
    settings.MCP_SCOPES = {"RATE_LIMITS": [{"rate": "1/minute", "per": "token", "operations": ["GET /api/entries"]}]}
    token, _ = make_token("entries:read", [API_RESOURCE])
    assert client.get(API, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert client.get(API, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 429
    refusal = Refusal.objects.get()
    assert (refusal.kind, refusal.operation) == ("rate_limited", "GET /api/entries")


def test_an_mcp_rate_limit_is_recorded_with_the_tool(client, settings):
    settings.MCP_SCOPES = {"RATE_LIMITS": [{"rate": "1/minute", "per": "token", "operations": ["tools/call"]}]}
    token, _ = make_token("entries:read", [MCP_RESOURCE])
    call_tool(client, token, "list_entries", {})
    assert call_tool(client, token, "list_entries", {}).status_code == 429
    assert Refusal.objects.get().operation == "tools/call list_entries"


def test_nothing_is_written_during_the_request_only_after_it(client):
    """The receivers only queue: the write happens on request_finished, in one batch."""
    from django.test import RequestFactory

    from django_mcp_scopes.authentication import authenticate_request
    from django_mcp_scopes.exceptions import TokenError

    request = RequestFactory().get(API, HTTP_AUTHORIZATION="Bearer nope-nope-nope")
    with pytest.raises(TokenError):
        authenticate_request(request)
    assert refusals.pending() == 1
    assert not Refusal.objects.exists()
    assert refusals.flush() == 1
    assert refusals.pending() == 0
    assert Refusal.objects.count() == 1
    assert refusals.flush() == 0


def test_turned_off_nothing_is_recorded(client, settings):
    settings.MCP_SCOPES = {"REFUSAL_LOG": False}
    assert client.get(API, HTTP_AUTHORIZATION="Bearer unknown-token-1234567").status_code == 401
    assert refusals.pending() == 0
    assert not Refusal.objects.exists()


def test_the_record_is_pruned_to_the_newest(client, settings):
    settings.MCP_SCOPES = {"REFUSAL_LOG_MAX": 3}
    for number in range(5):
        client.get(f"{API}?n={number}", HTTP_AUTHORIZATION=f"Bearer unknown-token-{number:020d}")
    refusals.flush()  # the requests after the first wait for the next write (FLUSH_INTERVAL_SECONDS)
    assert Refusal.objects.count() == 3
    oldest_kept = Refusal.objects.order_by("id").first()
    assert oldest_kept.id == max(Refusal.objects.values_list("id", flat=True)) - 2


def test_a_flood_of_refused_requests_is_written_once_a_second_not_once_per_request(client, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for number in range(3):
        client.get(API, HTTP_AUTHORIZATION=f"Bearer unknown-token-{number:020d}")
    assert Refusal.objects.count() == 1  # the first finished request wrote; the others wait
    assert refusals.pending() == 2
    with CaptureQueriesContext(connection) as queries:
        for number in range(3, 20):
            client.get(API, HTTP_AUTHORIZATION=f"Bearer unknown-token-{number:020d}")
    assert not any("mcp_scopes_refusal" in query["sql"] for query in queries.captured_queries)
    assert refusals.pending() == 19
    # Once the interval has passed, the next finished request writes them all in one batch.
    monkeypatch.setattr(refusals, "FLUSH_INTERVAL_SECONDS", 0.0)
    client.get(API, HTTP_AUTHORIZATION="Bearer unknown-token-last-one-000000")
    assert refusals.pending() == 0
    assert Refusal.objects.count() == 21
    # A batch that is full is written at once, whatever the time.
    monkeypatch.setattr(refusals, "FLUSH_INTERVAL_SECONDS", 3600.0)
    monkeypatch.setattr(refusals, "FLUSH_BATCH", 2)
    client.get(API, HTTP_AUTHORIZATION="Bearer unknown-token-batch-0000000001")
    assert refusals.pending() == 1
    client.get(API, HTTP_AUTHORIZATION="Bearer unknown-token-batch-0000000002")
    assert refusals.pending() == 0
    assert Refusal.objects.count() == 23


def test_a_flood_is_bounded_in_memory(caplog):
    from django.test import RequestFactory

    request = RequestFactory().get(API)
    for _ in range(refusals.QUEUE_LIMIT + 5):
        refusals._on_token_rejected(request=request, reason="unknown_token", error="invalid_token")
    assert refusals.pending() == refusals.QUEUE_LIMIT
    with caplog.at_level(logging.WARNING, logger="django_mcp_scopes.refusals"):
        assert refusals.flush() == refusals.QUEUE_LIMIT
    assert "5 refusals were not recorded" in caplog.text


def test_a_missing_table_never_fails_the_request(client, caplog):
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute(f"DROP TABLE {Refusal._meta.db_table}")
    with caplog.at_level(logging.WARNING, logger="django_mcp_scopes.refusals"):
        response = client.get(API, HTTP_AUTHORIZATION="Bearer unknown-token-1234567")
        token, _ = make_token("entries:read", [API_RESOURCE])
        listed = client.get(API, HTTP_AUTHORIZATION=f"Bearer {token}")  # the connection still works
    assert response.status_code == 401
    assert listed.status_code == 200
    assert "1 refusals could not be recorded" in caplog.text
    assert "unknown-token" not in caplog.text.split("could not be recorded", 1)[1]
    assert refusals.pending() == 0


def test_a_locked_sqlite_database_never_fails_the_request(caplog, tmp_path, settings):
    """A real lock: another connection holds the write lock on a separate SQLite file."""
    import sqlite3

    from django.db import connections
    from django.db.utils import ConnectionHandler

    if connection.vendor != "sqlite":
        pytest.skip("SQLite locking")
    path = tmp_path / "locked.sqlite3"
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": {"timeout": 0.1}}}
    )
    other = handler["default"]
    with other.schema_editor() as editor:
        editor.create_model(Refusal)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        from django.test import RequestFactory

        refusals._on_token_rejected(request=RequestFactory().get(API), reason="unknown_token", error="invalid_token")
        original = connections._connections.default
        connections._connections.default = other
        try:
            with caplog.at_level(logging.WARNING, logger="django_mcp_scopes.refusals"):
                assert refusals.flush() == 0
        finally:
            connections._connections.default = original
    finally:
        holder.rollback()
        holder.close()
        other.close()
    assert "OperationalError" in caplog.text and "locked" in caplog.text


# the admin -------------------------------------------------------------------------------------------


@pytest.fixture
def refusal():
    from django.utils import timezone

    return Refusal.objects.create(
        created_at=timezone.now(),
        kind="insufficient_scope",
        reason="insufficient_scope",
        operation="tools/call <b>x</b>",
        endpoint="/mcp",
        client_id="cid",
        missing_scopes="entries:write",
    )


def test_the_admin_lists_refusals_read_only(admin_client, refusal):
    changelist = admin_client.get(reverse("admin:mcp_scopes_refusal_changelist"))
    assert changelist.status_code == 200
    html = changelist.content.decode()
    assert "tools/call &lt;b&gt;x&lt;/b&gt;" in html
    assert "Add refusal" not in html
    assert admin_client.get(reverse("admin:mcp_scopes_refusal_add")).status_code == 403
    change_url = reverse("admin:mcp_scopes_refusal_change", args=[refusal.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(change_url, {"kind": "rate_limited"}).status_code == 403
    refusal.refresh_from_db()
    assert refusal.kind == "insufficient_scope"
    assert admin_client.get(reverse("admin:mcp_scopes_refusal_changelist"), {"q": "entries:write"}).status_code == 200
    assert (
        admin_client.get(reverse("admin:mcp_scopes_refusal_changelist"), {"kind__exact": "rate_limited"})
        .context["cl"]
        .result_count
        == 0
    )


def test_the_refusals_empty_state(admin_client):
    html = admin_client.get(reverse("admin:mcp_scopes_refusal_changelist")).content.decode()
    assert "0 refusals" in html


def test_refusals_need_the_view_permission(client, django_user_model, refusal):
    url = reverse("admin:mcp_scopes_refusal_changelist")
    user = django_user_model.objects.create_user("staff", "s@example.com", "pw", is_staff=True)
    client.force_login(user)
    assert client.get(url).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_refusal"))
    assert client.get(url).status_code == 200
    client.force_login(django_user_model.objects.create_user("plain", "p@example.com", "pw"))
    assert client.get(url)["Location"].startswith("/admin/login/")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"REFUSAL_LOG_MAX": 0}, "REFUSAL_LOG_MAX"),
        ({"REFUSAL_LOG_MAX": "100"}, "REFUSAL_LOG_MAX"),
        ({"REFUSAL_LOG_MAX": True}, "REFUSAL_LOG_MAX"),
        ({"REFUSAL_LOG": "yes"}, "REFUSAL_LOG"),
    ],
)
def test_malformed_settings_fail_the_checks(settings, value, message):
    from django.core.management import CommandError

    settings.MCP_SCOPES = value
    with pytest.raises(CommandError) as excinfo:
        call_command("check")
    assert "mcp_scopes.E001" in str(excinfo.value) and message in str(excinfo.value)


def test_a_malformed_setting_never_fails_a_request(client, settings):
    settings.MCP_SCOPES = {"REFUSAL_LOG": "yes"}
    assert client.get(API, HTTP_AUTHORIZATION="Bearer unknown-token-1234567").status_code == 401
    assert not Refusal.objects.exists()


def test_the_endpoint_is_the_url_pattern_not_the_path(client):
    """A path may carry personal data (a user name, an e-mail); the matched pattern does not."""
    from django.test import RequestFactory
    from django.urls import resolve

    request = RequestFactory().get("/api/entries")
    request.resolver_match = resolve("/api/entries")
    request.resolver_match.route = "api/users/<str:username>"
    refusals._on_token_rejected(request=request, reason="unknown_token", error="invalid_token")
    unmatched = RequestFactory().get("/nowhere/alice")
    refusals._on_token_rejected(request=unmatched, reason="unknown_token", error="invalid_token")
    refusals.flush()
    assert sorted(Refusal.objects.values_list("endpoint", flat=True)) == ["/api/users/<str:username>", "/nowhere/alice"]
