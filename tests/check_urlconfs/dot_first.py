"""django-oauth-toolkit's metadata patterns before ours: its view answers the MCP endpoint's URL."""

from django.urls import include, path
from oauth2_provider.urls import metadata_urlpatterns

from django_mcp_scopes.mcp import mcp_path
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, server

urlpatterns = [
    path("", include(metadata_urlpatterns)),
    path("", include("django_mcp_scopes.urls")),
    *mcp_path("mcp", server, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication]),
]
