"""Three copies of one trivial DRF view: unprotected, ours, django-oauth-toolkit's stock classes."""

from django.urls import path
from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasScope
from rest_framework.response import Response
from rest_framework.views import APIView

from django_mcp_scopes.authentication import MCPTokenAuthentication
from django_mcp_scopes.permissions import HasScopes


class Unprotected(APIView):
    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response({"ok": True})


class Protected(Unprotected):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes]
    required_scopes = "bench:read"


class DotStock(Unprotected):
    authentication_classes = [OAuth2Authentication]
    permission_classes = [TokenHasScope]
    required_scopes = ["bench:read"]


urlpatterns = [
    path("bench/unprotected", Unprotected.as_view()),
    path("bench/protected", Protected.as_view()),
    path("bench/dot", DotStock.as_view()),
]
