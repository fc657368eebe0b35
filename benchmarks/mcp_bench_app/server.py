"""The MCP server both sides of the benchmark serve: one trivial tool."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("bench", subscriptions=False, log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    return a + b
