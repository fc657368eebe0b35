"""The hot path (``django_mcp_scopes.mcp.sdk_direct``): answers identical to the SDK's transport,
taken when it can be, the transport when it cannot, and no query with a warm token.

The first tests pin what the hot path relies on in the installed SDK: when an SDK release changes
it, they fail here, loudly, before anything subtler does.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.utils import CursorWrapper
from django.test import AsyncClient, Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import path

from django_mcp_scopes.authentication import _LazyUser
from django_mcp_scopes.mcp import mcp_path, sdk_direct
from django_mcp_scopes.mcp import views as mcp_views
from django_mcp_scopes.mcp.bridge import SDKBridge, run_in_loop_thread
from django_mcp_scopes.mcp.context import pin
from django_mcp_scopes.mcp.endpoint import INSUFFICIENT_SCOPE
from django_mcp_scopes.mcp.views import MCPView, asgi_scope
from django_mcp_scopes.principal import Principal
from django_mcp_scopes.token_cache import token_cache
from tests.enforcement_support import make_token
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, ensure_scopes, server

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}

_static = mcp_path("static/mcp", server, name="static", method_scopes=LISTINGS_OPEN,
                   authentication_classes=[StaticTokenAuthentication])  # fmt: skip
urlpatterns = [
    # The default authentication: django-oauth-toolkit tokens bound to http://testserver/mcp.
    *mcp_path("mcp", server, method_scopes=LISTINGS_OPEN),
    *_static,
]


class UncheckedView(MCPView):
    """Skips every scope check in the view, to show the SDK-side backstop on the hot path."""

    def check_message(self, request, body, principal):
        return mcp_views._Call(asgi_scope(request, body, principal), body, principal)


urlpatterns.append(
    path(
        "unchecked",
        UncheckedView.as_view(
            server=server, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication]
        ),
    )
)
ENDPOINT = _static[0].mcp_endpoint

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _scopes(settings):
    # Long windows, so a slow test machine sees the epochs and entries it just warmed.
    settings.MCP_SCOPES = {"REGISTRY_REFRESH_SECONDS": 60, "TOKEN_LOCAL_CACHE_SECONDS": 60}
    ensure_scopes()
    token_cache.clear_local()


# --- what the hot path relies on in the SDK --------------------------------------------------


def test_the_installed_sdk_is_a_release_the_hot_path_was_checked_against():
    version = importlib.metadata.version("mcp")
    assert version in sdk_direct.CHECKED_SDK_VERSIONS, (
        f"mcp {version} is installed; django_mcp_scopes/mcp/sdk_direct.py was checked against "
        f"{sorted(sdk_direct.CHECKED_SDK_VERSIONS)}. Check its private parts and this file's comparisons "
        "against the new release, then add it to CHECKED_SDK_VERSIONS."
    )
    assert sdk_direct.sdk_checked()


def test_a_running_session_manager_holds_the_lifespan_state_the_hot_path_reads():
    async def read() -> tuple[Any, Any]:
        manager = await ENDPOINT.bridge.manager()
        return manager, sdk_direct.lifespan_state(manager)

    manager, state = run_in_loop_thread(read())
    assert "_lifespan_state" in vars(manager), "StreamableHTTPSessionManager no longer keeps _lifespan_state"
    assert manager._task_group is not None  # running
    assert state is not None


# --- the same answers as the SDK's transport -------------------------------------------------


def _modern(method: str, params: dict[str, Any] | None = None, name: str | None = None) -> tuple[dict, dict]:
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**(params or {}), "_meta": META}}
    return headers, message


def _legacy(method: str, params: dict[str, Any] | None = None, *, version: str | None = LEGACY) -> tuple[dict, dict]:
    headers = {"Accept": "application/json, text/event-stream"}
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": "a-1", "method": method}
    if params is not None:
        message["params"] = params
    return headers, message


INITIALIZE = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
CASES = {
    "modern tools/call": _modern("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, "echo"),
    "modern sync tool reading the principal": _modern("tools/call", {"name": "whoami", "arguments": {}}, "whoami"),
    "modern async tool": _modern("tools/call", {"name": "count_scopes_async", "arguments": {}}, "count_scopes_async"),
    "modern bad arguments": _modern("tools/call", {"name": "echo", "arguments": {"text": {"x": 1}}}, "echo"),
    "modern unknown tool": _modern("tools/call", {"name": "nope", "arguments": {}}, "nope"),
    "modern tools/list": _modern("tools/list"),
    "modern resources/read": _modern("resources/read", {"uri": "notes://public"}, "notes://public"),
    "modern unknown resource": _modern("resources/read", {"uri": "notes://nope"}, "notes://nope"),
    "modern prompts/get": _modern("prompts/get", {"name": "greet", "arguments": {"name": "x"}}, "greet"),
    "modern prompt argument missing": _modern("prompts/get", {"name": "greet", "arguments": {}}, "greet"),
    "modern unknown method": _modern("nothing/here"),
    "modern server/discover": _modern("server/discover"),
    "modern without _meta": (_modern("tools/list")[0], {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    "modern notification": (
        _modern("notifications/cancelled")[0],
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
    ),
    "modern backstop refusal": _modern(
        "tools/call", {"name": "create_entry", "arguments": {"title": "x"}}, "create_entry"
    ),
    "legacy initialize": _legacy("initialize", INITIALIZE),
    "legacy tools/call": _legacy("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
    "legacy tools/list": _legacy("tools/list", {}),
    "legacy ping": _legacy("ping"),
    "legacy unknown method": _legacy("nothing/here", {}),
    "legacy invalid params": _legacy("tools/call", {"arguments": {}}),
    "legacy prompt argument missing": _legacy("prompts/get", {"name": "greet", "arguments": {}}),
    "legacy unknown resource": _legacy("resources/read", {"uri": "notes://nope"}),
    "no version header": _legacy("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, version=None),
    "legacy notification": (
        _legacy("x")[0],
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ),
    "legacy backstop refusal": _legacy("tools/call", {"name": "create_entry", "arguments": {"title": "x"}}),
}


def _exchange(headers: dict[str, str], message: dict[str, Any]) -> tuple[dict, bytes, Any]:
    body = json.dumps(message).encode()
    meta = {f"HTTP_{key.upper().replace('-', '_')}": value for key, value in headers.items()}
    request = RequestFactory().post("/static/mcp", data=body, content_type="application/json", **meta)
    principal = pin(Principal(user=None, granted_scopes=frozenset({"entries:read"}), client_id="c", token_id="1"))
    return asgi_scope(request, body, principal), body, principal


def _answer(response: Any) -> tuple[int, Any, str | None]:
    headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in response.headers}
    return response.status, json.loads(response.body) if response.body else None, headers.get("content-type")


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_hot_path_answers_as_the_sdk_transport_does(case):
    headers, message = CASES[case]
    scope, body, principal = _exchange(headers, message)

    async def both() -> tuple[Any, Any]:
        manager = await ENDPOINT.bridge.manager()
        lowered = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        direct = await sdk_direct.answer(manager, server, message, lowered, scope, principal, ENDPOINT)
        transport = await ENDPOINT.bridge.handle(scope, body, principal, ENDPOINT)
        return direct, transport

    direct, transport = run_in_loop_thread(both())
    assert direct is not None, "the hot path should serve this exchange"
    assert _answer(direct) == _answer(transport)
    if "backstop" in case:
        assert _answer(direct)[1]["error"]["code"] == INSUFFICIENT_SCOPE


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        # The transport's 406: this JSON endpoint's client must accept JSON.
        ({"Accept": "text/event-stream", "MCP-Protocol-Version": MODERN}, _modern("tools/list")[1]),
        ({"Accept": "text/html"}, _legacy("tools/list", {})[1]),
        # A handshake-era envelope the SDK refuses: its 400 names what pydantic found.
        (_legacy("x")[0], {"jsonrpc": "1.0", "id": 1, "method": "tools/list"}),
    ],
)
def test_what_the_hot_path_leaves_to_the_transport(headers, message):
    scope, _body, principal = _exchange(headers, message)

    async def direct() -> Any:
        manager = await ENDPOINT.bridge.manager()
        lowered = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        return await sdk_direct.answer(manager, server, message, lowered, scope, principal, ENDPOINT)

    assert run_in_loop_thread(direct()) is None


# --- which path a request takes --------------------------------------------------------------


@pytest.fixture
def transport_calls(monkeypatch):
    calls: list[str] = []
    handle = SDKBridge.handle

    async def counted(self, *args: Any) -> Any:
        calls.append("transport")
        return await handle(self, *args)

    monkeypatch.setattr(SDKBridge, "handle", counted)
    return calls


def _post(client: Client, url: str, message: dict, headers: dict[str, str], token: str) -> Any:
    return client.post(
        url,
        json.dumps(message),
        content_type="application/json",
        headers={**headers, "Authorization": f"Bearer {token}"},
    )


def test_wsgi_requests_take_the_hot_path(transport_calls):
    for headers, message in (CASES["modern tools/call"], CASES["legacy initialize"], CASES["legacy notification"]):
        response = _post(Client(), "/static/mcp", message, headers, "t-read")
        assert response.status_code in (200, 202)
    assert transport_calls == []
    # The view's own refusals never reach the SDK; an Accept the hot path leaves alone goes to the transport.
    headers, message = CASES["modern tools/list"]
    response = _post(Client(), "/static/mcp", message, {**headers, "Accept": "text/event-stream"}, "t-read")
    assert response.status_code == 406
    assert transport_calls == ["transport"]


def test_unchecked_sdk_release_falls_back_to_the_transport(transport_calls, monkeypatch, caplog):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "99.0.0")
    sdk_direct.sdk_checked.cache_clear()
    try:
        headers, message = CASES["modern tools/call"]
        response = _post(Client(), "/static/mcp", message, headers, "t-read")
        assert response.status_code == 200
        assert response.json()["result"]["structuredContent"]["result"] == "hi"
        assert transport_calls == ["transport"]
        assert "not one django-mcp-scopes' direct path was checked against" in caplog.text
    finally:
        sdk_direct.sdk_checked.cache_clear()


def test_the_backstop_holds_on_the_hot_path(transport_calls):
    headers, message = CASES["modern backstop refusal"]
    response = _post(Client(), "/unchecked", message, headers, "t-read")
    assert response.status_code == 200
    assert response.json()["error"]["code"] == INSUFFICIENT_SCOPE
    assert transport_calls == []


# --- queries and thread hops -----------------------------------------------------------------


class QueryCounter:
    """Queries from every thread (the ASGI path queries in Django's sync thread, if at all)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sql: list[str] = []
        self._lock = threading.Lock()
        execute = CursorWrapper._execute

        def counted(cursor: Any, sql: str, *args: Any) -> Any:
            with self._lock:
                self.sql.append(sql)
            return execute(cursor, sql, *args)

        monkeypatch.setattr(CursorWrapper, "_execute", counted)

    def take(self) -> list[str]:
        with self._lock:
            taken, self.sql = self.sql, []
        return taken


WHOAMI = _modern("tools/call", {"name": "whoami", "arguments": {}}, "whoami")


def test_wsgi_cold_token_one_query_warm_token_none(django_assert_num_queries):
    warm_up, _ = make_token("entries:read")
    assert _post(Client(), "/mcp", WHOAMI[1], WHOAMI[0], warm_up).status_code == 200  # epochs, registry
    token, _ = make_token("entries:read")
    with django_assert_num_queries(1):
        assert _post(Client(), "/mcp", WHOAMI[1], WHOAMI[0], token).status_code == 200
    with django_assert_num_queries(0):
        response = _post(Client(), "/mcp", WHOAMI[1], WHOAMI[0], token)
    assert response.status_code == 200
    assert json.loads(response.json()["result"]["content"][0]["text"])["scopes"] == ["entries:read"]


def test_asgi_cold_token_one_query_in_one_hop_warm_token_none_on_the_loop(monkeypatch):
    queries = QueryCounter(monkeypatch)
    hops: list[str] = []

    def counted_sync_to_async(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(fn, "__name__", repr(fn)))
        return sync_to_async(fn, *args, **kwargs)

    monkeypatch.setattr(mcp_views, "sync_to_async", counted_sync_to_async)
    warm_up, _ = make_token("entries:read")
    token, _ = make_token("entries:read")

    async def scenario() -> list[tuple[int, list[str], list[str]]]:
        client = AsyncClient()
        seen = []
        for bearer in (warm_up, token, token, token):
            response = await client.post(
                "/mcp",
                json.dumps(WHOAMI[1]),
                content_type="application/json",
                headers={**WHOAMI[0], "Authorization": f"Bearer {bearer}"},
            )
            seen.append((response.status_code, queries.take(), list(hops)))
            hops.clear()
        await sync_to_async(connections.close_all)()
        return seen

    seen = asyncio.run(scenario())
    assert [status for status, _, _ in seen] == [200, 200, 200, 200]
    _, cold_queries, cold_hops = seen[1]
    assert len(cold_queries) == 1, cold_queries
    assert cold_hops == ["prepare"]
    for _, warm_queries, warm_hops in seen[2:]:
        assert warm_queries == []
        assert warm_hops == []  # authentication, checks and the SDK on the event loop


def test_asgi_dynamic_requirement_is_checked_in_one_hop(monkeypatch):
    hops: list[str] = []

    def counted_sync_to_async(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(fn, "__name__", repr(fn)))
        return sync_to_async(fn, *args, **kwargs)

    monkeypatch.setattr(mcp_views, "sync_to_async", counted_sync_to_async)
    token, _ = make_token("entries:write")
    headers, message = _modern("tools/call", {"name": "create_entry", "arguments": {"title": "x"}}, "create_entry")

    async def scenario() -> list[int]:
        client = AsyncClient()
        statuses = []
        for _ in range(2):
            response = await client.post(
                "/mcp", json.dumps(message), content_type="application/json",
                headers={**headers, "Authorization": f"Bearer {token}"},
            )  # fmt: skip
            statuses.append(response.status_code)
        await sync_to_async(connections.close_all)()
        return statuses

    assert asyncio.run(scenario()) == [200, 200]
    assert hops == ["prepare", "check_message"]  # cold: everything in one hop; warm: only the dynamic check


def test_warm_user_carries_id_and_username_without_a_query(django_assert_num_queries):
    token, row = make_token("entries:read")
    assert _post(Client(), "/mcp", WHOAMI[1], WHOAMI[0], token).status_code == 200
    from django_mcp_scopes.authentication import authenticate_request

    request = RequestFactory().post("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}")
    with django_assert_num_queries(0):
        principal = authenticate_request(request)
        assert principal is not None
        user = principal.user
        assert isinstance(user, _LazyUser)
        assert (user.pk, user.id, user.username, user.get_username()) == (
            row.user_id,
            row.user_id,
            row.user.username,
            row.user.username,
        )
        assert user.is_authenticated
    with CaptureQueriesContext(connections["default"]) as loaded:
        assert user.date_joined == row.user.date_joined  # any other field: the user is loaded
    assert len(loaded) == 1


def test_asgi_check_that_reaches_the_database_on_the_loop_starts_again_in_a_thread(monkeypatch):
    # An epoch that expires between the warm check and its use: the query would run on the loop.
    token, _ = make_token("entries:read")
    authenticate = mcp_views.MCPView.authenticate
    raised: list[bool] = []

    def expires_once(self, request):
        import asyncio as _asyncio

        try:
            _asyncio.get_running_loop()
        except RuntimeError:
            return authenticate(self, request)  # in Django's sync thread
        if not raised:
            raised.append(True)
            from django.core.exceptions import SynchronousOnlyOperation

            raise SynchronousOnlyOperation("You cannot call this from an async context")
        return authenticate(self, request)

    async def scenario() -> list[int]:
        client = AsyncClient()
        statuses = []
        for _ in range(3):
            response = await client.post(
                "/mcp", json.dumps(WHOAMI[1]), content_type="application/json",
                headers={**WHOAMI[0], "Authorization": f"Bearer {token}"},
            )  # fmt: skip
            statuses.append(response.status_code)
            if len(statuses) == 1:
                monkeypatch.setattr(mcp_views.MCPView, "authenticate", expires_once)
        await sync_to_async(connections.close_all)()
        return statuses

    assert asyncio.run(scenario()) == [200, 200, 200]
    assert raised == [True]
