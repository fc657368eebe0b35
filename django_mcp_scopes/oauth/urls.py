"""The authorization server's URLs, in django-oauth-toolkit's ``oauth2_provider`` namespace.

Include at the root of the URLconf::

    path("", include("django_mcp_scopes.oauth.urls")),             # endpoints under /o/
    path("", include(authorization_server_urls(prefix="oauth/"))), # or another prefix

The RFC 8414 document is always at the root ``/.well-known/oauth-authorization-server`` (below the
script prefix), whatever prefix the endpoints use, so the issuer DOT derives for the metadata and
for ``iss`` in authorization responses is the bare origin (plus any script prefix): the value the
protected-resource metadata lists. Only what an MCP client needs is mounted: metadata,
authorization (with a login page), token, revocation, registration (RFC 7591/7592); no
introspection, device flow, OIDC or application-management pages. The machine endpoints answer
CORS preflights from any origin.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from oauth2_provider import views as dot_views

from django_mcp_scopes.oauth.cors import allow_any_origin
from django_mcp_scopes.oauth.registration import PublicClientManagementView, PublicClientRegistrationView
from django_mcp_scopes.oauth.views import MCPAuthorizationView, MCPLoginView, refuse_nul_characters

app_name = "oauth2_provider"


def _patterns(prefix: str) -> list[Any]:
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    return [
        path(
            ".well-known/oauth-authorization-server",
            allow_any_origin("GET")(dot_views.OAuthServerMetadataView.as_view()),
            name="oauth-server-metadata",
        ),
        path(f"{prefix}authorize/", refuse_nul_characters(MCPAuthorizationView.as_view()), name="authorize"),
        path(f"{prefix}login/", MCPLoginView.as_view(), name="mcp-login"),
        path(
            f"{prefix}token/",
            allow_any_origin("POST")(refuse_nul_characters(dot_views.TokenView.as_view())),
            name="token",
        ),
        path(
            f"{prefix}revoke_token/",
            allow_any_origin("POST")(refuse_nul_characters(dot_views.RevokeTokenView.as_view())),
            name="revoke-token",
        ),
        path(
            f"{prefix}register/",
            allow_any_origin("POST")(refuse_nul_characters(PublicClientRegistrationView.as_view())),
            name="dcr-register",
        ),
        path(
            f"{prefix}register/<str:client_id>/",
            allow_any_origin("GET, PUT, DELETE")(refuse_nul_characters(PublicClientManagementView.as_view())),
            name="dcr-register-management",
        ),
    ]


def authorization_server_urls(prefix: str = "o/") -> tuple[list[Any], str]:
    """``include()`` argument: the endpoints under ``prefix``, the metadata at the root."""
    return _patterns(prefix), app_name


urlpatterns = _patterns("o/")
