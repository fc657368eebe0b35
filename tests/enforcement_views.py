"""Views and URLs the enforcement tests (and the live servers they start) call."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views import View
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from django_mcp_scopes.authentication import MCPTokenAuthentication, require_token
from django_mcp_scopes.permissions import (
    HasAlternativeScopes,
    HasScopes,
    HasScopesByMethod,
    HasValidToken,
    ScopeChallengeMixin,
    ScopesRequiredMixin,
    require_scopes,
    scopes_required,
)
from django_mcp_scopes.principal import get_principal
from django_mcp_scopes.requirements import ScopeRequirement


def _describe(request):
    principal = get_principal(request)
    return {
        "client_id": principal.client_id,
        "granted": sorted(principal.granted_scopes),
        "effective": sorted(principal.effective_scopes),
        "resource": principal.resource,
        "user_id": principal.extra.get("user_id"),
    }


class NotesView(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes]
    required_scopes = ["notes:read"]

    def get(self, request):
        return Response(_describe(request))

    def post(self, request):
        return Response({"created": True, "data": request.data})


class AlternativesView(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasAlternativeScopes]
    required_alternate_scopes = {
        "GET": [["notes:read"]],
        "POST": [["notes:write", "notes:read"], ["admin"]],
    }

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True})


class ByMethodView(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopesByMethod]
    required_scopes_by_method = {"GET": "notes:read", "DELETE": ["notes:write", "notes:delete"]}

    def get(self, request):
        return Response({"ok": True})

    def delete(self, request):
        return Response({"deleted": True})

    def put(self, request):
        return Response({"never": True})


class ComposedOrView(ScopeChallengeMixin, APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [IsAdminUser | HasScopes]
    required_scopes = "notes:write"

    def get(self, request):
        return Response({"ok": True})


class ComposedNotView(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasValidToken & ~HasScopes]
    required_scopes = "admin"

    def get(self, request):
        return Response({"not_admin": True})


class BareNotView(APIView):
    """``~HasScopes`` alone: "a token without admin", never "anyone without a token"."""

    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [~HasScopes]
    required_scopes = "admin"

    def get(self, request):
        return Response({"not_admin": True})


class ComposedAndView(APIView):
    """Composed, without ScopeChallengeMixin: the challenge needs the exception handler setting."""

    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasValidToken & HasScopes]
    required_scopes = "notes:write"

    def get(self, request):
        return Response({"ok": True})


class DynamicView(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasValidToken]

    def get(self, request):
        needed = request.query_params.get("need", "notes:read").split()
        require_scopes(request, *needed)
        return Response({"ok": True})


class NoRequirementView(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes]

    def get(self, request):
        return Response({"open": "door"})


class ApiResourceView(APIView):
    """One resource for the whole API: tokens are bound to /api, not to each URL."""

    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes]
    required_scopes = "notes:read"
    mcp_resource_path = "/api"

    def get(self, request, pk):
        return Response({"pk": pk})


class UnprotectedView(APIView):
    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response({"ok": True})


@require_token
def mcp_view(request: HttpRequest):
    return JsonResponse(_describe(request))


@require_token
def mcp_admin_view(request: HttpRequest):
    return JsonResponse(_describe(request))


@scopes_required("notes:read")
def plain_scoped(request: HttpRequest):
    return JsonResponse(_describe(request))


@scopes_required(any_of=[["notes:write"], ["admin"]])
def plain_alternatives(request: HttpRequest):
    return JsonResponse({"ok": True})


@require_token
def plain_dynamic(request: HttpRequest):
    require_scopes(request, requirement=ScopeRequirement.any_of(["notes:delete"], ["admin"]))
    return JsonResponse({"ok": True})


class PlainClassView(ScopesRequiredMixin, View):
    required_scopes_by_method = {"GET": "notes:read", "POST": ["notes:write"]}

    def get(self, request):
        return JsonResponse({"ok": True})

    def post(self, request):
        return JsonResponse({"posted": True})


@require_token
def plain_file(request: HttpRequest, name: str) -> JsonResponse:
    """One resource per URL (a catch-all route): each file is its own audience."""
    return JsonResponse({"name": name, **_describe(request)})


urlpatterns = [
    path("api/notes", NotesView.as_view()),
    path("api/alternatives", AlternativesView.as_view()),
    path("api/by-method", ByMethodView.as_view()),
    path("api/composed-or", ComposedOrView.as_view()),
    path("api/composed-not", ComposedNotView.as_view()),
    path("api/composed-and", ComposedAndView.as_view()),
    path("api/bare-not", BareNotView.as_view()),
    path("api/dynamic", DynamicView.as_view()),
    path("api/no-requirement", NoRequirementView.as_view()),
    path("api/items/<int:pk>", ApiResourceView.as_view()),
    path("api/unprotected", UnprotectedView.as_view()),
    path("mcp", mcp_view),
    path("mcp-admin", mcp_admin_view),
    path("plain/scoped", plain_scoped),
    path("plain/alternatives", plain_alternatives),
    path("plain/dynamic", plain_dynamic),
    path("plain/class", PlainClassView.as_view()),
    path("files/<path:name>", plain_file),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("", include("django_mcp_scopes.urls")),
]
