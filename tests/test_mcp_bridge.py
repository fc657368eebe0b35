"""The WSGI bridge's event-loop thread."""

from __future__ import annotations

import threading

import anyio.to_thread
import pytest

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


async def _threads() -> tuple[threading.Thread, threading.Thread]:
    return threading.current_thread(), await anyio.to_thread.run_sync(threading.current_thread)


def test_wsgi_requests_run_the_loop_in_their_own_thread_and_keep_the_worker():
    from django_mcp_scopes.mcp.bridge import run_in_request_thread

    # The request thread runs the coroutine itself (no hand-off to a loop thread), and a sync
    # call's worker thread outlives the request instead of being started once per call.
    loop_thread_first, worker_first = run_in_request_thread(_threads())
    loop_thread_second, worker_second = run_in_request_thread(_threads())
    assert loop_thread_first is loop_thread_second is threading.current_thread()
    assert worker_first is worker_second
    assert worker_first is not threading.current_thread()
    assert worker_first.is_alive()


def test_concurrent_wsgi_requests_borrow_separate_loops():
    from django_mcp_scopes.mcp import bridge

    results: list[object] = []
    barrier = threading.Barrier(2)

    async def running_loop() -> object:
        import asyncio

        loop = asyncio.get_running_loop()
        await anyio.to_thread.run_sync(barrier.wait, 10)  # both requests in flight at once
        return loop

    threads = [
        threading.Thread(target=lambda: results.append(bridge.run_in_request_thread(running_loop()))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 2
    assert results[0] is not results[1]


def test_an_exception_reaches_the_request_thread_and_the_loop_stays_usable():
    from django_mcp_scopes.mcp.bridge import run_in_request_thread

    async def fails() -> None:
        raise ValueError("boom")

    async def works() -> int:
        return 42

    with pytest.raises(ValueError, match="boom"):
        run_in_request_thread(fails())
    assert run_in_request_thread(works()) == 42
