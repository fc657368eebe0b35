from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views import View
from oauth2_provider.views import OAuthServerMetadataView
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response
from rest_framework.views import APIView

from django_mcp_scopes.mcp import mcp_path
from django_mcp_scopes.resources import mark_protected_resource
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication
from tests.mcp_app import server as mcp_server
from tests.views import registry_state


def _endpoint(request):
    return HttpResponse("endpoint")


def _view():
    """A distinct view function per route: the marker is an attribute of the view object itself."""

    def view(request):
        return HttpResponse("endpoint")

    return view


class _ClassEndpoint(View):
    def get(self, request):
        return HttpResponse("class endpoint")


def _token_required():
    """Like the enforcement branch's function decorators, which set the attribute on their wrapper."""
    view = _view()
    view.mcp_scopes_protected = True
    return view


class _TokenRequiredMixin:
    mcp_scopes_protected = True


class _MixinEndpoint(_TokenRequiredMixin, View):
    def get(self, request):
        return HttpResponse("mixin endpoint")


class _TakesAuthenticationClasses(View):
    """A plain Django class-based view configured like the MCP endpoint view: as_view(authentication_classes=...)."""

    authentication_classes = ()

    def get(self, request):
        return HttpResponse("configured endpoint")


class _ProtectedByAttribute(BaseAuthentication):
    """Stands in for the enforcement branch's authentication class: only the marker attribute matters."""

    mcp_scopes_protected = True

    def authenticate(self, request):
        return None


class _DRFProtected(APIView):
    authentication_classes = [_ProtectedByAttribute]
    permission_classes = []

    def get(self, request):
        return Response({"ok": True})


class _DRFUnprotected(APIView):
    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response({"ok": True})


@api_view(["GET"])
@authentication_classes([_ProtectedByAttribute])
@permission_classes([])
def _drf_function(request):
    return Response({"ok": True})


# Endpoints whose protected-resource metadata the discovery tests read (tests/test_views.py).
discovery_tenant_patterns = [
    path("mcp/", mark_protected_resource(_view(), scopes=lambda: ["tenant:read"], name="Tenant A"), name="mcp"),
]
discovery_patterns = [
    path("mcp/", mark_protected_resource(_view(), scopes=None), name="mcp"),
    path("narrow/mcp", mark_protected_resource(_view(), scopes=lambda: ["journal:read"]), name="narrow"),
    path("tenant/a/", include(discovery_tenant_patterns)),
    path("class/", mark_protected_resource(_ClassEndpoint).as_view(), name="class"),
    path("drf/protected/", _DRFProtected.as_view(), name="drf-protected"),
    path("drf/initkwargs/", _DRFUnprotected.as_view(authentication_classes=[_ProtectedByAttribute]), name="drf-kw"),
    path("drf/function/", _drf_function, name="drf-function"),
    path(
        "configured/",
        _TakesAuthenticationClasses.as_view(authentication_classes=[_ProtectedByAttribute]),
        name="configured",
    ),
    path("unconfigured/", _TakesAuthenticationClasses.as_view(), name="unconfigured"),
    path("drf/unprotected/", _DRFUnprotected.as_view(), name="drf-unprotected"),
    path("token-required/", _token_required(), name="token-required"),
    path("mixin/", _MixinEndpoint.as_view(), name="mixin"),
    path("plain/", _endpoint, name="plain"),
]


urlpatterns = [
    path("admin/", admin.site.urls),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("", include("django_mcp_scopes.urls")),
    # RFC 8414 at the root: this test project is its own authorization server (check E007).
    path(".well-known/oauth-authorization-server", OAuthServerMetadataView.as_view()),
    *discovery_patterns,
    path("_registry/", registry_state),
    # The MCP test server, so the admin's MCP pages (tests/test_admin_operations.py) have an endpoint to show.
    path(
        "journal/",
        include(
            mcp_path(
                "mcp",
                mcp_server,
                name="journal-mcp",
                method_scopes=LISTINGS_OPEN,
                authentication_classes=[StaticTokenAuthentication],
            )
        ),
    ),
]
