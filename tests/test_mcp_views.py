"""The endpoint view in-process: Django's test client (WSGI path, the per-process loop thread) and
async client (ASGI path, the SDK started lazily on the serving loop)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connections
from django.test import AsyncClient, Client
from django.urls import path
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from django_mcp_scopes.authentication import MCPTokenAuthentication
from django_mcp_scopes.exceptions import AuthServiceUnavailable, InvalidRequest
from django_mcp_scopes.mcp import ALTERNATIVE_SCOPES_META_KEY, REQUIRED_SCOPES_META_KEY, MCPView, mcp_path
from django_mcp_scopes.mcp.endpoint import INSUFFICIENT_SCOPE
from django_mcp_scopes.mcp.urls import MCPURLPattern
from django_mcp_scopes.mcp.views import AsyncMCPView, _Call, asgi_scope
from tests.enforcement_support import make_token
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, ensure_scopes, server

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


class DenyAll(BasePermission):
    message = "Nobody may use this endpoint today."

    def has_permission(self, request, view):
        return False


class TwoAuthorizationHeaders(BaseAuthentication):
    def authenticate(self, request):
        raise InvalidRequest("Send one Authorization header.")


class IntrospectionDown(BaseAuthentication):
    def authenticate(self, request):
        raise AuthServiceUnavailable()


class DatabaseDown(BaseAuthentication):
    def authenticate(self, request):
        raise OperationalError("connection refused")


class ViaDRF(MCPTokenAuthentication):
    """The same class under another name: the view runs it through a DRF request."""


class UncheckedView(MCPView):
    """Skips every scope check in the view, to show the SDK-side backstop on its own."""

    def check_message(self, request, body, principal):
        return _Call(asgi_scope(request, body, principal), body, principal)


def _view(view_class: type[MCPView] = MCPView, **kwargs: Any) -> Any:
    kwargs.setdefault("authentication_classes", [StaticTokenAuthentication])
    kwargs.setdefault("method_scopes", LISTINGS_OPEN)
    return view_class.as_view(server=server, **kwargs)


urlpatterns = [
    *mcp_path("mcp", server, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication]),
    path("deny", _view(permission_classes=[DenyAll])),
    path("two-headers", _view(authentication_classes=[TwoAuthorizationHeaders])),
    path("introspection-down", _view(authentication_classes=[IntrospectionDown])),
    path("db-down", _view(authentication_classes=[DatabaseDown])),
    path("unchecked", _view(UncheckedView)),
    path("dot", _view(authentication_classes=[OAuth2Authentication])),
    path("bearer", _view(authentication_classes=[MCPTokenAuthentication])),
    path("bearer-drf", _view(authentication_classes=[ViaDRF])),
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _scopes():
    ensure_scopes()


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**(params or {}), "_meta": META}}


def headers(token: str | None = "t-read", method: str = "tools/list", name: str | None = None) -> dict[str, str]:
    sent = {
        "HTTP_ACCEPT": "application/json, text/event-stream",
        "HTTP_MCP_PROTOCOL_VERSION": MODERN,
        "HTTP_MCP_METHOD": method,
    }
    if name is not None:
        sent["HTTP_MCP_NAME"] = name
    if token is not None:
        sent["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return sent


def as_headers(meta: dict[str, str]) -> dict[str, str]:
    return {key.removeprefix("HTTP_").replace("_", "-"): value for key, value in meta.items()}


def post(url: str, body: dict[str, Any], **extra: str):
    return Client().post(url, data=json.dumps(body), content_type="application/json", **extra)


def test_listing_carries_required_scopes_in_meta():
    response = post("/mcp", rpc("tools/list"), **headers("t-publish"))
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["cacheScope"] == "private"
    tools = {tool["name"]: tool for tool in result["tools"]}
    assert tools["create_entry"]["_meta"][REQUIRED_SCOPES_META_KEY] == ["entries:write"]
    assert tools["moderate"]["_meta"][REQUIRED_SCOPES_META_KEY] == ["entries:publish", "entries:write"]
    assert tools["moderate"]["_meta"][ALTERNATIVE_SCOPES_META_KEY] == [["admin"], ["entries:publish", "entries:write"]]
    assert "_meta" not in tools["echo"] or REQUIRED_SCOPES_META_KEY not in tools["echo"]["_meta"]


def test_list_all_operations(settings):
    settings.MCP_SCOPES = {"LISTING_POLICY": "all"}
    response = post("/mcp", rpc("tools/list"), **headers("t-none"))
    tools = {tool["name"]: tool for tool in response.json()["result"]["tools"]}
    assert {"create_entry", "moderate", "count_scopes"} <= set(tools)
    assert tools["count_scopes"]["_meta"][REQUIRED_SCOPES_META_KEY] == ["entries:read"]
    # Which alternative the _meta names depends on the token: no shared cache may keep it.
    publisher = post("/mcp", rpc("tools/list"), **headers("t-publish")).json()["result"]
    moderate = {tool["name"]: tool for tool in publisher["tools"]}["moderate"]
    assert moderate["_meta"][REQUIRED_SCOPES_META_KEY] != tools["moderate"]["_meta"][REQUIRED_SCOPES_META_KEY]
    assert response.json()["result"]["cacheScope"] == "private"
    assert publisher["cacheScope"] == "private"
    templates = post("/mcp", rpc("resources/templates/list"), **headers("t-none", "resources/templates/list"))
    assert templates.json()["result"]["resourceTemplates"][0]["uriTemplate"] == "notes://private/{note_id}"


def test_permission_classes_run_like_drf():
    response = post("/deny", rpc("tools/list"), **headers())
    assert response.status_code == 403
    assert response.json()["error_description"] == DenyAll.message
    anonymous = post("/deny", rpc("tools/list"), **headers(None))
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer ")


def test_contract_exceptions_become_challenges():
    malformed = post("/two-headers", rpc("tools/list"), **headers())
    assert malformed.status_code == 401
    assert 'error="invalid_request"' in malformed["WWW-Authenticate"]
    down = post("/introspection-down", rpc("tools/list"), **headers())
    assert down.status_code == 503
    assert int(down["Retry-After"]) > 0
    database = post("/db-down", rpc("tools/list"), **headers())
    assert database.status_code == 503


def test_backstop_refuses_what_the_view_did_not_check():
    body = rpc("tools/call", {"name": "count_scopes", "arguments": {}})
    response = post("/unchecked", body, **headers("t-none", "tools/call", "count_scopes"))
    assert response.json()["error"]["code"] == INSUFFICIENT_SCOPE
    listing = post("/unchecked", rpc("tools/list"), **headers("t-none"))
    assert {tool["name"] for tool in listing.json()["result"]["tools"]} == {"echo", "whoami"}
    allowed = post("/unchecked", body, **headers("t-read", "tools/call", "count_scopes"))
    assert allowed.json()["result"]["structuredContent"]["result"] >= 3


def test_the_view_s_decision_is_not_taken_again_by_the_backstop(monkeypatch):
    from django_mcp_scopes.mcp.endpoint import MCPEndpoint

    decided: list[str] = []
    decide = MCPEndpoint.decide

    def counting(self, method, params, principal):
        decided.append(method)
        return decide(self, method, params, principal)

    monkeypatch.setattr(MCPEndpoint, "decide", counting)
    body = rpc("tools/call", {"name": "count_scopes", "arguments": {}})
    allowed = post("/mcp", body, **headers("t-read", "tools/call", "count_scopes"))
    assert allowed.json()["result"]["structuredContent"]["result"] >= 3
    assert decided == ["tools/call"]  # the view's; the backstop knew this request was cleared
    decided.clear()
    post("/unchecked", body, **headers("t-read", "tools/call", "count_scopes"))
    assert decided == ["tools/call"]  # the view decided nothing: the backstop did


def test_backstop_decides_a_request_cleared_under_another_id_or_params():
    from django_mcp_scopes.mcp import context

    endpoint = next(p for p in urlpatterns if str(p.pattern) == "unchecked").callback.mcp_endpoint
    body = rpc("tools/call", {"name": "count_scopes", "arguments": {}}, request_id=7)
    decided = {"name": "count_scopes", "arguments": {}}
    cases = [(8, decided, True), (7, {**decided, "name": "echo"}, True), (7, decided, False)]
    for cleared_id, params, refused in cases:
        token = context._cleared.set((endpoint, "tools/call", cleared_id, params))
        try:
            response = post("/unchecked", body, **headers("t-none", "tools/call", "count_scopes"))
        finally:
            context._cleared.reset(token)
        assert ("error" in response.json()) is refused


def test_dynamic_requirement_that_raises_is_not_a_pass(monkeypatch):
    from django_mcp_scopes.mcp import operations

    declared = operations.scopes_of(server._tool_manager.get_tool("create_entry").fn)

    def broken(arguments, principal):
        raise KeyError("bug")

    monkeypatch.setattr(type(declared), "resolve", lambda self, arguments, principal: broken(arguments, principal))
    body = rpc("tools/call", {"name": "create_entry", "arguments": {"title": "x"}})
    response = post("/mcp", body, **headers("t-publish", "tools/call", "create_entry"))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == -32603


def test_completion_follows_the_referenced_prompt():
    body = rpc(
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "summarize"}, "argument": {"name": "topic", "value": "c"}},
    )
    denied = post("/mcp", body, **headers("t-none", "completion/complete"))
    assert denied.status_code == 403
    assert 'scope="entries:read"' in denied["WWW-Authenticate"]


def test_django_oauth_toolkit_access_token_is_read_into_a_principal():
    token, row = make_token("entries:write", ["http://testserver/dot"])
    application = row.application
    body = rpc("tools/call", {"name": "whoami", "arguments": {}})
    response = post("/dot", body, **headers(token, "tools/call", "whoami"))
    assert response.status_code == 200, response.content
    who = json.loads(response.json()["result"]["content"][0]["text"])
    assert who["client_id"] == application.client_id
    assert who["scopes"] == ["entries:read", "entries:write"]
    denied = post(
        "/dot",
        rpc("tools/call", {"name": "moderate", "arguments": {"entry": 1}}),
        **headers(token, "tools/call", "moderate"),
    )
    assert denied.status_code == 403


@pytest.mark.parametrize(
    ("scope", "resource"),
    [
        ("oauth2_provider:registration", ["http://testserver/dot"]),  # a DCR registration token
        ("entries:read", []),  # bound to no resource
        ("entries:read", ["http://testserver"]),  # DOT's prefix match would accept it at /dot
        ("entries:read", ["http://testserver/dot-admin"]),
    ],
)
def test_django_oauth_toolkit_tokens_meet_the_same_audience_rules(scope, resource):
    # With DOT's stock OAuth2Authentication the endpoint still refuses what MCPTokenAuthentication
    # refuses: registration tokens, unbound tokens, tokens for another resource.
    token, _row = make_token(scope, resource)
    response = post("/dot", rpc("tools/list"), **headers(token))
    assert response.status_code == 401, response.content
    assert "tools" not in response.content.decode()


@pytest.fixture
def scope_table_down():
    """The database refuses to read the scope table (down, or a failover in progress)."""
    from django_mcp_scopes.registry import scope_registry

    def refuse(execute, sql, params, many, context):
        if "mcp_scopes_scope" in sql:
            raise OperationalError("connection refused")
        return execute(sql, params, many, context)

    scope_registry.invalidate()  # the next question about scopes goes to the database
    with connections["default"].execute_wrapper(refuse):
        yield


@pytest.mark.parametrize(("method", "name"), [("tools/list", None), ("tools/call", "create_entry")])
def test_scope_table_unreadable_is_a_503_not_a_500(scope_table_down, method, name):
    params = {"name": name, "arguments": {"title": "t"}} if name else {}
    response = post("/mcp", rpc(method, params), **headers("t-write", method, name))
    assert response.status_code == 503, response.content
    assert response["Retry-After"]
    assert response.json()["error"] == "temporarily_unavailable"


def test_url_pattern_picks_the_async_view_on_an_event_loop():
    (pattern,) = mcp_path(
        "mcp", server, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication]
    )
    assert isinstance(pattern, MCPURLPattern)
    assert pattern.resolve("mcp").func.view_class is MCPView

    async def resolve_on_loop():
        return pattern.resolve("mcp").func

    assert asyncio.run(resolve_on_loop()).view_class is AsyncMCPView


def test_asgi_path_in_process():
    async def scenario():
        client = AsyncClient()
        answered = await client.post(
            "/mcp",
            json.dumps(rpc("tools/call", {"name": "count_scopes_async", "arguments": {}})),
            content_type="application/json",
            headers=as_headers(headers("t-read", "tools/call", "count_scopes_async")),
        )
        denied = await client.post(
            "/mcp",
            json.dumps(rpc("tools/call", {"name": "create_entry", "arguments": {"title": "x"}})),
            content_type="application/json",
            headers=as_headers(headers("t-read", "tools/call", "create_entry")),
        )
        # The test client keeps Django from closing the connection of its sync thread.
        await sync_to_async(connections.close_all)()
        return answered, denied

    # Two event loops in a row: each starts its own session manager on first use.
    for _ in range(2):
        answered, denied = asyncio.run(scenario())
        assert answered.status_code == 200
        assert answered.json()["result"]["structuredContent"]["result"] >= 3
        assert denied.status_code == 403


def test_a_browser_get_is_told_what_this_url_is():
    response = Client().get("/mcp", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert response["Content-Type"].startswith("text/html")
    assert "Connect an MCP client to this URL" in response.content.decode()
    response = Client().delete("/mcp")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_a_refused_origin_names_the_setting_in_debug_only(settings):
    evil = {"HTTP_ORIGIN": "https://app.example.net"}
    body = post("/mcp", rpc("tools/list"), **headers(), **evil).json()
    assert body["error"]["message"] == "This Origin may not use this endpoint."
    settings.DEBUG = True
    body = post("/mcp", rpc("tools/list"), **headers(), **evil).json()
    assert body["error"]["message"] == (
        'This Origin may not use this endpoint. To allow it, add it to MCP_SCOPES["ALLOWED_ORIGINS"] '
        "(for example 'https://app.example.net')."
    )


def test_pin_builds_the_principal_the_dataclass_would():
    # pin() copies a Principal's state without the dataclass __init__ (on every MCP request): the
    # result must be the very object RequestPrincipal(...) builds, frozen as it is.
    import dataclasses
    from datetime import datetime, timezone
    from types import MappingProxyType

    from django_mcp_scopes.mcp.context import RequestPrincipal, pin
    from django_mcp_scopes.models import Scope
    from django_mcp_scopes.principal import Principal

    read = Scope.objects.create(name="pin:read", description="Read")
    write = Scope.objects.create(name="pin:write", description="Write")
    write.implies.add(read)
    principal = Principal(
        user=object(),
        granted_scopes=frozenset({"pin:write"}),
        application=object(),
        client_id="client",
        expires=datetime(2030, 1, 1, tzinfo=timezone.utc),
        resource="https://example.com/mcp",
        token_id="7",
        extra={"source": "local"},
        claims=MappingProxyType({"sub": "7"}),
    )
    expected = RequestPrincipal(
        **{field.name: getattr(principal, field.name) for field in dataclasses.fields(Principal)},
        pinned_effective_scopes=principal.effective_scopes,
    )
    pinned = pin(principal)
    assert type(pinned) is RequestPrincipal
    assert pinned.__dict__ == expected.__dict__
    assert pinned.effective_scopes == frozenset({"pin:write", "pin:read"})
    assert pinned == expected and pinned.obtainable_scopes is None
    assert pin(pinned) is pinned
    with pytest.raises(dataclasses.FrozenInstanceError):
        pinned.client_id = "another"  # type: ignore[misc]

    @dataclasses.dataclass(frozen=True)
    class Custom(Principal):
        @property
        def effective_scopes(self) -> frozenset[str]:
            return frozenset({"custom"})

    custom = pin(Custom(user=None, granted_scopes=frozenset({"pin:write"})))
    assert type(custom) is RequestPrincipal and custom.effective_scopes == frozenset({"custom"})


BOTH_BEARER_PATHS = ["http://testserver/bearer", "http://testserver/bearer-drf"]


@pytest.mark.parametrize(
    "case", ["valid", "no header", "not bearer", "unknown", "in the query", "expired", "other resource", "db down"]
)
def test_the_default_authentication_answers_as_through_a_drf_request(case, monkeypatch):
    # MCPTokenAuthentication alone is run without a DRF request (the hot path); a subclass of it
    # goes through DRF's. Both must answer every request the same way.
    from django.db.models.query import QuerySet

    token, _ = make_token("entries:read", resource=BOTH_BEARER_PATHS)
    sent = headers(token)
    query = ""
    if case == "no header":
        del sent["HTTP_AUTHORIZATION"]
    elif case == "not bearer":
        sent["HTTP_AUTHORIZATION"] = f"Basic {token}"
    elif case == "unknown":
        sent["HTTP_AUTHORIZATION"] = "Bearer " + "x" * 43
    elif case == "in the query":
        query = f"?access_token={token}"
    elif case == "expired":
        token, _ = make_token("entries:read", resource=BOTH_BEARER_PATHS, expires_in=-60)
        sent = headers(token)
    elif case == "other resource":
        token, _ = make_token("entries:read", resource=["http://testserver/elsewhere"])
        sent = headers(token)
    elif case == "db down":

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise OperationalError("connection refused")

        monkeypatch.setattr(QuerySet, "get", refuse)
        monkeypatch.setattr(QuerySet, "first", refuse)
        monkeypatch.setattr(QuerySet, "__iter__", refuse)
    answers = []
    for url in ("/bearer", "/bearer-drf"):
        response = post(url + query, rpc("tools/list"), **sent)
        challenge = response.headers.get("WWW-Authenticate", "").replace("/bearer-drf", "/bearer")
        answers.append((response.status_code, response.json(), challenge, response.headers.get("Retry-After")))
    assert answers[0] == answers[1]
    expected = {"valid": 200, "db down": 503}.get(case, 401)
    assert answers[0][0] == expected, answers[0]
    if expected == 401:
        assert "resource_metadata=" in answers[0][2]


@pytest.mark.parametrize("case", ["valid", "no header", "unknown", "attached earlier", "forced"])
def test_the_default_authentication_leaves_the_request_as_drf_does(case):
    # What the hot path leaves on the Django request (user, auth, the principal) and what it
    # accepts is what DRF's request leaves and accepts: after a refusal the request is anonymous;
    # a principal attached earlier (an outer require_token) stands without a token.
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory
    from rest_framework import exceptions as drf_exceptions
    from rest_framework.test import force_authenticate

    from django_mcp_scopes.principal import Principal, get_principal, set_principal

    token, row = make_token("entries:read", resource=BOTH_BEARER_PATHS)
    earlier = Principal(user=row.user, granted_scopes=frozenset({"entries:read"}), client_id="outer")

    def request_for(path: str) -> Any:
        sent = headers(token)
        if case in ("no header", "attached earlier", "forced"):
            del sent["HTTP_AUTHORIZATION"]
        elif case == "unknown":
            sent["HTTP_AUTHORIZATION"] = "Bearer " + "x" * 43
        request = RequestFactory().post(path, data=b"{}", content_type="application/json", **sent)
        request.user = row.user  # as a session would have it
        if case == "attached earlier":
            set_principal(request, earlier)
        if case == "forced":
            force_authenticate(request, user=row.user, token=earlier)
        return request

    outcomes = []
    for url, classes in (("/bearer", [MCPTokenAuthentication]), ("/bearer-drf", [ViaDRF])):
        view = MCPView(server=server, authentication_classes=classes, permission_classes=())
        request = request_for(url)
        try:
            principal = view.authenticate(request)
            outcome: Any = ("accepted", principal.client_id, principal.granted_scopes)
        except (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed) as exc:
            outcome = ("refused", type(exc).__name__, str(exc.detail))
        user = request.user
        state = (
            "anonymous" if isinstance(user, AnonymousUser) else getattr(user, "pk", user),
            type(getattr(request, "auth", "unset")).__name__,
            get_principal(request) is not None,
        )
        outcomes.append((outcome, state))
    assert outcomes[0] == outcomes[1]
    accepted = outcomes[0][0][0] == "accepted"
    assert accepted == (case in ("valid", "attached earlier", "forced"))
    if case in ("no header", "unknown"):
        assert outcomes[0][1][0] == "anonymous"


def test_a_lone_surrogate_in_the_id_is_answered_not_a_500():
    # JSON allows "\ud800" in a string; the reply echoes the id as the SDK's transport would
    # (escaped), where pydantic's JSON serialiser refuses a lone surrogate.
    body = json.dumps(rpc("tools/list")).replace('"id": 1', '"id": "\\ud800"')
    assert "\\ud800" in body
    response = Client().post("/mcp", data=body, content_type="application/json", **headers("t-read"))
    assert response.status_code == 200, response.content
    assert response.json()["id"] == "\ud800"
    assert b'"id":"\\ud800"' in response.content


def test_the_header_name_cache_holds_only_short_names_and_never_credentials():
    from django_mcp_scopes.mcp import views as mcp_views

    long_key = "HTTP_X_" + "A" * 200
    assert mcp_views._header_name(long_key) == ("x-" + "a" * 200, ("x-" + "a" * 200).encode())
    assert long_key not in mcp_views._HEADER_NAMES  # a client's long names are not kept
    assert mcp_views._header_name("HTTP_MCP_METHOD") == ("mcp-method", b"mcp-method")
    assert "HTTP_MCP_METHOD" in mcp_views._HEADER_NAMES
    for dropped in ("HTTP_AUTHORIZATION", "HTTP_COOKIE", "CONTENT_LENGTH", "REMOTE_ADDR", "wsgi.input"):
        assert mcp_views._header_name(dropped) is None
        assert mcp_views._header_name(dropped) is None  # and from the cache
