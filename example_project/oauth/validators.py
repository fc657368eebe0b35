"""``OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"]``: tokens only for this project's MCP endpoint.

django-oauth-toolkit checks that a ``resource`` is a well-formed URI and that a token request does
not widen the resources of its grant, but it issues tokens for any resource at all, and for none.
Here every grant, and so every token minted from it, is bound to a resource this project serves:
a request naming another resource is refused with ``invalid_target`` (RFC 8707 section 2), and a
request naming none is bound to the project's MCP endpoint (when it serves exactly one).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request as OauthlibRequest
from oauthlib.oauth2.rfc6749 import errors

from example_project.oauth.resources import served_resources, unserved


class _HeadersRequest(HttpRequest):
    """Just enough of a Django request, rebuilt from the headers oauthlib carries, to build URLs."""

    def __init__(self, oauthlib_request: OauthlibRequest) -> None:
        super().__init__()
        self.META = dict(oauthlib_request.headers)
        self._secure = "X_DJANGO_OAUTH_TOOLKIT_SECURE" in oauthlib_request.headers

    def _get_scheme(self) -> str:
        return "https" if self._secure else "http"


def _requested_resources(request: OauthlibRequest) -> list[str]:
    """Every ``resource`` the request names: credentials (a list), the body, or the query."""
    value = getattr(request, "resource", None)
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    from_body = [v for k, v in (request.decoded_body or []) if k == "resource"]
    if from_body:
        return from_body
    return [value] if isinstance(value, str) and value.strip() else []


def _refuse(request: OauthlibRequest, resources: list[str]) -> errors.CustomOAuth2Error:
    return errors.CustomOAuth2Error(
        error="invalid_target",
        description=(
            f"This server does not issue tokens for the resource {resources[0]!r}; "
            f"ask for {' or '.join(served_resources(_HeadersRequest(request)))}."
        ),
        request=request,
        state=getattr(request, "state", None),
    )


class JournalOAuth2Validator(OAuth2Validator):
    def _check_resources(self, request: OauthlibRequest, resources: list[str]) -> None:
        foreign = unserved(resources, _HeadersRequest(request))
        if foreign:
            raise _refuse(request, foreign)

    def save_authorization_code(
        self, client_id: str, code: dict[str, Any], request: OauthlibRequest, *args: Any, **kwargs: Any
    ) -> None:
        resources = _requested_resources(request)
        if resources:
            self._check_resources(request, resources)
        else:
            # No resource named: bind the token to the primary endpoint (the MCP one), never
            # leave it unbound (unbound tokens are refused everywhere).
            resources = served_resources(_HeadersRequest(request))[:1]
        request.resource = resources
        super().save_authorization_code(client_id, code, request, *args, **kwargs)

    def validate_code(
        self, client_id: str, code: str, client: Any, request: OauthlibRequest, *args: Any, **kwargs: Any
    ) -> bool:
        valid = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if valid:
            self._check_resources(request, _requested_resources(request))
        return valid

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: OauthlibRequest, *args: Any, **kwargs: Any
    ) -> bool:
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if valid:
            self._check_resources(request, _requested_resources(request))
        return valid
