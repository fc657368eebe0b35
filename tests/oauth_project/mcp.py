"""The minimal project's MCP server: one read tool in the baseline, one write tool behind step-up."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from django_mcp_scopes.declarations import declare_scope
from django_mcp_scopes.mcp import get_principal, requires_scopes

SOURCE = "tests.oauth_project"
declare_scope("notes:read", "Read your notes", advertised=True, source=SOURCE)
declare_scope("notes:write", "Write notes for you", implies=["notes:read"], source=SOURCE)

server = MCPServer("Minimal notes", subscriptions=False)


@server.tool()
@requires_scopes("notes:read")
def whoami() -> dict[str, Any]:
    """The signed-in user and the scopes of this connection."""
    principal = get_principal()
    assert principal is not None and principal.user is not None
    return {"username": principal.user.get_username(), "scopes": sorted(principal.effective_scopes)}


@server.tool()
@requires_scopes("notes:write")
def write_note(text: str) -> dict[str, Any]:
    """Pretend to save a note."""
    return {"saved": text}
