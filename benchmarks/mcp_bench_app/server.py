"""The MCP server both sides of the benchmark serve: one trivial tool."""

from mcp.server.mcpserver import MCPServer

from django_mcp_scopes.mcp import open_to_any_token

server = MCPServer("bench", subscriptions=False, log_level="WARNING")


@server.tool()
@open_to_any_token
def add(a: int, b: int) -> int:
    return a + b
