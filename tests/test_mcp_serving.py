"""The fast lane (``django_mcp_scopes.mcp.serving``): the same answers as Django's full stack, the
middleware skipped only where the lane serves, and everything else left to Django.

The applications are called as a server calls them: an ASGI scope with ``receive`` / ``send``,
a WSGI environ with ``start_response``. A recording middleware tells who served each request.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import connections
from django.http import JsonResponse
from django.urls import path
from django.utils.deprecation import MiddlewareMixin
from django.views.decorators.csrf import csrf_exempt

from django_mcp_scopes import refusals
from django_mcp_scopes.mcp import mcp_path
from django_mcp_scopes.mcp import views as mcp_views
from django_mcp_scopes.mcp.endpoint import INSUFFICIENT_SCOPE
from django_mcp_scopes.mcp.serving import mcp_asgi_application, mcp_wsgi_application
from django_mcp_scopes.models import Refusal
from django_mcp_scopes.token_cache import token_cache
from tests.enforcement_support import make_token
from tests.mcp_app import LISTINGS_OPEN, ensure_scopes, server

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
LIMIT = 4096


@csrf_exempt
def plain(request):
    return JsonResponse({"plain": True})


urlpatterns = [
    *mcp_path("mcp", server, method_scopes=LISTINGS_OPEN),
    path("plain", plain),
]

middleware_saw: list[str] = []


class RecordingMiddleware(MiddlewareMixin):
    def process_request(self, request):
        middleware_saw.append(f"{request.method} {request.path}")


pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _project(settings):
    settings.MCP_SCOPES = {
        # Long windows, so a slow test machine sees the epochs and entries it just warmed.
        "REGISTRY_REFRESH_SECONDS": 60,
        "TOKEN_LOCAL_CACHE_SECONDS": 60,
        "ALLOWED_ORIGINS": ["https://allowed.example"],
        "MAX_BODY_BYTES": LIMIT,
    }
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.RecordingMiddleware"]
    ensure_scopes()
    token_cache.clear_local()
    refusals.discard_pending()
    middleware_saw.clear()
    yield
    refusals.discard_pending()


def tool_call(name: str, arguments: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    params = {"name": name, "arguments": arguments, "_meta": META}
    message = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
    return headers, json.dumps(message).encode()


ECHO = tool_call("echo", {"text": "hi"})


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    messages_read: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


# --- drivers: what a server does ------------------------------------------------------------


async def asgi(
    app: Any,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    path: str = "/mcp",
    method: str = "POST",
    root_path: str = "",
    chunks: list[bytes] | None = None,
    token: str | None = None,
    host: str = "testserver",
) -> Answer:
    sent_headers = [(b"host", host.encode())]
    sent_headers += [(key.lower().encode(), value.encode()) for key, value in headers.items()]
    if token is not None:
        sent_headers.append((b"authorization", f"Bearer {token}".encode()))
    pieces = chunks if chunks is not None else [body]
    if chunks is None:
        sent_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": root_path + path, "raw_path": (root_path + path).encode(), "root_path": root_path,
        "query_string": b"", "headers": sent_headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip
    read = 0
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(pieces):
            read += 1
            return {"type": "http.request", "body": pieces[read - 1], "more_body": read < len(pieces)}
        await done.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    start = sent[0]
    answer_headers = {key.decode().lower(): value.decode() for key, value in start["headers"]}
    return Answer(start["status"], answer_headers, b"".join(m.get("body", b"") for m in sent[1:]), read)


def wsgi(
    app: Any,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    path: str = "/mcp",
    method: str = "POST",
    script_name: str = "",
    token: str | None = None,
    host: str = "testserver",
) -> Answer:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": script_name, "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": host,
        "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }  # fmt: skip
    for key, value in headers.items():
        name = key.upper().replace("-", "_")
        environ[name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"] = value
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"] = int(status.split()[0])
        started["headers"] = {key.lower(): value for key, value in response_headers}

    result = app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()  # as a WSGI server does: request_finished
    return Answer(started["status"], started["headers"], content)


def run(scenario: Any) -> Any:
    async def closing() -> Any:
        try:
            return await scenario
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(closing())


def lane_and_django() -> tuple[Any, Any]:
    """The ASGI lane over Django's handler, and Django's handler alone (built after the settings)."""
    return mcp_asgi_application(ASGIHandler()), ASGIHandler()


# Headers both answers must agree on (the others: Date-like or absent on both).
COMPARED = (
    "content-type",
    "cache-control",
    "www-authenticate",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "access-control-allow-origin",
    "vary",
    "allow",
)


def same_answer(lane: Answer, django: Answer) -> None:
    assert lane.status == django.status
    assert lane.body == django.body
    assert {k: lane.headers.get(k) for k in COMPARED} == {k: django.headers.get(k) for k in COMPARED}


# --- ASGI ------------------------------------------------------------------------------------


def test_asgi_calls_answer_as_django_without_the_middleware():
    token, _ = make_token("entries:read")
    lane, django = lane_and_django()

    async def scenario() -> tuple[Answer, Answer, Answer, list[str]]:
        cold = await asgi(lane, *ECHO, token=token)  # validated in the view's one thread hop
        warm = await asgi(lane, *ECHO, token=token)  # from memory, on the loop
        on_lane = list(middleware_saw)
        full = await asgi(django, *ECHO, token=token)
        return cold, warm, full, on_lane

    cold, warm, full, on_lane = run(scenario())
    assert on_lane == []  # cold or warm, the lane skipped the middleware
    assert middleware_saw == ["POST /mcp"]  # and Django's handler ran it
    assert warm.status == 200
    assert warm.json()["result"]["content"][0]["text"] == "hi"
    same_answer(warm, full)
    same_answer(cold, full)
    assert warm.headers["x-content-type-options"] == "nosniff"  # SecurityMiddleware's headers, kept


def test_asgi_message_that_needs_a_thread_is_checked_in_one_on_the_lane():
    token, _ = make_token("entries:write")
    lane, _ = lane_and_django()
    create = tool_call("create_entry", {"title": "x"})  # a dynamic requirement: checked in a thread

    async def scenario() -> list[Answer]:
        return [await asgi(lane, *create, token=token) for _ in range(2)]

    answers = run(scenario())
    assert [a.status for a in answers] == [200, 200]
    assert answers[1].json()["result"]["content"][0]["text"] == "created x"
    assert middleware_saw == []


def test_asgi_challenges_are_django_s():
    token, _ = make_token("entries:read")
    lane, django = lane_and_django()
    moderate = tool_call("moderate", {"entry": 1})

    async def scenario() -> list[tuple[Answer, Answer]]:
        await asgi(lane, *ECHO, token=token)  # warm
        middleware_saw.clear()
        pairs = [(await asgi(lane, *moderate, token=token), await asgi(django, *moderate, token=token))]
        pairs.append((await asgi(lane, *ECHO), await asgi(django, *ECHO)))  # no token
        pairs.append((await asgi(lane, *ECHO, token="unknown"), await asgi(django, *ECHO, token="unknown")))
        return pairs

    (denied, denied_django), (missing, missing_django), (unknown, unknown_django) = run(scenario())
    assert denied.status == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    assert missing.status == unknown.status == 401
    same_answer(denied, denied_django)
    same_answer(missing, missing_django)
    same_answer(unknown, unknown_django)
    # Every answer of the lane without the middleware; Django's handler ran it for its own three.
    assert middleware_saw == ["POST /mcp", "POST /mcp", "POST /mcp"]


def test_asgi_disallowed_host_is_400_on_and_off_the_lane(settings):
    settings.MCP_SCOPES = {**settings.MCP_SCOPES, "BASE_URL": "http://testserver"}  # the Host is not read first
    token, _ = make_token("entries:read")
    lane, django = lane_and_django()

    async def scenario() -> tuple[Answer, Answer, Answer, list[str]]:
        await asgi(lane, *ECHO, token=token)  # warm
        middleware_saw.clear()
        warm = await asgi(lane, *ECHO, token=token, host="evil.example")
        seen = list(middleware_saw)
        cold = await asgi(lane, *ECHO, token="unknown", host="evil.example")
        full = await asgi(django, *ECHO, token=token, host="evil.example")
        return warm, cold, full, seen

    warm, cold, full, seen_warm = run(scenario())
    assert seen_warm == []  # the view, on the lane, raised DisallowedHost: Django's answer to it
    assert warm.status == cold.status == full.status == 400
    assert warm.body == full.body


def test_asgi_bad_origin_is_403_and_an_allowed_one_gets_cors():
    token, _ = make_token("entries:read")
    lane, django = lane_and_django()
    bad = {**ECHO[0], "Origin": "https://evil.example"}
    good = {**ECHO[0], "Origin": "https://allowed.example"}

    async def scenario() -> list[tuple[Answer, Answer]]:
        await asgi(lane, *ECHO, token=token)
        middleware_saw.clear()
        return [
            (await asgi(lane, bad, ECHO[1], token=token), await asgi(django, bad, ECHO[1], token=token)),
            (await asgi(lane, good, ECHO[1], token=token), await asgi(django, good, ECHO[1], token=token)),
        ]

    (refused, refused_django), (allowed, allowed_django) = run(scenario())
    assert refused.status == 403
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == "https://allowed.example"
    same_answer(refused, refused_django)
    same_answer(allowed, allowed_django)
    assert middleware_saw == ["POST /mcp", "POST /mcp"]  # only Django's own


@pytest.mark.parametrize("method", ["OPTIONS", "GET", "DELETE"])
def test_asgi_other_methods_go_to_django(method):
    token, _ = make_token("entries:read")
    lane, django = lane_and_django()
    headers = {"Origin": "https://allowed.example", "Access-Control-Request-Method": "POST"}

    async def scenario() -> tuple[Answer, Answer]:
        return (
            await asgi(lane, headers, method=method, token=token),
            await asgi(django, headers, method=method, token=token),
        )

    through_lane, full = run(scenario())
    assert through_lane.status == (204 if method == "OPTIONS" else 405)
    same_answer(through_lane, full)
    assert middleware_saw == [f"{method} /mcp", f"{method} /mcp"]


def test_asgi_other_paths_and_scopes_go_to_django():
    lane, _ = lane_and_django()

    async def scenario() -> tuple[Answer, Answer]:
        return await asgi(lane, {}, b"{}", path="/plain"), await asgi(lane, {}, b"{}", path="/nowhere")

    plain_answer, missing = run(scenario())
    assert plain_answer.status == 200
    assert plain_answer.json() == {"plain": True}
    assert missing.status == 404
    assert middleware_saw == ["POST /plain", "POST /nowhere"]

    async def lifespan() -> None:
        await lane({"type": "lifespan", "asgi": {"version": "3.0"}}, None, None)

    with pytest.raises(ValueError, match="Django can only handle ASGI/HTTP connections, not lifespan"):
        asyncio.run(lifespan())


def test_asgi_root_path_is_the_script_prefix():
    token, _ = make_token("entries:read", resource=["http://testserver/app/mcp"])
    lane, django = lane_and_django()
    moderate = tool_call("moderate", {"entry": 1})

    async def scenario() -> tuple[Answer, Answer, Answer]:
        await asgi(lane, *ECHO, token=token, root_path="/app")  # warm
        middleware_saw.clear()
        warm = await asgi(lane, *ECHO, token=token, root_path="/app")
        denied = await asgi(lane, *moderate, token=token, root_path="/app")
        full = await asgi(django, *moderate, token=token, root_path="/app")
        return warm, denied, full

    warm, denied, full = run(scenario())
    assert warm.status == 200
    assert denied.status == 403
    assert (
        'resource_metadata="http://testserver/.well-known/oauth-protected-resource/app/mcp"'
        in (denied.headers["www-authenticate"])
    )
    same_answer(denied, full)
    assert middleware_saw == ["POST /app/mcp"]


@pytest.mark.parametrize("token_state", ["warm", "cold", "none"])
def test_asgi_body_over_the_limit_is_413_and_not_read_further(token_state):
    token, _ = make_token("entries:read")
    lane, _ = lane_and_django()
    chunk = b" " * 1024
    chunks = [b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "x": "', *[chunk] * 20, b'"}']

    async def scenario() -> tuple[Answer, Answer]:
        if token_state == "warm":
            await asgi(lane, *ECHO, token=token)
        middleware_saw.clear()
        bearer = {"warm": token, "cold": "unknown", "none": None}[token_state]
        streamed = await asgi(lane, ECHO[0], chunks=chunks, token=bearer)
        declared = await asgi(lane, {**ECHO[0], "Content-Length": str(LIMIT * 100)}, chunks=chunks, token=bearer)
        return streamed, declared

    streamed, declared = run(scenario())
    expected = 413 if token_state == "warm" else 401  # the view refuses an unknown token first
    assert streamed.status == expected
    assert streamed.messages_read == 1 + LIMIT // len(chunk)  # up to the first chunk past the limit
    assert declared.status == 413  # refused before authentication
    assert declared.messages_read == 0
    assert middleware_saw == []


def test_asgi_malformed_json_is_the_same_json_rpc_error():
    token, _ = make_token("entries:read")
    lane, django = lane_and_django()

    async def scenario() -> tuple[Answer, Answer]:
        await asgi(lane, *ECHO, token=token)
        middleware_saw.clear()
        broken = b'{"jsonrpc": '
        return await asgi(lane, ECHO[0], broken, token=token), await asgi(django, ECHO[0], broken, token=token)

    broken, full = run(scenario())
    assert broken.status == 400
    assert broken.json()["error"]["code"] == -32700
    same_answer(broken, full)
    assert middleware_saw == ["POST /mcp"]


def test_asgi_refusals_on_the_lane_reach_the_refusal_table():
    token, _ = make_token("entries:read")
    lane, _ = lane_and_django()
    moderate = tool_call("moderate", {"entry": 1})

    async def scenario() -> Answer:
        await asgi(lane, *ECHO, token=token)
        middleware_saw.clear()
        refusals.discard_pending()  # a flush is due at once
        return await asgi(lane, *moderate, token=token)

    denied = run(scenario())
    assert denied.status == 403
    assert middleware_saw == []
    assert refusals.pending() == 0
    row = Refusal.objects.get()
    assert (row.kind, row.operation, row.endpoint) == ("insufficient_scope", "tools/call moderate", "/mcp")


def test_asgi_an_exception_on_the_lane_is_django_s_500_without_details(monkeypatch, caplog):
    token, _ = make_token("entries:read")
    lane, _ = lane_and_django()

    def broken(self, request, body, principal):
        raise RuntimeError("a secret detail")

    async def scenario() -> Answer:
        await asgi(lane, *ECHO, token=token)
        middleware_saw.clear()
        monkeypatch.setattr(mcp_views.AsyncMCPView, "check_message", broken)
        return await asgi(lane, *ECHO, token=token)

    with caplog.at_level(logging.ERROR, logger="django.request"):
        failed = run(scenario())
    assert failed.status == 500
    assert b"secret" not in failed.body
    assert middleware_saw == []
    logged = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    assert any("a secret detail" in str(record.exc_info[1]) for record in logged)


def test_paths_restrict_the_lane():
    token, _ = make_token("entries:read")
    lane = mcp_asgi_application(ASGIHandler(), paths=["/elsewhere"])

    async def scenario() -> list[Answer]:
        return [await asgi(lane, *ECHO, token=token) for _ in range(2)]

    assert [a.status for a in run(scenario())] == [200, 200]
    assert middleware_saw == ["POST /mcp", "POST /mcp"]
    for wrong in ("/mcp", ["mcp"], [None]):
        with pytest.raises(ImproperlyConfigured):
            mcp_asgi_application(ASGIHandler(), paths=wrong)
        with pytest.raises(ImproperlyConfigured):
            mcp_wsgi_application(WSGIHandler(), paths=wrong)


def test_ssl_redirect_is_left_to_django(settings):
    settings.SECURE_SSL_REDIRECT = True
    token, _ = make_token("entries:read")
    lane, _ = lane_and_django()

    async def scenario() -> list[Answer]:
        return [await asgi(lane, *ECHO, token=token) for _ in range(2)]

    answers = [*run(scenario()), wsgi(mcp_wsgi_application(WSGIHandler()), *ECHO, token=token)]
    # SecurityMiddleware redirects, before the recording middleware: Django's handler served them all.
    assert [(a.status, a.headers["location"]) for a in answers] == [(301, "https://testserver/mcp")] * 3


# --- WSGI ------------------------------------------------------------------------------------


@pytest.fixture
def signals_sent():
    sent: list[str] = []

    def started(**kwargs: Any) -> None:
        sent.append("started")

    def finished(**kwargs: Any) -> None:
        sent.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    yield sent
    request_started.disconnect(started)
    request_finished.disconnect(finished)


def test_wsgi_call_answers_as_django_without_the_middleware_with_the_signals(signals_sent):
    token, _ = make_token("entries:read")
    lane, django = mcp_wsgi_application(WSGIHandler()), WSGIHandler()
    cold = wsgi(lane, *ECHO, token=token)
    warm = wsgi(lane, *ECHO, token=token)
    full = wsgi(django, *ECHO, token=token)
    assert cold.status == warm.status == 200
    assert warm.json()["result"]["content"][0]["text"] == "hi"
    same_answer(warm, full)
    same_answer(cold, full)
    assert middleware_saw == ["POST /mcp"]  # cold or warm, the sync view serves it on the lane
    assert signals_sent == ["started", "finished"] * 3


def test_wsgi_challenges_host_origin_prefix_and_json_errors_are_django_s():
    token, _ = make_token("entries:read", resource=["http://testserver/app/mcp"])
    lane, django = mcp_wsgi_application(WSGIHandler()), WSGIHandler()
    moderate = tool_call("moderate", {"entry": 1})
    cases = [
        {"headers": moderate[0], "body": moderate[1], "token": token, "script_name": "/app"},
        {"headers": ECHO[0], "body": ECHO[1], "script_name": "/app"},
        {"headers": ECHO[0], "body": ECHO[1], "token": token, "script_name": "/app", "host": "evil.example"},
        {
            "headers": {**ECHO[0], "Origin": "https://evil.example"},
            "body": ECHO[1],
            "token": token,
            "script_name": "/app",
        },
        {"headers": ECHO[0], "body": b"[", "token": token, "script_name": "/app"},
        {"headers": ECHO[0], "body": b"x" * (LIMIT + 1), "token": token, "script_name": "/app"},
    ]
    statuses = []
    for case in cases:
        through_lane, full = wsgi(lane, **case), wsgi(django, **case)
        same_answer(through_lane, full)
        statuses.append(through_lane.status)
    assert statuses == [403, 401, 400, 403, 400, 413]
    denied = wsgi(lane, **cases[0])
    assert (
        'resource_metadata="http://testserver/.well-known/oauth-protected-resource/app/mcp"'
        in (denied.headers["www-authenticate"])
    )
    # Django's handler's, never the lane's (CommonMiddleware refused the bad Host before the recorder).
    assert middleware_saw == ["POST /app/mcp"] * (len(cases) - 1)


def test_wsgi_other_methods_and_paths_go_to_django():
    lane = mcp_wsgi_application(WSGIHandler())
    assert wsgi(lane, {}, method="GET").status == 405
    assert wsgi(lane, {"Content-Type": "application/json"}, b"{}", path="/plain").status == 200
    assert middleware_saw == ["GET /mcp", "POST /plain"]


def test_wsgi_refusals_on_the_lane_reach_the_refusal_table():
    token, _ = make_token("entries:read")
    lane = mcp_wsgi_application(WSGIHandler())
    moderate = tool_call("moderate", {"entry": 1})
    assert wsgi(lane, *moderate, token=token).status == 403
    assert middleware_saw == []
    row = Refusal.objects.get()
    assert (row.kind, row.operation, row.endpoint) == ("insufficient_scope", "tools/call moderate", "/mcp")


def test_asgi_thread_hops_on_the_lane_get_django_s_connection_care(monkeypatch):
    from django_mcp_scopes.mcp.database import _CARED

    hops: list[tuple[str, bool]] = []

    def recording_sync_to_async(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append((fn.__name__, getattr(fn, _CARED, False)))
        return sync_to_async(fn, *args, **kwargs)

    monkeypatch.setattr(mcp_views, "sync_to_async", recording_sync_to_async)
    lane, django = lane_and_django()
    too_large = {**ECHO[0], "Content-Length": str(LIMIT + 1)}

    async def scenario() -> list[int]:
        # A cold token over the limit: the lane's view checks it in a thread (prepare).
        on_lane = await asgi(lane, too_large, chunks=[b"x"], token="unknown")
        off_lane = await asgi(django, *ECHO, token="unknown")
        return [on_lane.status, off_lane.status]

    assert run(scenario()) == [413, 401]
    # On the lane, close_old_connections() around the hop; under Django's handler, its request cycle.
    assert hops == [("prepare", True), ("prepare", False)]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Length": "abc"}, ECHO[1], 200),  # read as no declared length, as the view does
        ({"Content-Length": "-5"}, ECHO[1], 200),
        ({}, b"[]", 400),  # a batch
        ({}, b"null", 400),
        ({}, b'{"jsonrpc": "2.0", "id": null, "method": "tools/list"}', 400),
        ({}, b'{"jsonrpc": "2.0", "id": 1}', 400),  # no method
        ({"Content-Type": "text/plain"}, ECHO[1], 415),
        ({"Mcp-Name": "other"}, ECHO[1], 400),  # disagrees with the body
        ({"MCP-Protocol-Version": "1999-01-01"}, ECHO[1], 400),
        ({}, b"\xff\xfe\x00", 400),
        ({}, b"[" * 100_000, 413),
    ],
)
def test_asgi_malformed_requests_answer_as_django(headers, body, status):
    token, _ = make_token("entries:read")
    lane, django = lane_and_django()
    sent = {**ECHO[0], **headers}

    async def scenario() -> tuple[Answer, Answer]:
        await asgi(lane, *ECHO, token=token)  # warm
        return await asgi(lane, sent, chunks=[body], token=token), await asgi(django, sent, chunks=[body], token=token)

    through_lane, full = run(scenario())
    assert through_lane.status == status
    same_answer(through_lane, full)


def test_atomic_requests_are_left_to_django(monkeypatch):
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    token, _ = make_token("entries:read")
    answered = wsgi(mcp_wsgi_application(WSGIHandler()), *ECHO, token=token)
    assert answered.status == 200
    assert middleware_saw == ["POST /mcp"]  # Django's handler, which opens the transaction


# --- found by review -----------------------------------------------------------------------------


def _connections_opened_by(app: Any, token: str, call: tuple[dict[str, str], bytes]) -> tuple[Answer, list[Any]]:
    """The answer to ``call`` (after one warming call) and the connections opened while serving it."""
    import threading

    from django.db.backends.signals import connection_created

    opened: list[tuple[Any, str]] = []

    def record(sender: Any, connection: Any, **kwargs: Any) -> None:
        opened.append((connection, threading.current_thread().name))

    async def scenario() -> Answer:
        await asgi(app, *ECHO, token=token)  # warm the token
        opened.clear()
        return await asgi(app, *call, token=token)

    connection_created.connect(record)
    try:
        answer = run(scenario())
    finally:
        connection_created.disconnect(record)
    return answer, opened


@pytest.mark.parametrize("on_lane", [True, False])
def test_asgi_connections_an_async_tool_opens_are_closed_after_the_request(on_lane):
    """The async ORM (Django's recommendation for async tools) runs in the request's thread-sensitive
    thread: the lane ends the request there as Django's handler does, connections closed."""
    token, _ = make_token("entries:read")
    app = mcp_asgi_application(ASGIHandler()) if on_lane else ASGIHandler()
    answer, opened = _connections_opened_by(app, token, tool_call("count_scopes_async", {"prefix": "entries"}))
    assert answer.status == 200, answer.body
    assert opened, "the async tool opened no connection: the test shows nothing"
    assert [thread for connection, thread in opened if connection.connection is not None] == []


class _AliasMiddleware:
    """An SDK middleware in front of the backstop that rewrites a call (the SDK lets a middleware
    pass a changed request down its chain)."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        from dataclasses import replace

        if ctx.method == "tools/call" and (ctx.params or {}).get("name") == "echo":
            ctx = replace(ctx, params={**ctx.params, "name": "count_scopes", "arguments": {"prefix": "entries"}})
        return await call_next(ctx)


def test_backstop_decides_a_call_an_sdk_middleware_rewrote_after_the_view_cleared_it():
    alias = _AliasMiddleware()
    server._lowlevel_server.middleware.insert(0, alias)
    try:
        token, _ = make_token("admin")  # a valid token without entries:read
        answer = wsgi(WSGIHandler(), *ECHO, token=token)
    finally:
        server._lowlevel_server.middleware.remove(alias)
    body = answer.json()
    # The view cleared echo (any valid token); count_scopes, which needs entries:read, never ran.
    assert body.get("error", {}).get("code") == INSUFFICIENT_SCOPE or body.get("result", {}).get("isError"), body


@pytest.mark.parametrize(
    ("method", "path", "root_path"),
    [
        ("POST", "/mcp", ""),
        ("post", "/mcp", ""),
        ("POST", "/mcp/", ""),
        ("POST", "//mcp", ""),
        ("POST", "/MCP", ""),
        ("POST", "/mcp%2F", ""),
        ("POST", "/mcp;a", ""),
        ("POST", "/mcp", "/app"),
        ("POST", "/mcp/../mcp", ""),
        ("POST", "/./mcp", ""),
    ],
)
def test_asgi_odd_paths_and_methods_answer_as_django(method, path, root_path):
    token, _ = make_token("entries:read")
    lane, django = lane_and_django()

    async def scenario() -> tuple[Answer, Answer]:
        # asgi() puts root_path in front of path, as a server mounted under it does.
        on_lane = await asgi(lane, *ECHO, token=token, method=method, path=path, root_path=root_path)
        full = await asgi(django, *ECHO, token=token, method=method, path=path, root_path=root_path)
        return on_lane, full

    on_lane, full = run(scenario())
    assert on_lane.status == full.status


def test_each_request_on_the_lane_gets_its_own_resolver_match():
    """The lane caches the resolution per path; what one request changes on its match stays with it."""
    token, _ = make_token("entries:read")
    lane, _ = lane_and_django()
    seen: list[Any] = []
    dispatch = mcp_views.AsyncMCPView.dispatch

    async def recording(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(request.resolver_match)
        request.resolver_match.kwargs["changed_by"] = len(seen)
        return await dispatch(self, request, *args, **kwargs)

    mcp_views.AsyncMCPView.dispatch = recording  # type: ignore[method-assign]
    try:

        async def scenario() -> list[int]:
            return [(await asgi(lane, *ECHO, token=token)).status for _ in range(2)]

        assert run(scenario()) == [200, 200]
    finally:
        mcp_views.AsyncMCPView.dispatch = dispatch  # type: ignore[method-assign]
    assert len(seen) == 2 and seen[0] is not seen[1]
    assert seen[0].kwargs == {"changed_by": 1}
    assert seen[1].kwargs == {"changed_by": 2}  # not the first request's change
    assert seen[0].url_name == seen[1].url_name
