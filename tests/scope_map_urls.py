"""A URLconf of views protected in every way the package offers, for the scope map's tests."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import path
from django.views import View
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from django_mcp_scopes.authentication import MCPTokenAuthentication, TokenRequiredMixin, require_token
from django_mcp_scopes.permissions import (
    HasAlternativeScopes,
    HasScopes,
    HasScopesByMethod,
    ScopesRequiredMixin,
    scopes_required,
)


class Composed(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes & HasScopesByMethod]
    required_scopes = "notes:read"
    required_scopes_by_method = {"GET": "notes:list", "POST": "notes:write"}

    def get(self, request):
        return Response({})

    def post(self, request):
        return Response({})


class Either(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes | HasAlternativeScopes]
    required_scopes = ["notes:admin"]
    required_alternate_scopes = {"GET": [["notes:read"], ["notes:list", "tags:read"]]}

    def get(self, request):
        return Response({})


class Negated(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [~HasScopes]
    required_scopes = "banned"

    def get(self, request):
        return Response({})


class Dynamic(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes]

    def get_required_scopes(self, request, view):
        return "notes:read"

    def get(self, request):
        return Response({})


class Misdeclared(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes]

    def get(self, request):
        return Response({})


class Unprotected(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({})


class Notes(ViewSet):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopesByMethod]
    required_scopes_by_method = {"GET": "notes:list", "POST": "notes:write"}

    def list(self, request):
        return Response([])

    def create(self, request):
        return Response({})


class PlainScoped(ScopesRequiredMixin, View):
    required_scopes_by_method = {"GET": "notes:read", "DELETE": "notes:write"}

    def get(self, request):
        return HttpResponse("ok")

    def delete(self, request):
        return HttpResponse("gone")


class PlainToken(TokenRequiredMixin, View):
    def get(self, request):
        return HttpResponse("ok")


@scopes_required(any_of=[["notes:read"], ["notes:admin"]])
def scoped_function(request):
    return HttpResponse("ok")


@require_token
def token_function(request):
    return HttpResponse("ok")


def unprotected_function(request):
    return HttpResponse("ok")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/composed", Composed.as_view()),
    path("api/either", Either.as_view()),
    path("api/negated", Negated.as_view()),
    path("api/dynamic", Dynamic.as_view()),
    path("api/misdeclared", Misdeclared.as_view()),
    path("api/unprotected", Unprotected.as_view()),
    path("api/notes", Notes.as_view({"get": "list", "post": "create"})),
    path("plain/scoped", PlainScoped.as_view()),
    path("plain/token", PlainToken.as_view()),
    path("plain/function/<int:pk>", scoped_function),
    path("plain/token-function", token_function),
    path("plain/unprotected", unprotected_function),
]
