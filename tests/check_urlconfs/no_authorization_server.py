"""Its own authorization server (no AUTHORIZATION_SERVERS), but no RFC 8414 document: check E007."""

from django.urls import include, path

from django_mcp_scopes.mcp import LISTINGS_FOR_ANY_TOKEN, mcp_path
from tests.mcp_app import StaticTokenAuthentication, server

urlpatterns = [
    path("", include("django_mcp_scopes.urls")),
    *mcp_path("mcp", server, method_scopes=LISTINGS_FOR_ANY_TOKEN, authentication_classes=[StaticTokenAuthentication]),
]
