"""Tests for the security decisions a mutation probe could change without the suite noticing
(issue 11). Each one fails under the one-line mutation named in its docstring."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import JsonResponse
from django.test import Client, RequestFactory, override_settings
from django.urls import path
from django.views import View
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

from django_mcp_scopes import declarations
from django_mcp_scopes.mcp import mcp_path, open_to_any_token, requires_scopes
from django_mcp_scopes.mcp.endpoint import INSUFFICIENT_SCOPE, Decision, MCPEndpoint, _Backstop
from django_mcp_scopes.mcp.operations import Operation, OperationScopes
from django_mcp_scopes.mcp.views import MCPView, asgi_scope
from django_mcp_scopes.models import Scope
from django_mcp_scopes.permissions import ScopesRequiredMixin
from django_mcp_scopes.principal import Principal
from django_mcp_scopes.registry import scope_registry
from tests.enforcement_support import make_token
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, ensure_scopes

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
BEARER = "t-read"

_declared_before = set(declarations.declared_scopes())

guarded = MCPServer("mutation-guards", subscriptions=False)


def _publish_for_public(arguments: Any, principal: Any) -> str | None:
    return "entries:publish" if arguments.get("public") else None


@guarded.tool()
@requires_scopes(_publish_for_public, declares=["entries:publish"])
def dynamic_only(public: bool = False) -> str:
    return "done"


@guarded.tool()
@open_to_any_token
def everything_a_tool_sees(ctx: Context) -> str:
    """Everything tool code can reach of the request, as text."""
    token = get_access_token()
    seen = {
        "headers": dict(ctx.headers or {}),
        "sdk_token": token.model_dump() if token is not None else None,
        "request": repr(vars(ctx.request_context.request)) if ctx.request_context.request is not None else None,
    }
    return json.dumps(seen, default=repr)


@guarded.resource("notes://guarded/{note_id}")
@requires_scopes(
    "entries:read", when=lambda arguments, principal: "admin" if arguments.get("note_id") == "secret" else None
)
def guarded_note(note_id: str) -> str:
    return f"note {note_id}"


@guarded.prompt()
@requires_scopes("entries:read")
def guarded_prompt(topic: str) -> str:
    return f"About {topic}"


_deleted: list[str] = []


class ReadOnlyDeclaredView(ScopesRequiredMixin, View):
    """Has a DELETE handler but declares only GET: DELETE must never run."""

    required_scopes_by_method = {"GET": "entries:read"}

    def get(self, request):
        return JsonResponse({"ok": True})

    def delete(self, request):
        _deleted.append("deleted")
        return JsonResponse({"deleted": True})


urlpatterns = [
    *mcp_path("mcp", guarded, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication]),
    path("plain/read-only", ReadOnlyDeclaredView.as_view()),
]

# As in tests/mcp_app.py: the declaration registry is global and other tests expect it untouched.
for _name in set(declarations.declared_scopes()) - _declared_before:
    declarations._forget(_name)

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _scopes():
    ensure_scopes()


def _principal(*granted: str) -> Principal:
    return Principal(user=AnonymousUser(), granted_scopes=frozenset(granted), client_id="c", token_id="tid")


def test_decision_without_principal_refuses_a_tool_with_only_a_dynamic_requirement():
    """Mutation: ``scoped = False`` in ``Decision.allows`` (a dynamic-only tool became open)."""
    operation = Operation("tool", "dynamic_only", OperationScopes(dynamic=_publish_for_public))
    assert not Decision(None, operation).allows(None)
    endpoint = MCPEndpoint(guarded, LISTINGS_OPEN)
    assert not endpoint.decide("tools/call", {"name": "dynamic_only", "arguments": {}}, None).allows(None)
    # With a principal, the dynamic requirement decides.
    assert endpoint.decide("tools/call", {"name": "dynamic_only", "arguments": {}}, _principal()).allows(_principal())


def test_scopes_required_mixin_never_dispatches_an_undeclared_method(client):
    """Mutation: ``ScopesRequiredMixin.check_principal`` lets a method missing from
    ``required_scopes_by_method`` through."""
    _deleted.clear()
    token, _ = make_token("admin entries:write entries:publish", resource=["http://testserver/plain/read-only"])
    response = client.delete("/plain/read-only", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
    assert _deleted == []
    assert client.get("/plain/read-only", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


@pytest.mark.parametrize(
    "origin",
    [
        "https://allowed.example.evil.com",
        "https://allowed.example:8443",
        "https://allowed.exampl",
        "http://allowed.example",
        "http://testserver.evil.com",
        "http://testserve",
        "null",
    ],
)
def test_origin_allowed_compares_whole_origins_never_prefixes(origin):
    """Mutation: a prefix comparison (``startswith``) in ``MCPView.origin_allowed``."""
    request = RequestFactory().post("/mcp")
    with override_settings(MCP_SCOPES={"ALLOWED_ORIGINS": ["https://allowed.example"]}):
        view = MCPView()
        assert view.origin_allowed(request, "https://allowed.example")
        assert view.origin_allowed(request, "http://testserver")
        assert not view.origin_allowed(request, origin)


def test_origin_refused_in_process():
    with override_settings(MCP_SCOPES={"ALLOWED_ORIGINS": ["https://allowed.example"]}):
        response = _post(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}},
            "tools/list",
            HTTP_ORIGIN="https://allowed.example.evil.com",
        )
    assert response.status_code == 403


def _post(body: dict[str, Any], method: str, name: str | None = None, token: str = BEARER, **extra: str):
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_ACCEPT": "application/json, text/event-stream",
        "HTTP_MCP_PROTOCOL_VERSION": MODERN,
        "HTTP_MCP_METHOD": method,
        **extra,
    }
    if name is not None:
        headers["HTTP_MCP_NAME"] = name
    return Client().post("/mcp", data=json.dumps(body), content_type="application/json", **headers)


def test_no_tool_ever_sees_the_bearer_token():
    """Mutation: ``authorization`` removed from the headers ``asgi_scope`` drops before the SDK."""
    request = RequestFactory().post("/mcp", HTTP_AUTHORIZATION=f"Bearer {BEARER}", HTTP_COOKIE="sessionid=abc")
    scope = asgi_scope(request, b"{}", _principal("entries:read"))
    names = {name for name, _ in scope["headers"]}
    assert b"authorization" not in names and b"cookie" not in names
    assert BEARER not in repr(scope)

    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "everything_a_tool_sees", "arguments": {}, "_meta": META},
    }
    response = _post(body, "tools/call", "everything_a_tool_sees")
    assert response.status_code == 200, response.content
    seen = response.json()["result"]["content"][0]["text"]
    assert "sdk_token" in seen
    assert BEARER not in seen
    headers = {name.lower() for name in json.loads(seen)["headers"]}
    assert "mcp-method" in headers  # the tool does see the request's headers
    assert "authorization" not in headers


def test_principal_has_scopes_honours_the_hierarchy_and_inactive_scopes():
    """Mutation: ``has_scopes`` compares against ``granted_scopes`` (raw names)."""
    writer = _principal("entries:write")
    assert writer.has_scopes("entries:read")  # entries:write implies entries:read
    assert writer.has_scopes("entries:write", "entries:read")
    assert not writer.has_scopes("admin")
    Scope.objects.filter(name="entries:write").update(is_active=False)
    scope_registry.invalidate()
    try:
        assert not writer.has_scopes("entries:write")
        assert not writer.has_scopes("entries:read")
    finally:
        Scope.objects.filter(name="entries:write").update(is_active=True)
        scope_registry.invalidate()


@pytest.mark.parametrize(
    "ref",
    [{"type": "ref/prompt", "name": "guarded_prompt"}, {"type": "ref/resource", "uri": "notes://guarded/{note_id}"}],
)
def test_completion_keeps_the_method_default_beside_the_referenced_operation(ref):
    """Mutation: ``decide`` replaces the ``completion/complete`` method default with the referenced
    operation's requirement instead of needing both."""
    endpoint = MCPEndpoint(guarded, {**LISTINGS_OPEN, "completion/complete": "admin"})
    reader = _principal("entries:read")
    decision = endpoint.decide("completion/complete", {"ref": ref, "argument": {"name": "x", "value": ""}}, reader)
    assert decision.requirement is not None
    assert decision.requirement.names == {"admin", "entries:read"}
    assert not decision.allows(reader)
    assert decision.allows(_principal("entries:read", "admin"))


def test_a_resource_templates_dynamic_requirement_sees_the_template_variables():
    """Mutation: ``_arguments`` leaves out the template's variables for ``resources/read``."""
    endpoint = MCPEndpoint(guarded, LISTINGS_OPEN)
    reader = _principal("entries:read")
    ordinary = endpoint.decide("resources/read", {"uri": "notes://guarded/1"}, reader)
    secret = endpoint.decide("resources/read", {"uri": "notes://guarded/secret"}, reader)
    assert ordinary.allows(reader)
    assert secret.requirement is not None and "admin" in secret.requirement.names
    assert not secret.allows(reader)


def test_resources_read_and_prompts_get_scopes_in_process():
    read = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "resources/read",
        "params": {"uri": "notes://guarded/1", "_meta": META},
    }
    assert _post(read, "resources/read", "notes://guarded/1", token="t-none").status_code == 403
    assert _post(read, "resources/read", "notes://guarded/1", token="t-read").status_code == 200
    get = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "prompts/get",
        "params": {"name": "guarded_prompt", "arguments": {"topic": "x"}, "_meta": META},
    }
    assert _post(get, "prompts/get", "guarded_prompt", token="t-none").status_code == 403
    assert _post(get, "prompts/get", "guarded_prompt", token="t-read").status_code == 200


def test_backstop_without_principal_refuses_with_insufficient_scope():
    """Served without a principal (the SDK's own app, stdio), a dynamic-only tool is refused with
    the documented -32003, not an AssertionError (``MCPError(0, '')``)."""
    called = []

    async def call_next(ctx):
        called.append(ctx)
        return {}

    ctx = SimpleNamespace(
        method="tools/call",
        params={"name": "dynamic_only", "arguments": {}},
        request_id=1,
        protocol_version=MODERN,
    )
    with pytest.raises(MCPError) as raised:
        asyncio.run(_Backstop(guarded)(ctx, call_next))
    assert raised.value.error.code == INSUFFICIENT_SCOPE
    assert called == []
