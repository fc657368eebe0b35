"""The MCP server whose tokens come from an external OpenID provider (tests/test_jwt_live.py)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from django_mcp_scopes import declarations
from django_mcp_scopes.mcp import get_principal, open_to_any_token, requires_scopes

_declared_before = set(declarations.declared_scopes())

server = MCPServer("jwt-journal", subscriptions=False)


@server.tool()
@open_to_any_token
def whoami() -> dict:
    """What tool code sees of a JWT caller: the Django user and the token's claims."""
    principal = get_principal()
    assert principal is not None
    return {
        "username": principal.user.get_username() if principal.user is not None else None,
        "sub": principal.claims.get("sub"),
        "tenant": principal.claims.get("tenant"),
        "issuer": principal.extra.get("issuer"),
        "client_id": principal.client_id,
        "scopes": sorted(principal.granted_scopes),
    }


@server.tool()
@requires_scopes("entries:read")
def list_entries() -> list[str]:
    return ["first entry"]


@server.tool()
@requires_scopes(
    "entries:write",
    when=lambda arguments, principal: "entries:publish" if arguments.get("public") else None,
    declares=["entries:publish"],
)
def create_entry(title: str, public: bool = False) -> str:
    return f"created {title}{' (public)' if public else ''}"


# The declaration registry is global and other tests expect it empty (as in tests/mcp_app.py).
for _name in set(declarations.declared_scopes()) - _declared_before:
    declarations._forget(_name)
