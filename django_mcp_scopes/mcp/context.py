"""What tool, resource and prompt code can ask about the call it is serving.

``get_principal()`` returns the ``Principal`` of the request being served (user, OAuth client,
granted and effective scopes), or ``None`` outside a request. It works in async and sync tools:
the endpoint sets it in the request's context, which the SDK carries into its handlers and
``anyio.to_thread`` carries into the worker thread of a sync tool. The SDK's own
``mcp.server.auth.middleware.auth_context.get_access_token()`` works too.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any

from django_mcp_scopes.principal import Principal

_principal: ContextVar[Principal | None] = ContextVar("django_mcp_scopes_principal", default=None)
# The endpoint serving the current request (its method defaults and listing policy), for the backstop.
_endpoint: ContextVar[Any] = ContextVar("django_mcp_scopes_endpoint", default=None)
# (endpoint, method, JSON-RPC id, params without _meta) of the request the endpoint's view has just
# decided and allowed: the backstop does not decide that one again. Anything else (another
# request, or this one rewritten by an SDK middleware on the way) it decides itself.
_cleared: ContextVar[tuple[Any, Any, Any, dict[str, Any]] | None] = ContextVar(
    "django_mcp_scopes_cleared", default=None
)


def decided_params(params: Any) -> dict[str, Any] | None:
    """What of ``params`` a scope decision reads: all of it but the ``_meta`` envelope."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        return None
    return {key: value for key, value in params.items() if key != "_meta"}


@dataclass(frozen=True)
class RequestPrincipal(Principal):
    """A principal whose effective scopes were computed once, when the request was checked.

    Every decision of one request (the view's, the SDK-side backstop's, the listing filter's, tool
    code's) sees the same scopes, and none of them needs the scope registry (or its database) on
    the event loop.
    """

    pinned_effective_scopes: frozenset[str] = frozenset()
    obtainable_scopes: frozenset[str] | None = None
    """For a listing under the ``"obtainable"`` policy: the effective scopes this client could hold
    after step-up (``django_mcp_scopes.mcp.listing.obtainable_scopes``); ``None`` when not computed."""

    @property
    def effective_scopes(self) -> frozenset[str]:
        return self.pinned_effective_scopes


_PRINCIPAL_FIELDS = tuple(field.name for field in fields(Principal))


def pin(principal: Principal) -> RequestPrincipal:
    """``principal`` with its effective scopes computed now (call where the database may be used)."""
    if isinstance(principal, RequestPrincipal):
        return principal
    if type(principal) is not Principal:  # a subclass: its own fields and properties, read as such
        values = {name: getattr(principal, name) for name in _PRINCIPAL_FIELDS}
        return RequestPrincipal(**values, pinned_effective_scopes=principal.effective_scopes)
    # The same object the dataclass __init__ would build (it has no __post_init__), built on every
    # MCP request without its per-field object.__setattr__ calls.
    pinned = object.__new__(RequestPrincipal)
    state = pinned.__dict__
    state.update(principal.__dict__)
    state["pinned_effective_scopes"] = principal.effective_scopes
    state["obtainable_scopes"] = None
    return pinned


def get_principal() -> Principal | None:
    """The principal of the MCP request being served, or ``None`` outside one."""
    return _principal.get()


def require_principal() -> Principal:
    """Like ``get_principal()``, for code that only ever runs inside a request."""
    principal = _principal.get()
    if principal is None:
        raise LookupError("No MCP request is being served in this context.")
    return principal
