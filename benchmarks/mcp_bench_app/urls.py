from django.urls import include, path
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from benchmarks.mcp_bench_app.server import server
from django_mcp_scopes.mcp import LISTINGS_FOR_ANY_TOKEN, mcp_path
from django_mcp_scopes.principal import Principal

_PRINCIPAL = Principal(user=None, granted_scopes=frozenset(), client_id="bench", token_id="bench")


class StaticBenchToken(BaseAuthentication):
    """One fixed token: the benchmark measures the endpoint, not token validation."""

    def authenticate(self, request):
        if request.META.get("HTTP_AUTHORIZATION") != "Bearer bench":
            raise AuthenticationFailed("unknown token")
        return None, _PRINCIPAL

    def authenticate_header(self, request):
        return "Bearer"


urlpatterns = [
    *mcp_path("mcp", server, method_scopes=LISTINGS_FOR_ANY_TOKEN, authentication_classes=[StaticBenchToken]),
    # The metadata a real deployment serves (checks E006); after /mcp, so it costs that path nothing.
    path("", include("django_mcp_scopes.urls")),
]
