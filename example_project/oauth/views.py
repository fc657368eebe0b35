"""The authorization endpoint, as django-oauth-toolkit's view with three changes.

1. The request is validated before anyone is asked to sign in: DOT sends an anonymous user to the
   login page first and only then notices a missing PKCE challenge or an unregistered redirect
   URI. Here a bad request is refused at once (redirected back to the client with the error when
   the client and redirect URI are known, shown on an error page when they are not).
2. PKCE must use ``S256`` and every ``resource`` must be one this project serves, checked before
   login too (DOT refuses ``plain`` only after consent, and accepts any resource).
3. Error redirects carry ``iss`` like successful ones (RFC 9207 section 2), and the consent page
   gets each requested scope with its description and what it implies, from the scope registry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from django_mcp_scopes.registry import scope_registry
from example_project.oauth.resources import served_resources, unserved


def _with_iss(uri: str, issuer: str) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "iss" for key, _ in query):
        return uri
    return urlunsplit(parts._replace(query=urlencode([*query, ("iss", issuer)])))


class JournalAuthorizationView(AuthorizationView):
    template_name = "oauth2_provider/authorize.html"

    def validate_authorization_request(self, request: HttpRequest) -> tuple[list[str], dict[str, Any]]:
        scopes, credentials = super().validate_authorization_request(request)

        def refuse(error: str, description: str) -> OAuthToolkitError:
            return OAuthToolkitError(
                error=CustomOAuth2Error(error=error, description=description, state=credentials.get("state")),
                redirect_uri=credentials["redirect_uri"],
            )

        if request.GET.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", 'PKCE is required with code_challenge_method "S256".')
        foreign = unserved(request.GET.getlist("resource"), request)
        if foreign:
            raise refuse(
                "invalid_target",
                f"This server does not issue tokens for the resource {foreign[0]!r}; "
                f"ask for {' or '.join(served_resources(request))}.",
            )
        return scopes, credentials

    def handle_no_permission(self) -> HttpResponse:
        try:
            self.validate_authorization_request(self.request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        return super().handle_no_permission()

    def redirect(self, redirect_to: str, application: Any) -> HttpResponse:
        if oauth2_settings.COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS:
            redirect_to = _with_iss(redirect_to, oauth2_settings.oauth2_authorization_server_issuer(self.request))
        return super().redirect(redirect_to, application)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        requested = kwargs.get("scopes") or []
        context["requested_scopes"] = [
            {
                "name": name,
                "description": scope_registry.describe(name) or name,
                "includes": sorted(scope_registry.expand([name]) - {name}),
            }
            for name in requested
        ]
        return context
