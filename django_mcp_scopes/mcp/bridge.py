"""Running the SDK's Streamable HTTP machinery inside Django, under WSGI and ASGI.

The SDK's ``StreamableHTTPSessionManager`` answers requests only while its ``run()`` context is
active, on one event loop, and a manager can be run once. So there is one manager per event loop
that serves requests, started lazily by the first request on that loop (Django ignores the ASGI
lifespan, so nothing else would start it) and kept running until the loop ends:

- under ASGI the serving loop is the server's own (uvicorn, daphne, hypercorn);
- under WSGI (runserver, gunicorn sync or gthread workers) the request thread runs the event loop
  itself: each process keeps a pool of loops, one per request served at the same time, and a
  request thread borrows one for the duration of its request (``run_in_request_thread``). No
  hand-off to another thread; a sync tool runs in that request thread too (``database``). A
  forked worker (``--preload``) starts with an empty pool.
  (``run_in_loop_thread``, one long-lived event-loop thread per process, remains for code that
  needs one loop shared by every thread.)

The manager is stateless and answers in JSON, so any worker can answer any request; the server's
own lifespan is entered once per serving loop (under WSGI, once per pooled loop).

The manager's transport is the fallback: a POST the view has checked goes straight to the SDK's
request handling (``django_mcp_scopes.mcp.sdk_direct``) whenever that can answer it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio
import anyio.abc
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, TransportSecuritySettings

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.mcp import context, database

logger = logging.getLogger("django_mcp_scopes.mcp")

_T = TypeVar("_T")


class _LoopThread:
    """One daemon thread running an event loop forever, for WSGI processes."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="django-mcp-scopes-loop", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        # A root task that never ends, rather than run_forever(): anyio (the SDK's to_thread for sync
        # tools) ties its worker threads to the task it finds running under run_until_complete(),
        # and without one it takes each request's task, so every sync call would start a new thread.
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        await asyncio.Event().wait()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        future: concurrent.futures.Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result()


_loop_thread: _LoopThread | None = None
_loop_thread_lock = threading.Lock()


def _forget_loop_thread() -> None:
    # The child of a fork has none of the parent's threads, and a lock held by one of them
    # at fork time would never be released.
    global _loop_thread, _loop_thread_lock
    _loop_thread = None
    _loop_thread_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_loop_thread)


def loop_thread() -> _LoopThread:
    """This process's event-loop thread, started on first use (and again after a fork)."""
    global _loop_thread
    current = _loop_thread
    if current is not None and current.pid == os.getpid() and current.thread.is_alive():
        return current
    with _loop_thread_lock:
        current = _loop_thread
        if current is None or current.pid != os.getpid() or not current.thread.is_alive():
            current = _LoopThread()
            _loop_thread = current
        return current


def run_in_loop_thread(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` on this process's event-loop thread and wait for its result (WSGI)."""
    return loop_thread().run(coroutine)


class _PooledLoop:
    """An event loop that a WSGI request thread runs itself while it serves one request.

    Sync tools run in the request thread itself (``database``), so a request is simply the task
    ``run_until_complete`` drives. With ``SYNC_CALLS_IN_REQUEST_THREAD`` off they run in anyio's
    worker threads: then a root task holds an anyio task group for the loop's whole life and every
    request runs as a task of that group, so anyio ties its worker threads to the root and keeps
    them from one request to the next, instead of starting one per call.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        database.serves_one_request(self.loop)
        self._group: anyio.abc.TaskGroup | None = None
        ready: asyncio.Future[None] = self.loop.create_future()
        self._root = self.loop.create_task(self._hold(ready))
        self.loop.run_until_complete(ready)

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        async with anyio.create_task_group() as group:
            self._group = group
            ready.set_result(None)
            await anyio.sleep_forever()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if mcp_scopes_settings.SYNC_CALLS_IN_REQUEST_THREAD:
            # Sync tools run in this thread (``database``), so the usual call starts no worker
            # thread and the request's own task is the cheapest way to run it. An async function
            # that calls ``anyio.to_thread`` itself gets a worker that ends with the request.
            return self.loop.run_until_complete(coroutine)
        # Wait on a plain future, not on the request's task: anyio would take a task run by
        # run_until_complete() for the root of the worker threads, and stop them when it ends.
        done: asyncio.Future[_T] = self.loop.create_future()

        async def request() -> None:
            try:
                result = await coroutine
            except Exception as exc:  # to the waiting thread, never into the task group
                if not done.done():
                    done.set_exception(exc)
            except BaseException:
                if not done.done():
                    done.cancel()
                raise
            else:
                if not done.done():
                    done.set_result(result)

        assert self._group is not None
        self.loop.call_soon(self._group.start_soon, request)
        return self.loop.run_until_complete(done)

    def close(self) -> None:
        """End the root task, and with it the loop's worker threads (they would keep the process
        from exiting: anyio's workers are not daemon threads when a request thread starts them)."""
        if self.loop.is_running() or self.loop.is_closed() or self._root.done():
            return
        self._root.cancel()
        with contextlib.suppress(Exception):  # shutting down: nothing more to do for this loop
            self.loop.run_until_complete(asyncio.wait([self._root]))


_idle_loops: list[_PooledLoop] = []
_idle_loops_lock = threading.Lock()


def _forget_pooled_loops() -> None:
    global _idle_loops, _idle_loops_lock
    _idle_loops = []
    _idle_loops_lock = threading.Lock()


def _close_pooled_loops() -> None:
    with _idle_loops_lock:
        idle = list(_idle_loops)
    for pooled in idle:
        if pooled.pid == os.getpid():
            pooled.close()


os.register_at_fork(after_in_child=_forget_pooled_loops)
# Before the interpreter joins non-daemon threads (atexit would run after it waited forever).
getattr(threading, "_register_atexit", atexit.register)(_close_pooled_loops)


def run_in_request_thread(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` in the calling (WSGI request) thread, on an event loop borrowed from this
    process's pool: one loop per request served at the same time, each kept for the next."""
    with _idle_loops_lock:
        pooled = _idle_loops.pop() if _idle_loops else None
    if pooled is None or pooled.pid != os.getpid():
        pooled = _PooledLoop()
    try:
        return pooled.run(coroutine)
    finally:
        with _idle_loops_lock:
            _idle_loops.append(pooled)


class Response:
    """What the SDK answered: status, headers, body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class SDKBridge:
    """Serves one ``MCPServer`` through one stateless, JSON-response session manager per event loop."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._managers: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[StreamableHTTPSessionManager]]
        self._managers = WeakKeyDictionary()
        self._lock = threading.Lock()
        self._runners: set[asyncio.Task[None]] = set()

    def _new_manager(self) -> StreamableHTTPSessionManager:
        return StreamableHTTPSessionManager(
            app=self.server._lowlevel_server,
            json_response=True,
            stateless=True,
            # Host is checked by Django (ALLOWED_HOSTS) and Origin by the view before we get here.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            # The view enforces MCP_SCOPES["MAX_BODY_BYTES"]; the SDK's own limit must not be lower.
            max_request_body_size=max(mcp_scopes_settings.MAX_BODY_BYTES, DEFAULT_MAX_REQUEST_BODY_SIZE),
        )

    async def manager(self) -> StreamableHTTPSessionManager:
        """The running manager of the current event loop, started on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            started = self._managers.get(loop)
            if started is None:
                started = loop.create_future()
                self._managers[loop] = started
                # Keep a reference: the loop holds tasks only weakly.
                self._runners.add(loop.create_task(self._keep_running(started)))
        return await asyncio.shield(started)

    async def _keep_running(self, started: asyncio.Future[StreamableHTTPSessionManager]) -> None:
        manager = self._new_manager()
        try:
            async with manager.run():
                started.set_result(manager)
                await asyncio.Event().wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                with self._lock:
                    self._managers.pop(asyncio.get_running_loop(), None)
            if not isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
                logger.exception("The MCP session manager stopped")
            raise

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` (which serves a request) in a WSGI request thread; its result."""
        return run_in_request_thread(coroutine)

    async def handle(self, scope: dict[str, Any], body: bytes, principal: Any, endpoint: Any) -> Response:
        """Run one HTTP exchange through the SDK, with the principal in the request's context."""
        manager = await self.manager()
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        finished = asyncio.Event()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()

        principal_token = context._principal.set(principal)
        endpoint_token = context._endpoint.set(endpoint)
        user = scope.get("user")
        auth_token = auth_context_var.set(user if isinstance(user, AuthenticatedUser) else None)
        try:
            await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]
        finally:
            finished.set()
            auth_context_var.reset(auth_token)
            context._endpoint.reset(endpoint_token)
            context._principal.reset(principal_token)
        return Response(status, headers, b"".join(chunks))
