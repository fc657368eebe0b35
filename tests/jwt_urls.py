from django.urls import include, path

from django_mcp_scopes.mcp import LISTINGS_FOR_ANY_TOKEN, mcp_path
from tests.jwt_mcp import server

urlpatterns = [
    path("", include("django_mcp_scopes.urls")),
    # The default authentication (MCPTokenAuthentication): here, JWTs of the external issuer.
    *mcp_path("mcp", server, method_scopes=LISTINGS_FOR_ANY_TOKEN),
]
