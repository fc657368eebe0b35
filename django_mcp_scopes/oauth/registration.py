"""Anonymous client registration (RFC 7591, RFC 7592) for public clients only, within limits.

MCP clients register themselves the first time they meet a server, without an account, so
registration must be anonymous. What keeps that safe (limits in ``MCP_SCOPES_OAUTH``):

- every registered client is public (``token_endpoint_auth_method`` ``none``; PKCE is required
  anyway): a requested secret-based method is replaced by ``none``, as RFC 7591 section 3.2.1
  allows, and the response says so;
- only the authorization-code grant (with refresh tokens) and the ``code`` response type;
- at most ``REGISTRATION_MAX_REDIRECT_URIS`` redirect URIs of at most
  ``REGISTRATION_MAX_URI_LENGTH`` characters, each https, or http on a loopback host only
  (RFC 8252, any port), or another scheme listed in ``ALLOWED_REDIRECT_URI_SCHEMES``; no fragments,
  no user information, no whitespace or control characters;
- names and URIs of bounded length, a body of at most ``REGISTRATION_MAX_BODY_BYTES``;
- at most ``REGISTRATION_RATE_LIMIT`` registrations per client IP per window: a slot is reserved
  with an atomic cache increment before any work and given back when the registration fails, so
  concurrent requests cannot exceed it (the cache must have an atomic ``incr``: Redis, Memcached,
  or LocMem for a single process). The client IP comes from ``CLIENT_IP_META_KEY`` /
  ``CLIENT_IP_TRUSTED_PROXIES``;
- at most ``REGISTRATION_MAX_CLIENTS`` anonymously registered clients in total (503 beyond);
- when the cache cannot be reached, 503 with ``Retry-After``, never a 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import DynamicClientRegistrationManagementView, DynamicClientRegistrationView

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.oauth.conf import oauth_settings

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})
STRING_FIELDS = ("client_name", "scope", "client_uri", "logo_uri", "tos_uri", "policy_uri", "software_id")


class CacheUnavailable(Exception):
    """The cache that holds the rate limit could not be reached."""


def is_loopback(host: str | None) -> bool:
    return (host or "").lower().strip("[]") in LOOPBACK_HOSTS


def error_response(error: str, description: str, status: int = 400, retry_after: int | None = None) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _redirect_uri_problem(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri:
        return "each redirect URI must be a non-empty string"
    limit = oauth_settings.REGISTRATION_MAX_URI_LENGTH
    if len(uri) > limit:
        return f"redirect URIs must be at most {limit} characters"
    shown = repr(uri[:200])
    if any(ord(char) <= 32 or ord(char) == 127 or char == "\\" for char in uri):
        return f"{shown} contains whitespace, a control character or a backslash"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return f"{shown} is not a valid URI"
    scheme = parts.scheme.lower()
    if scheme not in oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES:
        allowed = ", ".join(oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES)
        return f"{shown} uses the scheme {scheme or '(none)'!r}; allowed schemes: {allowed}"
    if parts.fragment or "#" in uri:
        return f"{shown} must not contain a fragment"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return f"{shown} must not contain user information"
    if scheme in ("http", "https") and not parts.hostname:
        return f"{shown} has no host"
    if scheme == "http" and not is_loopback(parts.hostname):
        return f"{shown}: plain http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https"
    return None


def checked_metadata(data: Any) -> tuple[dict[str, Any] | None, JsonResponse | None]:
    """Apply the registration policy; return the metadata to register, or the error response."""
    if not isinstance(data, dict):
        return None, error_response("invalid_client_metadata", "The request body must be a JSON object.")
    data = dict(data)

    redirect_uris = data.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        return None, error_response("invalid_redirect_uri", "redirect_uris must be a non-empty array of URIs.")
    limit = oauth_settings.REGISTRATION_MAX_REDIRECT_URIS
    if len(redirect_uris) > limit:
        return None, error_response("invalid_redirect_uri", f"At most {limit} redirect URIs may be registered.")
    for uri in redirect_uris:
        problem = _redirect_uri_problem(uri)
        if problem:
            return None, error_response("invalid_redirect_uri", problem[0].upper() + problem[1:] + ".")

    grant_types = data.get("grant_types", ["authorization_code", "refresh_token"])
    if (
        not isinstance(grant_types, list)
        or not all(isinstance(g, str) for g in grant_types)
        or "authorization_code" not in grant_types
        or not set(grant_types) <= GRANT_TYPES
    ):
        return None, error_response(
            "invalid_client_metadata",
            "grant_types must be authorization_code, optionally with refresh_token (no other grant here).",
        )
    response_types = data.get("response_types", ["code"])
    if not isinstance(response_types, list) or response_types != ["code"]:
        return None, error_response("invalid_client_metadata", 'response_types must be ["code"].')

    method = data.get("token_endpoint_auth_method", "none")
    if method != "none" and method not in SECRET_METHODS:
        return None, error_response(
            "invalid_client_metadata",
            f"Unsupported token_endpoint_auth_method {str(method)[:50]!r}: "
            "this server registers public clients (none).",
        )
    data["token_endpoint_auth_method"] = "none"

    for name in STRING_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            return None, error_response("invalid_client_metadata", f"{name} must be a string.")
    name_limit = oauth_settings.REGISTRATION_MAX_NAME_LENGTH
    if len(data.get("client_name") or "") > name_limit:
        return None, error_response("invalid_client_metadata", f"client_name must be at most {name_limit} characters.")
    uri_limit = oauth_settings.REGISTRATION_MAX_URI_LENGTH
    for name in STRING_FIELDS:
        if len(data.get(name) or "") > uri_limit:
            return None, error_response("invalid_client_metadata", f"{name} must be at most {uri_limit} characters.")
    return data, None


def _parsed_body(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    limit = oauth_settings.REGISTRATION_MAX_BODY_BYTES
    if len(request.body) > limit:
        return None, error_response("invalid_client_metadata", f"The request body must be at most {limit} bytes.")
    try:
        return json.loads(request.body), None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, error_response("invalid_client_metadata", "The request body must be valid JSON.")


def _check_and_replace_body(request: HttpRequest) -> JsonResponse | None:
    """Refuse metadata outside the policy, or hand django-oauth-toolkit the normalised body."""
    data, error = _parsed_body(request)
    if error is None:
        data, error = checked_metadata(data)
    if error is not None:
        return error
    # DOT's views read request.body; hand them the metadata as this policy rewrote it.
    request._body = json.dumps(data).encode()
    return None


def client_ip(request: HttpRequest) -> str:
    """The client's IP address, from ``CLIENT_IP_META_KEY`` (the right-most untrusted entry of a list)."""
    raw = str(request.META.get(oauth_settings.CLIENT_IP_META_KEY) or "")
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    if not entries:
        return str(request.META.get("REMOTE_ADDR") or "unknown")
    index = max(len(entries) - 1 - oauth_settings.CLIENT_IP_TRUSTED_PROXIES, 0)
    return entries[index][:64]


class RegistrationRateLimit:
    """Per-IP slots in the cache: ``reserve()`` before the work, ``release()`` when it failed."""

    def __init__(self, ip: str) -> None:
        self.key = f"{mcp_scopes_settings.CACHE_KEY_PREFIX}:oauth:dcr:{ip}"
        self.cache = caches[mcp_scopes_settings.CACHE_ALIAS]

    def _call(self, operation: Callable[[], Any]) -> Any:
        try:
            return operation()
        except ValueError:
            raise
        except Exception as exc:  # redis.ConnectionError, socket errors, ...: all mean "no cache"
            raise CacheUnavailable(str(exc)) from exc

    def reserve(self) -> bool:
        """Take a slot; ``False`` when none is left (nothing is taken then)."""
        window = oauth_settings.REGISTRATION_RATE_WINDOW_SECONDS
        self._call(lambda: self.cache.add(self.key, 0, window))
        try:
            count = self._call(lambda: self.cache.incr(self.key))
        except ValueError:  # expired between add and incr
            self._call(lambda: self.cache.add(self.key, 0, window))
            count = self._call(lambda: self.cache.incr(self.key))
        if count > oauth_settings.REGISTRATION_RATE_LIMIT:
            self.release()
            return False
        return True

    def release(self) -> None:
        # Expired, or the cache went away: nothing to give back.
        with contextlib.suppress(ValueError, CacheUnavailable):
            self._call(lambda: self.cache.decr(self.key))


def _unavailable(description: str) -> JsonResponse:
    return error_response(
        "temporarily_unavailable", description, 503, retry_after=mcp_scopes_settings.SERVICE_UNAVAILABLE_RETRY_AFTER
    )


class PublicClientRegistrationView(DynamicClientRegistrationView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = _check_and_replace_body(request)
        if refusal is not None:
            return refusal
        application_model = get_application_model()
        anonymous = application_model.objects.filter(
            registration_source=application_model.RegistrationSource.DCR, user__isnull=True
        )
        if anonymous.count() >= oauth_settings.REGISTRATION_MAX_CLIENTS:
            return _unavailable("Client registration is closed for now: this server holds too many clients.")
        limit = RegistrationRateLimit(client_ip(request))
        try:
            reserved = limit.reserve()
        except CacheUnavailable:
            logger.warning("Client registration refused: the cache holding its rate limit is unavailable")
            return _unavailable("Client registration is unavailable for a moment; try again later.")
        if not reserved:
            return error_response(
                "temporarily_unavailable",
                "Too many client registrations from this address; try again later.",
                429,
                retry_after=oauth_settings.REGISTRATION_RATE_WINDOW_SECONDS,
            )
        try:
            response = super().post(request, *args, **kwargs)
        except BaseException:
            limit.release()
            raise
        if response.status_code != 201:
            limit.release()
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
