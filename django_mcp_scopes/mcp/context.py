"""What tool, resource and prompt code can ask about the call it is serving.

``get_principal()`` returns the ``Principal`` of the request being served (user, OAuth client,
granted and effective scopes), or ``None`` outside a request. It works in async and sync tools:
the endpoint sets it in the request's context, which the SDK carries into its handlers and
``anyio.to_thread`` carries into the worker thread of a sync tool. The SDK's own
``mcp.server.auth.middleware.auth_context.get_access_token()`` works too.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_mcp_scopes.principal import Principal

_principal: ContextVar[Principal | None] = ContextVar("django_mcp_scopes_principal", default=None)
# The endpoint serving the current request (its method defaults and listing policy), for the backstop.
_endpoint: ContextVar[Any] = ContextVar("django_mcp_scopes_endpoint", default=None)


def get_principal() -> Principal | None:
    """The principal of the MCP request being served, or ``None`` outside one."""
    return _principal.get()


def require_principal() -> Principal:
    """Like ``get_principal()``, for code that only ever runs inside a request."""
    principal = _principal.get()
    if principal is None:
        raise LookupError("No MCP request is being served in this context.")
    return principal
