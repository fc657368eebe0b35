"""URLs of the in-process authorization-server tests: the package's OAuth URLs, the metadata, one MCP endpoint."""

from django.urls import include, path
from mcp.server.mcpserver import MCPServer

from django_mcp_scopes.mcp import LISTINGS_FOR_ANY_TOKEN, mcp_path

server = MCPServer("oauth tests", subscriptions=False)

urlpatterns = [
    path("", include("django_mcp_scopes.oauth.urls")),
    path("", include("django_mcp_scopes.urls")),
    *mcp_path("mcp", server, method_scopes=LISTINGS_FOR_ANY_TOKEN),
]
