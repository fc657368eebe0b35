"""Listing policies (``MCP_SCOPES["LISTING_POLICY"]``): what ``tools/list`` shows a token, through the
view with real django-oauth-toolkit tokens (WSGI and ASGI paths) and with a token from an external
authorization server (no local application)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connections
from django.test import AsyncClient, Client
from mcp.server.mcpserver import MCPServer

from django_mcp_scopes import declarations
from django_mcp_scopes.backends import DatabaseScopes
from django_mcp_scopes.mcp import REQUIRED_SCOPES_META_KEY, mcp_path, open_to_any_token, requires_scopes
from django_mcp_scopes.mcp.context import RequestPrincipal
from django_mcp_scopes.mcp.endpoint import MCPEndpoint
from django_mcp_scopes.mcp.listing import listing_scopes
from django_mcp_scopes.models import Scope
from django_mcp_scopes.principal import Principal
from tests.enforcement_support import make_application, make_token
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}

_declared_before = set(declarations.declared_scopes())
journal = MCPServer("listing-journal", subscriptions=False)


@journal.tool()
@open_to_any_token
def ping() -> str:
    return "pong"


@journal.tool()
@requires_scopes("notes:read")
def read_note() -> str:
    return "note"


@journal.tool()
@requires_scopes("notes:write")
def write_note() -> str:
    return "written"


@journal.tool()
@requires_scopes("notes:delete")
def delete_note() -> str:
    """notes:delete is active but not advertised."""
    return "deleted"


@journal.tool()
@requires_scopes("notes:archive")
def archive_note() -> str:
    """notes:archive is inactive: no step-up can reach it."""
    return "archived"


@journal.tool()
@requires_scopes("introspection")
def audit() -> str:
    """django-oauth-toolkit's backend never grants introspection to an authorization-code client."""
    return "audited"


for _name in set(declarations.declared_scopes()) - _declared_before:
    declarations._forget(_name)

urlpatterns = [
    *mcp_path("mcp", journal, method_scopes=LISTINGS_OPEN, name="listing"),
    *mcp_path(
        "external/mcp",
        journal,
        method_scopes=LISTINGS_OPEN,
        name="external",
        authentication_classes=[StaticTokenAuthentication],
    ),
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

EVERY_TOOL = {"ping", "read_note", "write_note", "delete_note", "archive_note", "audit"}


class NoWritesForReaders(DatabaseScopes):
    """An authorization server that never grants notes:write to the client named "reader"."""

    def get_available_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any):
        available = super().get_available_scopes(application, request, *args, **kwargs)
        if getattr(application, "name", None) == "reader":
            return [name for name in available if name != "notes:write"]
        return available


class ScopesTableDown(DatabaseScopes):
    def get_available_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any):
        raise OperationalError("connection refused")


@pytest.fixture(autouse=True)
def scopes():
    read = Scope.objects.create(name="notes:read", description="Read notes", is_advertised=True)
    write = Scope.objects.create(name="notes:write", description="Write notes", is_advertised=True)
    Scope.objects.create(name="notes:delete", description="Delete notes")
    Scope.objects.create(name="notes:archive", description="Archive notes", is_active=False)
    Scope.objects.create(name="introspection", description="Introspect tokens")
    write.implies.add(read)


def list_tools(token: str, path: str = "/mcp", *, asgi: bool = False, version: str = MODERN) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META} if version == MODERN else {}}
    headers = {
        "HTTP_ACCEPT": "application/json, text/event-stream",
        "HTTP_MCP_PROTOCOL_VERSION": version,
        "HTTP_AUTHORIZATION": f"Bearer {token}",
    }
    if version == MODERN:
        headers["HTTP_MCP_METHOD"] = "tools/list"
    if asgi:

        async def post() -> Any:
            answer = await AsyncClient().post(
                path,
                json.dumps(body),
                content_type="application/json",
                headers={key.removeprefix("HTTP_").replace("_", "-"): value for key, value in headers.items()},
            )
            # The test client keeps Django from closing the connection of its sync thread.
            await sync_to_async(connections.close_all)()
            return answer

        response = asyncio.run(post())
    else:
        response = Client().post(path, data=json.dumps(body), content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    return response.json()["result"]


def names(result: dict[str, Any]) -> set[str]:
    return {tool["name"] for tool in result["tools"]}


def required(result: dict[str, Any]) -> dict[str, list[str]]:
    return {
        tool["name"]: tool["_meta"][REQUIRED_SCOPES_META_KEY]
        for tool in result["tools"]
        if REQUIRED_SCOPES_META_KEY in tool.get("_meta", {})
    }


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_obtainable_lists_what_step_up_can_reach(asgi):
    token, _ = make_token("notes:read")
    result = list_tools(token, asgi=asgi)
    # notes:delete is active and the authorization server grants it to this client, advertised or
    # not; notes:archive is inactive and introspection is never granted through a consent page.
    assert names(result) == {"ping", "read_note", "write_note", "delete_note"}
    assert required(result) == {
        "read_note": ["notes:read"],
        "write_note": ["notes:write"],
        "delete_note": ["notes:delete"],
    }
    assert result["cacheScope"] == "private"


def test_obtainable_is_the_default_and_strict_lists_only_what_the_token_can_use(settings):
    token, _ = make_token("notes:read")
    assert "write_note" in names(list_tools(token))
    settings.MCP_SCOPES = {"LISTING_POLICY": "strict"}
    strict = list_tools(token)
    assert names(strict) == {"ping", "read_note"}
    assert required(strict) == {"read_note": ["notes:read"]}
    assert strict["cacheScope"] == "private"
    writer, _ = make_token("notes:write")
    # The hierarchy counts: notes:write grants notes:read.
    assert names(list_tools(writer)) == {"ping", "read_note", "write_note"}


def test_all_lists_everything_with_its_scopes(settings):
    settings.MCP_SCOPES = {"LISTING_POLICY": "all"}
    token, _ = make_token("notes:read")
    result = list_tools(token)
    assert names(result) == EVERY_TOOL
    assert required(result)["archive_note"] == ["notes:archive"]
    assert required(result)["audit"] == ["introspection"]
    # The _meta names what the token lacks relative to its own scopes: still private.
    assert result["cacheScope"] == "private"


def test_a_client_that_may_not_get_a_scope_does_not_see_what_needs_it(settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "SCOPES_BACKEND_CLASS": f"{__name__}.NoWritesForReaders"}
    reader, _ = make_token("notes:read", application=make_application("reader"))
    other, _ = make_token("notes:read", application=make_application("editor"))
    assert "write_note" not in names(list_tools(reader))
    assert "delete_note" in names(list_tools(reader))
    assert "write_note" in names(list_tools(other))
    # A reader that holds notes:write anyway (issued before the policy changed) may use it.
    holder, _ = make_token("notes:write", application=make_application("reader"))
    assert "write_note" in names(list_tools(holder))


def test_a_scope_deactivated_after_issue_hides_its_operations():
    token, _ = make_token("notes:read notes:write")
    assert "write_note" in names(list_tools(token))
    Scope.objects.filter(name="notes:write").update(is_active=False)
    from django_mcp_scopes.registry import scope_registry

    scope_registry.invalidate()
    result = list_tools(token)
    assert "write_note" not in names(result)
    assert "read_note" in names(result)  # granted in its own right


def test_external_tokens_may_obtain_what_this_server_advertises():
    # StaticTokenAuthentication: principals without a local application, as from introspection.
    result = list_tools("t-read", "/external/mcp")
    assert names(result) == {"ping", "read_note", "write_note"}
    assert required(result)["write_note"] == ["notes:write"]


def test_legacy_listings_are_filtered_the_same_way():
    token, _ = make_token("notes:read")
    result = list_tools(token, version="2025-06-18")
    assert names(result) == {"ping", "read_note", "write_note", "delete_note"}
    assert "cacheScope" not in result  # a field of the 2026-07-28 revision only


def test_list_all_operations_is_deprecated_for_all_and_strict(settings):
    token, _ = make_token("notes:read")
    settings.MCP_SCOPES = {"LIST_ALL_OPERATIONS": True}
    with pytest.warns(DeprecationWarning, match='LISTING_POLICY"\\] = "all"'):
        assert names(list_tools(token)) == EVERY_TOOL
    settings.MCP_SCOPES = {"LIST_ALL_OPERATIONS": False}
    with pytest.warns(DeprecationWarning, match='LISTING_POLICY"\\] = "strict"'):
        assert names(list_tools(token)) == {"ping", "read_note"}


def test_without_the_view_obtainable_falls_back_to_strict():
    # The backstop alone (the SDK's own app, stdio) never computed what the client could obtain.
    endpoint = MCPEndpoint(journal, LISTINGS_OPEN)
    pinned = RequestPrincipal(
        user=None, granted_scopes=frozenset({"notes:read"}), pinned_effective_scopes=frozenset({"notes:read"})
    )
    assert listing_scopes("obtainable", pinned) == frozenset({"notes:read"})
    plain = Principal(user=None, granted_scopes=frozenset())
    assert listing_scopes("obtainable", plain) == frozenset()
    assert listing_scopes("obtainable", None) == frozenset()
    assert listing_scopes("all", None) is None
    result: dict[str, Any] = {"tools": [{"name": "write_note", "inputSchema": {}}]}
    endpoint.filter_listing("tools/list", result, pinned, MODERN)
    assert result == {"tools": [], "cacheScope": "private"}


def test_when_the_authorization_server_cannot_be_asked_the_listing_answers_503(settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "SCOPES_BACKEND_CLASS": f"{__name__}.ScopesTableDown"}
    token, _ = make_token("notes:read")
    response = Client().post(
        "/mcp",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}),
        content_type="application/json",
        HTTP_ACCEPT="application/json, text/event-stream",
        HTTP_MCP_PROTOCOL_VERSION=MODERN,
        HTTP_MCP_METHOD="tools/list",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
