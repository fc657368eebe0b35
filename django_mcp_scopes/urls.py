"""Protected-resource metadata URLs. Include at the site root: ``path("", include("django_mcp_scopes.urls"))``."""

from django.urls import re_path

from django_mcp_scopes.views import ProtectedResourceMetadataView

app_name = "mcp_scopes"

# Everything under the well-known prefix reaches the view, so unknown and malformed paths get
# the view's JSON 404 rather than the project's HTML one.
urlpatterns = [
    re_path(
        r"^\.well-known/oauth-protected-resource/?\Z",
        ProtectedResourceMetadataView.as_view(),
        name="protected-resource-metadata-root",
    ),
    re_path(
        r"^\.well-known/oauth-protected-resource/(?P<resource_path>[\s\S]+)\Z",
        ProtectedResourceMetadataView.as_view(),
        name="protected-resource-metadata",
    ),
]
