"""An endpoint whose server gains an undeclared tool after the endpoint was created (E201)."""

from django.urls import include, path
from mcp.server.mcpserver import MCPServer

from django_mcp_scopes.mcp import mcp_path
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication

late = MCPServer("late", subscriptions=False)

urlpatterns = [
    path("", include("django_mcp_scopes.urls")),
    *mcp_path("mcp", late, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication]),
]


@late.tool()
def added_later() -> str:
    return "declares nothing"
