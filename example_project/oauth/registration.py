"""Dynamic client registration (RFC 7591) open to anyone, for public clients only, within limits.

MCP clients register themselves the first time they meet a server, without an account, so
registration must be anonymous. What keeps that safe here:

- every registered client is public (``token_endpoint_auth_method`` ``none``; PKCE is required
  anyway): a requested secret-based method is replaced by ``none``, as RFC 7591 section 3.2.1
  allows, and the response says so;
- only the authorization-code grant (with refresh tokens) and the ``code`` response type;
- at most ``MAX_REDIRECT_URIS`` redirect URIs, each https, or http on a loopback host only
  (RFC 8252 native apps), or another scheme listed in ``ALLOWED_REDIRECT_URI_SCHEMES``;
  no fragments, no user info;
- a request body of at most ``MAX_BODY_BYTES``;
- at most ``PER_IP_PER_HOUR`` registrations per client IP address per hour (429 beyond), and at
  most ``MAX_CLIENTS`` anonymously registered clients in total (503 beyond: an administrator
  prunes unused ones in the admin).

Settings: ``JOURNAL_DCR`` (a dict with the keys above). The RFC 7592 management endpoint applies
the same rules to updates.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import DynamicClientRegistrationManagementView, DynamicClientRegistrationView

DEFAULTS = {
    "MAX_REDIRECT_URIS": 5,
    "MAX_URI_LENGTH": 2000,
    "MAX_BODY_BYTES": 16 * 1024,
    "PER_IP_PER_HOUR": 20,
    "MAX_CLIENTS": 10_000,
}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


def dcr_setting(name: str) -> int:
    return int(getattr(settings, "JOURNAL_DCR", {}).get(name, DEFAULTS[name]))


def _error(error: str, description: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _redirect_uri_problem(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri:
        return "each redirect URI must be a non-empty string"
    if len(uri) > dcr_setting("MAX_URI_LENGTH"):
        return f"redirect URIs must be at most {dcr_setting('MAX_URI_LENGTH')} characters"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return f"{uri!r} is not a valid URI"
    scheme = parts.scheme.lower()
    if scheme not in oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES:
        allowed = ", ".join(oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES)
        return f"{uri!r} uses the scheme {scheme or '(none)'!r}; allowed schemes: {allowed}"
    if parts.fragment or "#" in uri:
        return f"{uri!r} must not contain a fragment"
    if parts.username is not None or parts.password is not None:
        return f"{uri!r} must not contain user information"
    if scheme in ("http", "https") and not parts.hostname:
        return f"{uri!r} has no host"
    if scheme == "http" and (parts.hostname or "").lower() not in LOOPBACK_HOSTS:
        return f"{uri!r}: plain http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https"
    return None


def checked_metadata(data: Any) -> tuple[dict[str, Any] | None, JsonResponse | None]:
    """Apply this server's registration policy; return the metadata to register, or the error."""
    if not isinstance(data, dict):
        return None, _error("invalid_client_metadata", "Request body must be a JSON object")
    data = dict(data)

    redirect_uris = data.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        return None, _error("invalid_redirect_uri", "redirect_uris must be a non-empty array of URIs")
    if len(redirect_uris) > dcr_setting("MAX_REDIRECT_URIS"):
        return None, _error(
            "invalid_redirect_uri",
            f"At most {dcr_setting('MAX_REDIRECT_URIS')} redirect URIs may be registered",
        )
    for uri in redirect_uris:
        problem = _redirect_uri_problem(uri)
        if problem:
            return None, _error("invalid_redirect_uri", problem[0].upper() + problem[1:])

    grant_types = data.get("grant_types", ["authorization_code", "refresh_token"])
    if (
        not isinstance(grant_types, list)
        or not all(isinstance(g, str) for g in grant_types)
        or "authorization_code" not in grant_types
        or not set(grant_types) <= GRANT_TYPES
    ):
        return None, _error(
            "invalid_client_metadata",
            "grant_types must be authorization_code, optionally with refresh_token (no other grant here)",
        )
    response_types = data.get("response_types", ["code"])
    if not isinstance(response_types, list) or response_types != ["code"]:
        return None, _error("invalid_client_metadata", 'response_types must be ["code"]')

    method = data.get("token_endpoint_auth_method", "none")
    if method != "none" and method not in SECRET_METHODS:
        return None, _error(
            "invalid_client_metadata",
            f"Unsupported token_endpoint_auth_method {method!r}: this server registers public clients (none)",
        )
    data["token_endpoint_auth_method"] = "none"

    for field in ("client_name", "scope", "client_uri", "logo_uri"):
        if field in data and data[field] is not None and not isinstance(data[field], str):
            return None, _error("invalid_client_metadata", f"{field} must be a string")
    if len(data.get("client_name") or "") > 255:
        return None, _error("invalid_client_metadata", "client_name must be at most 255 characters")
    return data, None


def _parsed_body(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    if len(request.body) > dcr_setting("MAX_BODY_BYTES"):
        return None, _error(
            "invalid_client_metadata", f"Request body must be at most {dcr_setting('MAX_BODY_BYTES')} bytes"
        )
    try:
        return json.loads(request.body), None
    except (ValueError, UnicodeDecodeError):
        return None, _error("invalid_client_metadata", "Request body must be valid JSON")


def _replace_body(request: HttpRequest, data: dict[str, Any]) -> None:
    # DOT's views read request.body; hand them the metadata as this policy rewrote it.
    request._body = json.dumps(data).encode()


def _rate_key(request: HttpRequest) -> str:
    return f"journal:dcr:{request.META.get('REMOTE_ADDR', 'unknown')}"


def _check_and_replace_body(request: HttpRequest) -> JsonResponse | None:
    """Refuse metadata outside the policy, or hand django-oauth-toolkit the normalised body."""
    data, error = _parsed_body(request)
    if error is None:
        data, error = checked_metadata(data)
    if error is not None:
        return error
    assert data is not None
    _replace_body(request, data)
    return None


class PublicClientRegistrationView(DynamicClientRegistrationView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (cache.get(_rate_key(request)) or 0) >= dcr_setting("PER_IP_PER_HOUR"):
            response = _error(
                "temporarily_unavailable",
                "Too many client registrations from this address; try again later",
                429,
            )
            response["Retry-After"] = "3600"
            return response
        application_model = get_application_model()
        anonymous = application_model.objects.filter(
            registration_source=application_model.RegistrationSource.DCR, user__isnull=True
        )
        if anonymous.count() >= dcr_setting("MAX_CLIENTS"):
            response = _error("temporarily_unavailable", "Client registration is closed for now; try again later", 503)
            response["Retry-After"] = "3600"
            return response
        refusal = _check_and_replace_body(request)
        if refusal is not None:
            return refusal
        response = super().post(request, *args, **kwargs)
        if response.status_code == 201:
            key = _rate_key(request)
            cache.add(key, 0, 3600)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, 3600)
        return response


class PublicClientManagementView(DynamicClientRegistrationManagementView):
    def put(self, request: HttpRequest, client_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
        auth = self._authenticate_registration_request(request, client_id)
        if isinstance(auth, HttpResponse):
            return auth
        refusal = _check_and_replace_body(request)
        if refusal is not None:
            return refusal
        return super().put(request, client_id, *args, **kwargs)
