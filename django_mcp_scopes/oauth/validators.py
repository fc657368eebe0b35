"""``MCPOAuth2Validator`` (``OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"]``): django-oauth-toolkit's validator, plus
what an MCP authorization server needs and DOT leaves open.

- Resource binding (RFC 8707): DOT checks that a ``resource`` is a well-formed URI and that a token
  request does not widen its grant, but issues tokens for any resource, and for none. Here every
  grant, and so every token minted from it, is bound to one resource of this project
  (``resources.served_resources``): another resource gets ``invalid_target``; no resource binds the
  grant to the only one, or gets ``invalid_target`` naming the choices. Refreshing keeps the binding
  (DOT copies the refresh token's resources).
- ``redirect_uri`` at the token endpoint (RFC 6749 section 4.1.3): the authorization endpoint of this
  package requires it, so the token request must carry it too; oauthlib would otherwise fill in
  a client's only registered URI.
- Code replay (RFC 6749 section 4.1.2): DOT deletes a used code, so a replay only fails. Here the
  tokens issued for a code are remembered (in the cache, for ``CODE_REPLAY_MEMORY_SECONDS``) and
  revoked when the code comes back.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.cache import caches
from django.http import HttpRequest
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request as OauthlibRequest
from oauthlib.oauth2.rfc6749 import errors

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.oauth import resources
from django_mcp_scopes.oauth.conf import oauth_settings

logger = logging.getLogger(__name__)


class _HeadersRequest(HttpRequest):
    """Just enough of a Django request, rebuilt from the headers oauthlib carries, to build URLs."""

    def __init__(self, oauthlib_request: OauthlibRequest) -> None:
        super().__init__()
        self.META = dict(oauthlib_request.headers)
        self._secure = "X_DJANGO_OAUTH_TOOLKIT_SECURE" in oauthlib_request.headers

    def _get_scheme(self) -> str:
        return "https" if self._secure else "http"


def requested_resources(request: OauthlibRequest) -> list[str]:
    """Every ``resource`` the request names: credentials (a list), the body, or the query."""
    value = getattr(request, "resource", None)
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    from_body = [v for k, v in (request.decoded_body or []) if k == "resource"]
    if from_body:
        return from_body
    return [value] if isinstance(value, str) and value.strip() else []


def _invalid_target(request: OauthlibRequest, description: str) -> errors.CustomOAuth2Error:
    return errors.CustomOAuth2Error(
        error="invalid_target", description=description, request=request, state=getattr(request, "state", None)
    )


def _code_key(code: str) -> str:
    digest = hashlib.sha256(code.encode()).hexdigest()
    return f"{mcp_scopes_settings.CACHE_KEY_PREFIX}:oauth:code:{digest}"


class MCPOAuth2Validator(OAuth2Validator):
    def _check_resources(self, request: OauthlibRequest, requested: list[str]) -> None:
        http_request = _HeadersRequest(request)
        if resources.unserved(requested, http_request):
            raise _invalid_target(request, resources.refusal(http_request, requested))

    def save_authorization_code(
        self, client_id: str, code: dict[str, Any], request: OauthlibRequest, *args: Any, **kwargs: Any
    ) -> None:
        requested = requested_resources(request)
        if requested:
            self._check_resources(request, requested)
        else:
            default = resources.default_resource(_HeadersRequest(request))
            if default is None:
                raise _invalid_target(request, resources.refusal(_HeadersRequest(request), []))
            requested = [default]
        request.resource = requested
        super().save_authorization_code(client_id, code, request, *args, **kwargs)

    def validate_code(
        self, client_id: str, code: str, client: Any, request: OauthlibRequest, *args: Any, **kwargs: Any
    ) -> bool:
        valid = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if valid:
            self._check_resources(request, requested_resources(request))
        else:
            self._revoke_tokens_of_replayed_code(code)
        return valid

    def confirm_redirect_uri(
        self, client_id: str, code: str, redirect_uri: str, client: Any, *args: Any, **kwargs: Any
    ) -> bool:
        request = kwargs.get("request") or (args[0] if args else None)
        if request is not None and getattr(request, "using_default_redirect_uri", False):
            raise errors.InvalidRequestError(
                description="redirect_uri is required: send the one of the authorization request.", request=request
            )
        return bool(super().confirm_redirect_uri(client_id, code, redirect_uri, client, *args, **kwargs))

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: OauthlibRequest, *args: Any, **kwargs: Any
    ) -> bool:
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if valid:
            self._check_resources(request, requested_resources(request))
        return valid

    # Code replay --------------------------------------------------------------------------------
    def _create_access_token(
        self, expires: Any, request: OauthlibRequest, token: Any, source_refresh_token: Any = None
    ) -> Any:
        access_token = super()._create_access_token(expires, request, token, source_refresh_token=source_refresh_token)
        request._mcp_issued_access_tokens = [*getattr(request, "_mcp_issued_access_tokens", []), access_token.pk]
        return access_token

    def _create_refresh_token(self, request: OauthlibRequest, *args: Any, **kwargs: Any) -> Any:
        refresh_token = super()._create_refresh_token(request, *args, **kwargs)
        request._mcp_issued_families = [*getattr(request, "_mcp_issued_families", []), str(refresh_token.token_family)]
        return refresh_token

    def save_bearer_token(self, token: Any, request: OauthlibRequest, *args: Any, **kwargs: Any) -> Any:
        result = super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "authorization_code" and getattr(request, "code", None):
            issued = {
                "access": getattr(request, "_mcp_issued_access_tokens", []),
                "families": getattr(request, "_mcp_issued_families", []),
            }
            try:
                self._cache().set(_code_key(request.code), issued, oauth_settings.CODE_REPLAY_MEMORY_SECONDS)
            except Exception:  # the cache being down must not fail a valid exchange
                logger.warning("Could not remember the tokens of an authorization code (cache unavailable)")
        return result

    def _revoke_tokens_of_replayed_code(self, code: str) -> None:
        if not code:
            return
        try:
            issued = self._cache().get(_code_key(code))
        except Exception:
            logger.warning("Could not look up the tokens of a replayed authorization code (cache unavailable)")
            return
        if not issued:
            return
        logger.warning("An authorization code was used twice; revoking the tokens issued for it")
        refresh_model = get_refresh_token_model()
        for token in refresh_model.objects.filter(token_family__in=issued["families"], revoked__isnull=True):
            token.revoke()
        get_access_token_model().objects.filter(pk__in=issued["access"]).delete()

    @staticmethod
    def _cache() -> Any:
        return caches[mcp_scopes_settings.CACHE_ALIAS]
