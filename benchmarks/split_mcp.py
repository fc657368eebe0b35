"""Where one warm ``/mcp`` call's time goes, stage by stage, without a profiler's distortion.

The example project's own applications (``example_project.wsgi`` / ``example_project.asgi``: the
fast lane in front of Django) are called in-process, one call at a time, with the request
``make bench`` sends (``tools/call whoami``, 2026-07-28, a warm django-oauth-toolkit token; the
example's settings, SQLite under /tmp, DEBUG off). Named functions along the path are wrapped with
timers; each line is the wall-clock time spent inside that function per call (inner stages are
part of outer ones). The first line is the whole call, measured without the timers; CPU time per
call is printed too (it includes the worker thread a sync tool runs in under ASGI).

    python benchmarks/split_mcp.py [--mode wsgi|asgi] [--requests 3000]

Pin it to one core for steadier figures: ``taskset -c 0 python benchmarks/split_mcp.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_spent: collections.Counter[str] = collections.Counter()


def _timed(owner: Any, name: str, label: str, *, is_async: bool = False, static: bool = False) -> None:
    original = getattr(owner, name)

    if is_async:

        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                _spent[label] += time.perf_counter() - started

    else:

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                _spent[label] += time.perf_counter() - started

    setattr(owner, name, staticmethod(wrapper) if static else wrapper)


# (module, attribute path, label, async?, staticmethod?), outermost first.
V = "django_mcp_scopes.mcp.views"
STAGES = [
    (V, "MCPView.dispatch", "the endpoint's view, WSGI (all of the below)", False, False),
    (V, "AsyncMCPView.dispatch", "the endpoint's view, ASGI (all of the below)", True, False),
    (V, "MCPView.prepare", "  checks before the SDK (prepare)", False, False),
    (V, "AsyncMCPView.aprepare", "  checks before the SDK (aprepare, on the loop)", True, False),
    (V, "MCPView.authenticate", "    authentication (token cache)", False, False),
    (V, "MCPView.check_message", "    the message: JSON, headers, scopes", False, False),
    (V, "_scope_and_headers", "      the request as the SDK sees it", False, False),
    ("django_mcp_scopes.mcp.bridge", "SDKBridge.run", "  the pooled event loop (WSGI)", False, False),
    (V, "serve", "  the SDK's answer (sdk_direct; under WSGI inside the loop's time)", True, False),
    ("django_mcp_scopes.mcp.sdk_direct", "serve_one", "    the SDK's serve_one (middleware, dispatch)", True, False),
    ("mcp.server.mcpserver.tools.base", "Tool.run", "      the tool (ASGI: with its worker-thread hop)", True, False),
    ("django_mcp_scopes.mcp.sdk_direct", "_modern_reply", "    the JSON-RPC reply", False, False),
    (V, "MCPView.to_django", "  the Django response", False, True),
]


def _install_timers() -> None:
    import importlib

    for module_name, path, label, is_async, static in STAGES:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        _timed(owner, name, label, is_async=is_async, static=static)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["wsgi", "asgi"], default="wsgi")
    parser.add_argument("--requests", type=int, default=3000)
    options = parser.parse_args()
    from benchmarks import example_fixtures

    token = example_fixtures.in_process("mcp-split-")
    payload = json.dumps(example_fixtures.WHOAMI_CALL).encode()
    run = _wsgi_runner(token, payload) if options.mode == "wsgi" else _asgi_runner(token, payload)
    run(300)  # warm: the token cache, the registry, the pooled loop, the SDK
    rounds = []
    for _ in range(5):
        wall, cpu = time.perf_counter(), time.process_time()
        run(options.requests)
        rounds.append(((time.perf_counter() - wall) / options.requests, (time.process_time() - cpu) / options.requests))
    wall, cpu = min(rounds)
    _install_timers()
    run(100)
    _spent.clear()
    timed = time.perf_counter()
    run(options.requests)
    timed = (time.perf_counter() - timed) / options.requests
    print(f"example /mcp tools/call whoami, {options.mode.upper()} with the fast lane, warm token, in-process")
    print(f"{wall * 1e6:7.0f} us  a whole call without the timers (fastest of 5 rounds; CPU {cpu * 1e6:.0f} us)")
    print(f"{timed * 1e6:7.0f} us  a whole call with them (the lane and Django's request included):")
    for _module, _path, label, _is_async, _static in STAGES:
        if label in _spent:
            print(f"{_spent[label] / options.requests * 1e6:7.0f} us  {label}")


def _wsgi_runner(token: str, payload: bytes) -> Callable[[int], None]:
    from benchmarks.profile_mcp import request_environ
    from example_project.wsgi import application

    def one() -> None:
        statuses: list[str] = []
        chunks = application(request_environ(token, payload), lambda status, headers: statuses.append(status))
        answer = b"".join(chunks)
        chunks.close()
        if not statuses[0].startswith("200") or b'"username":"demo"' not in answer:
            raise SystemExit(f"unexpected answer: {statuses[0]} {answer[:300]!r}")

    def run(count: int) -> None:
        for _ in range(count):
            one()

    return run


def _asgi_runner(token: str, payload: bytes) -> Callable[[int], None]:
    from example_project.asgi import application

    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"accept", b"application/json, text/event-stream"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"mcp-protocol-version", b"2026-07-28"),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", b"whoami"),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    loop = asyncio.new_event_loop()

    async def one() -> None:
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await asyncio.Event().wait()  # never a disconnect
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await application(dict(scope), receive, send)
        body = b"".join(message.get("body", b"") for message in sent[1:])
        if sent[0].get("status") != 200 or b'"username":"demo"' not in body:
            raise SystemExit(f"unexpected answer: {sent[0]} {body[:300]!r}")

    async def many(count: int) -> None:
        for _ in range(count):
            await one()

    def run(count: int) -> None:
        loop.run_until_complete(many(count))

    return run


if __name__ == "__main__":
    main()
