from django.urls import include, path

from django_mcp_scopes.mcp import LISTINGS_FOR_ANY_TOKEN, mcp_path
from tests.oauth_project.mcp import server

urlpatterns = [
    path("", include("django_mcp_scopes.oauth.urls")),  # the authorization server
    path("", include("django_mcp_scopes.urls")),  # protected-resource metadata
    *mcp_path("mcp", server, method_scopes=LISTINGS_FOR_ANY_TOKEN),  # the MCP endpoint
]
