"""The WSGI bridge's event-loop thread."""

from __future__ import annotations

import threading

import anyio.to_thread

from django_mcp_scopes.mcp.bridge import run_in_loop_thread


async def _worker_thread() -> threading.Thread:
    # What the SDK does with a sync tool, resource or prompt function.
    return await anyio.to_thread.run_sync(threading.current_thread)


def test_sync_calls_reuse_the_worker_thread_across_requests():
    # Each WSGI request is its own task on the loop thread; the worker thread must outlive it,
    # not be started (and stopped) once per request.
    first = run_in_loop_thread(_worker_thread())
    second = run_in_loop_thread(_worker_thread())
    assert first is second  # the same Thread object (an ident can be reused by a new thread)
    assert first is not threading.current_thread()
    assert first.is_alive()
