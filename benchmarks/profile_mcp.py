"""Where the time of the example's ``/mcp`` request goes: cProfile of warm ``tools/call whoami`` requests.

The example project's WSGI application is called directly (no server, no socket) with the request
``make bench`` sends: the example's own settings, SQLite under /tmp, DEBUG off, a real
django-oauth-toolkit token, warm. Every thread is profiled (the request thread, the endpoint's
event-loop thread and the SDK's worker threads each get their own profiler, merged at the end), so
time spent waiting for another thread shows up as ``acquire``/``wait`` and the work itself where it
is done. The profiler slows everything down: compare functions with each other, not with the
unprofiled time per request printed first. Prints the top functions by cumulative and by own time.

    python benchmarks/profile_mcp.py [--requests 2000] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import threading
import time
from pathlib import Path
from wsgiref.util import setup_testing_defaults

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def request_environ(token: str, payload: bytes) -> dict[str, object]:
    environ: dict[str, object] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/mcp",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "HTTP_ACCEPT": "application/json, text/event-stream",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_MCP_PROTOCOL_VERSION": "2026-07-28",
        "HTTP_MCP_METHOD": "tools/call",
        "HTTP_MCP_NAME": "whoami",
        "wsgi.input": io.BytesIO(payload),
    }
    setup_testing_defaults(environ)
    return environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    options = parser.parse_args()
    from benchmarks import example_fixtures

    token = example_fixtures.in_process("mcp-profile-")
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    payload = json.dumps(example_fixtures.WHOAMI_CALL).encode()

    def call() -> None:
        statuses: list[str] = []
        chunks = application(request_environ(token, payload), lambda status, headers: statuses.append(status))
        answer = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        if not statuses[0].startswith("200") or b'"username":"demo"' not in answer:
            raise SystemExit(f"unexpected answer: {statuses[0]} {answer[:300]!r}")

    # Threads the endpoint starts (its event-loop thread, the SDK's worker threads) get a profiler
    # of their own on their first call after ``armed`` is set, so warming up is not profiled.
    profiles: list[cProfile.Profile] = []
    armed = threading.Event()

    def profile_when_armed(*_: object) -> None:
        if armed.is_set():
            profile = cProfile.Profile()
            profiles.append(profile)
            profile.enable()

    threading.setprofile(profile_when_armed)  # type: ignore[arg-type]
    for _ in range(50):  # warm: the token cache, the registry, the loop thread, the SDK
        call()
    started = time.perf_counter()
    for _ in range(options.requests):
        call()
    unprofiled = (time.perf_counter() - started) / options.requests

    threading.setprofile(None)  # type: ignore[arg-type]
    armed.set()
    main_profile = cProfile.Profile()
    main_profile.enable()
    for _ in range(options.requests):
        call()
    main_profile.disable()
    armed.clear()
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        profile.create_stats()
        stats.add(profile)
    print(f"{options.requests} warm requests, {unprofiled * 1e6:.0f} us each without the profiler, in-process")
    print(f"threads profiled: the request thread and {len(profiles)} other threads (merged)")
    for order in ("cumulative", "tottime"):
        print(f"\n-- top {options.top} by {order} time")
        stream = io.StringIO()
        stats.stream = stream  # type: ignore[attr-defined]
        stats.strip_dirs().sort_stats(order).print_stats(options.top)
        print("\n".join(line for line in stream.getvalue().splitlines() if line.strip()))


if __name__ == "__main__":
    main()
