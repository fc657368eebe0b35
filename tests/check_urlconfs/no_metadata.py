"""An MCP endpoint without django_mcp_scopes.urls: nothing serves its metadata."""

from django.urls import path
from oauth2_provider.views import OAuthServerMetadataView

from django_mcp_scopes.mcp import mcp_path
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, server

urlpatterns = [
    path(".well-known/oauth-authorization-server", OAuthServerMetadataView.as_view()),
    *mcp_path("mcp", server, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication]),
]
