from django.urls import include, path

from django_mcp_scopes.mcp import mcp_path
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, server

urlpatterns = [
    path("", include("django_mcp_scopes.urls")),
    *mcp_path("mcp", server, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication]),
    # The default authentication: real django-oauth-toolkit tokens bound to this endpoint.
    *mcp_path("dot/mcp", server, name="mcp-dot", method_scopes=LISTINGS_OPEN),
    path(
        "strict/",
        include(
            mcp_path(
                "mcp",
                server,
                name="mcp-strict",
                authentication_classes=[StaticTokenAuthentication],
                method_scopes={**LISTINGS_OPEN, "tools/list": "entries:read", "prompts/list": "entries:read"},
            )
        ),
    ),
]
