"""Django database connections in the SDK's worker threads.

The SDK runs a sync tool, resource or prompt function in a worker thread of its event loop
(``anyio.to_thread.run_sync``). Django closes a thread's connections only at the end of an HTTP
request handled by that same thread, so a connection opened by a tool would stay open for as long
as the worker thread lives. Each sync function of a served server is wrapped to do what Django does
around a request: ``close_old_connections()`` before and after the call (with ``CONN_MAX_AGE = 0``
the connection is closed after every call; persistent connections are kept and health-checked).

The fast lane (``django_mcp_scopes.mcp.serving``) serves requests outside Django's request cycle,
so nothing closes the connections its rare thread hops open: while a request is on the lane
(``on_fast_lane``), ``in_request_cycle()`` brackets them the same way.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections
from mcp.shared._callable_inspection import is_async_callable

_MARK = "__mcp_db_connections_handled__"

# True while the fast lane serves the request of this context (set by django_mcp_scopes.mcp.serving).
on_fast_lane: contextvars.ContextVar[bool] = contextvars.ContextVar("mcp_scopes_on_fast_lane", default=False)


def handle_connections(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` wrapped to close stale connections around each call; async functions as they are."""
    if fn is None or getattr(fn, _MARK, False) or is_async_callable(fn):
        return fn

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

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


def registration_count(server: Any) -> int:
    return (
        len(server._tool_manager._tools)
        + len(server._resource_manager._resources)
        + len(server._resource_manager._templates)
        + len(server._prompt_manager._prompts)
    )


def in_request_cycle(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` for ``sync_to_async``: on the fast lane, with the connection care Django's request
    cycle would give it (``close_old_connections()`` before and after); elsewhere ``fn`` itself."""
    return handle_connections(fn) if on_fast_lane.get() else fn
