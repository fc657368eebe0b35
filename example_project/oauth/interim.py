"""A stand-in for the package's token authentication until the enforcement branch lands.

``ResourceBoundOAuth2Authentication``: django-oauth-toolkit's DRF authentication (expiry,
revocation, and the exact-resource check of ``RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR``), plus a
refusal of tokens bound to no resource (DOT lets them through everywhere, registration tokens
included). Yields a ``Principal``, whose effective scopes come from the live scope registry.
"""

from __future__ import annotations

from typing import Any

from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.settings import oauth2_settings

from django_mcp_scopes.exceptions import InvalidToken
from django_mcp_scopes.principal import Principal


class ResourceBoundOAuth2Authentication(OAuth2Authentication):
    mcp_scopes_protected = True  # views using it are protected resources (discovery publishes them)

    def authenticate(self, request: Any) -> tuple[Any, Principal] | None:
        # DOT reads request.POST; on the DRF wrapper that parses the JSON-RPC body (415 for JSON).
        result = super().authenticate(getattr(request, "_request", request))
        if result is None:
            if request.META.get("HTTP_AUTHORIZATION"):
                raise InvalidToken("The access token is invalid, expired, revoked or for another resource.")
            return None
        user, token = result
        if not token.resource or token.scope == oauth2_settings.DCR_REGISTRATION_SCOPE:
            raise InvalidToken("The access token is not bound to this resource.")
        principal = Principal(
            user=user,
            granted_scopes=frozenset(token.scope.split()),
            application=token.application,
            client_id=getattr(token.application, "client_id", None),
            expires=token.expires,
            resource=token.resource[0],
            token_id=str(token.pk),
        )
        return user, principal
