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


def test_wsgi_requests_run_the_loop_in_their_own_thread_and_keep_the_worker(settings):
    from django_mcp_scopes.mcp.bridge import run_in_request_thread

    # With sync calls in worker threads (the SDK's way), the request thread runs the coroutine
    # itself (no hand-off to a loop thread), and a sync call's worker thread outlives the request
    # instead of being started once per call.
    settings.MCP_SCOPES = {**getattr(settings, "MCP_SCOPES", {}), "SYNC_CALLS_IN_REQUEST_THREAD": False}
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


def test_an_async_function_s_own_worker_threads_do_not_pile_up():
    """With sync calls in the request thread (the default), a request runs as the loop's own task:
    an async function that still calls ``anyio.to_thread`` gets a worker, and workers do not pile
    up from one request to the next (each ends with its request, or an idle one is reused)."""
    import time

    from django_mcp_scopes.mcp.bridge import run_in_request_thread

    results = [run_in_request_thread(_threads()) for _ in range(10)]
    assert all(loop_thread is threading.current_thread() for loop_thread, _ in results)
    workers = {worker for _, worker in results}
    assert threading.current_thread() not in workers
    deadline = time.monotonic() + 10
    while sum(worker.is_alive() for worker in workers) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(worker.is_alive() for worker in workers) <= 1
