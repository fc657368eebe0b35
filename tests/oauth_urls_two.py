"""Two MCP endpoints and the OAuth URLs under another prefix: a request without resource must name one."""

from django.urls import include, path

from django_mcp_scopes.mcp import LISTINGS_FOR_ANY_TOKEN, mcp_path
from django_mcp_scopes.oauth.urls import authorization_server_urls
from tests.oauth_urls import server

urlpatterns = [
    path("", include(authorization_server_urls(prefix="auth/"))),
    path("", include("django_mcp_scopes.urls")),
    *mcp_path("mcp", server, method_scopes=LISTINGS_FOR_ANY_TOKEN),
    *mcp_path("mcp-admin", server, method_scopes=LISTINGS_FOR_ANY_TOKEN),
]
