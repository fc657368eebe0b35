"""Django database connections, and where a sync tool, resource or prompt function runs.

The SDK runs a sync function in a worker thread of its event loop (``anyio.to_thread.run_sync``):
a thread hop per call, which on one core costs about as much as Django's whole handling of a
request. Each sync function of a served server is wrapped into an async one that decides where it
runs:

- **Under WSGI**, the request thread runs the event loop itself, one loop per request in flight
  (``bridge.run_in_request_thread``): nothing else can run on that loop while the call runs, so
  the function runs right there, in the request thread, as a plain Django view's code would: its
  queries use the request's connection (inside the request's transaction with
  ``ATOMIC_REQUESTS``), which Django closes at the end of the request. While it runs, the loop
  is not marked running in this thread, so Django's async-safety check sees plain sync code.
  ``MCP_SCOPES["SYNC_CALLS_IN_REQUEST_THREAD"] = False`` keeps the worker thread instead.
- **Under ASGI** (and on any other loop) it runs in a worker thread, as under the SDK's own
  server. Django closes a thread's connections only at the end of an HTTP request handled by that
  same thread, so a connection opened there would stay open for as long as the worker thread
  lives: the call does what Django does around a request, ``close_old_connections()`` before and
  after (with ``CONN_MAX_AGE = 0`` the connection is closed after every call; persistent
  connections are kept and health-checked).

The fast lane (``django_mcp_scopes.mcp.serving``) serves requests outside Django's request cycle,
so nothing closes the connections its rare thread hops open: while a request is on the lane
(``on_fast_lane``), ``in_request_cycle()`` brackets them the same way.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import weakref
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from django.db import close_old_connections
from mcp.shared._callable_inspection import is_async_callable

from django_mcp_scopes.conf import mcp_scopes_settings

_MARK = "__mcp_db_connections_handled__"
_CARED = "__mcp_db_connection_care__"  # on what with_connection_care() returns

# True while the fast lane serves the request of this context (set by django_mcp_scopes.mcp.serving).
on_fast_lane: contextvars.ContextVar[bool] = contextvars.ContextVar("mcp_scopes_on_fast_lane", default=False)

# Event loops that a WSGI request thread runs for exactly one request at a time (bridge._PooledLoop).
_request_thread_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def serves_one_request(loop: asyncio.AbstractEventLoop) -> None:
    """Mark ``loop`` as run by a request thread, one request at a time: sync calls may run inline."""
    _request_thread_loops.add(loop)


def _in_this_thread(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    # The loop is this thread's own and waits for the call; unmarked as running while the sync
    # code runs, so that Django's async-safety check (and asyncio.run inside it) see a sync caller.
    asyncio.events._set_running_loop(None)
    try:
        return fn(*args, **kwargs)
    finally:
        asyncio.events._set_running_loop(loop)


def with_connection_care(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Sync ``fn`` with what Django does around a request: ``close_old_connections()`` before and after."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    setattr(call, _CARED, True)
    return call


def handle_connections(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A sync ``fn`` as an async function that runs it where it belongs (see above); async
    functions as they are."""
    if fn is None or getattr(fn, _MARK, False) or is_async_callable(fn):
        return fn

    in_worker_thread = with_connection_care(fn)

    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        if loop in _request_thread_loops and mcp_scopes_settings.SYNC_CALLS_IN_REQUEST_THREAD:
            return _in_this_thread(loop, fn, args, kwargs)
        return await anyio.to_thread.run_sync(functools.partial(in_worker_thread, *args, **kwargs))

    setattr(call, _MARK, True)
    return call


def handle_server_connections(server: Any) -> None:
    """Wrap every sync function ``server`` has registered so far (idempotent)."""
    registrations: list[Any] = [
        *server._tool_manager.list_tools(),
        *server._resource_manager.list_resources(),
        *server._resource_manager.list_templates(),
        *server._prompt_manager.list_prompts(),
    ]
    for registration in registrations:
        fn = getattr(registration, "fn", None)
        if fn is not None and not getattr(fn, _MARK, False):
            registration.fn = handle_connections(fn)
            if hasattr(registration, "is_async"):  # a Tool decides at registration how to call fn
                registration.is_async = is_async_callable(registration.fn)


def registration_count(server: Any) -> int:
    return (
        len(server._tool_manager._tools)
        + len(server._resource_manager._resources)
        + len(server._resource_manager._templates)
        + len(server._prompt_manager._prompts)
    )


def in_request_cycle(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Sync ``fn`` for ``sync_to_async``: on the fast lane, with the connection care Django's request
    cycle would give it (``close_old_connections()`` before and after); elsewhere ``fn`` itself."""
    return with_connection_care(fn) if on_fast_lane.get() else fn
