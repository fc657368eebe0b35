"""The MCP endpoint: an ``MCPServer`` from the official SDK served by Django, with scopes per operation.

Public API (imported lazily, so importing this package needs no configured Django)::

    from django_mcp_scopes.mcp import mcp_path, requires_scopes, open_to_any_token, get_principal, endpoint_scopes
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AsyncMCPView": "django_mcp_scopes.mcp.views",
    "MCPView": "django_mcp_scopes.mcp.views",
    "mcp_path": "django_mcp_scopes.mcp.urls",
    "requires_scopes": "django_mcp_scopes.mcp.operations",
    "open_to_any_token": "django_mcp_scopes.mcp.operations",
    "ANY_VALID_TOKEN": "django_mcp_scopes.mcp.operations",
    "LISTINGS_FOR_ANY_TOKEN": "django_mcp_scopes.mcp.operations",
    "endpoint_scopes": "django_mcp_scopes.mcp.operations",
    "REQUIRED_SCOPES_META_KEY": "django_mcp_scopes.mcp.operations",
    "ALTERNATIVE_SCOPES_META_KEY": "django_mcp_scopes.mcp.operations",
    "get_principal": "django_mcp_scopes.mcp.context",
    "require_principal": "django_mcp_scopes.mcp.context",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
