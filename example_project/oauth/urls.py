"""The authorization server's URLs, in django-oauth-toolkit's ``oauth2_provider`` namespace.

Include at the root (``path("", include("example_project.oauth.urls"))``): the RFC 8414 document
sits at the root ``/.well-known/oauth-authorization-server``, so the issuer DOT derives (for the
metadata and for ``iss`` in authorization responses) is the bare origin, the same value the
protected-resource metadata lists. The endpoints live under ``/o/``. Only what an MCP client needs
is mounted: no introspection, device flow, OIDC or application-management pages.
"""

from django.urls import path
from oauth2_provider import views as dot_views

from example_project.oauth.registration import PublicClientManagementView, PublicClientRegistrationView
from example_project.oauth.views import JournalAuthorizationView

app_name = "oauth2_provider"

urlpatterns = [
    path(
        ".well-known/oauth-authorization-server",
        dot_views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path("o/authorize/", JournalAuthorizationView.as_view(), name="authorize"),
    path("o/token/", dot_views.TokenView.as_view(), name="token"),
    path("o/revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("o/register/", PublicClientRegistrationView.as_view(), name="dcr-register"),
    path("o/register/<str:client_id>/", PublicClientManagementView.as_view(), name="dcr-register-management"),
]
