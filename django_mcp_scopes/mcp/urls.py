"""``mcp_path()``: the URL patterns of an MCP endpoint, for WSGI and ASGI alike."""

from __future__ import annotations

import asyncio
from typing import Any

from django.urls import URLPattern
from django.urls.resolvers import ResolverMatch, RoutePattern

from django_mcp_scopes.mcp.views import AsyncMCPView, MCPView


class MCPURLPattern(URLPattern):
    """Resolves to ``AsyncMCPView`` when Django serves the request on an event loop (ASGI), else
    to ``MCPView`` (WSGI). Django resolves an ASGI request on the server's loop, a WSGI one in a
    plain thread, so the serving mode is known exactly when the view is chosen."""

    def __init__(self, route: str, sync_view: Any, async_view: Any, name: str | None) -> None:
        super().__init__(RoutePattern(route, name=name, is_endpoint=True), sync_view, None, name)
        self.async_callback = async_view
        self.mcp_endpoint = sync_view.mcp_endpoint

    def resolve(self, path: str) -> ResolverMatch | None:
        match = super().resolve(path)
        if match is not None and _on_event_loop():
            match.func = self.async_callback
        return match


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def mcp_path(
    route: str,
    server: Any,
    *,
    name: str | None = "mcp",
    view_class: type[MCPView] = MCPView,
    async_view_class: type[AsyncMCPView] = AsyncMCPView,
    **view_kwargs: Any,
) -> list[URLPattern]:
    """URL patterns serving ``server`` at ``route``: ``urlpatterns = [*mcp_path("mcp", server, ...)]``.

    ``view_kwargs`` go to the view: ``authentication_classes``, ``permission_classes``,
    ``method_scopes``. Returns a list so the endpoint's metadata route can join it.
    """
    sync_view = view_class.as_view(server=server, **view_kwargs)
    async_view = async_view_class.as_view(server=server, endpoint=sync_view.mcp_endpoint, **view_kwargs)
    return [MCPURLPattern(route, sync_view, async_view, name)]
