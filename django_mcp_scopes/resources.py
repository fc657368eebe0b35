"""Canonical resource URIs (RFC 8707) and protected-resource metadata URLs (RFC 9728)."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.signals import setting_changed
from django.http import HttpRequest

from django_mcp_scopes.conf import mcp_scopes_settings

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonicalize_resource(uri: str) -> str:
    """See ``_canonicalize``; memoized (a pure function called on every request)."""
    return _canonicalize(uri)


@functools.lru_cache(maxsize=2048)
def _canonicalize(uri: str) -> str:
    """The canonical form of a resource URI used for comparisons.

    Scheme and host are case-insensitive, a default port is dropped, a trailing slash on the path
    is dropped (``https://h/mcp/`` and ``https://h/mcp`` are one resource), and a fragment is never
    part of a resource. The path and query stay case-sensitive. Raises ``ValueError`` for a URI
    that is not absolute http(s).
    """
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URI: {uri!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a resource URI cannot carry credentials")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def canonicalize_all(values: Any) -> list[str]:
    """Canonical forms of a token's resource binding (a string or a list); a value that is not an
    absolute http(s) URI becomes ``""``, which no endpoint ever equals."""
    if isinstance(values, str):
        values = [values]
    result = []
    for value in values or ():
        try:
            result.append(canonicalize_resource(value))
        except (ValueError, TypeError, AttributeError):
            result.append("")
    return result


def same_resource(a: str, b: str) -> bool:
    """Whether two resource URIs name the same resource (exact match after canonicalisation)."""
    try:
        return canonicalize_resource(a) == canonicalize_resource(b)
    except ValueError:
        return False


def public_origin(request: HttpRequest) -> str:
    """``scheme://host[:port]`` clients use to reach this server.

    ``MCP_SCOPES["BASE_URL"]`` when set; otherwise from the request, which honours
    ``SECURE_PROXY_SSL_HEADER`` and ``USE_X_FORWARDED_HOST`` when Django is configured for a proxy.
    """
    configured = _base_url()
    if configured:
        return configured
    scheme = request.scheme
    meta = request.META
    # get_host() validates against ALLOWED_HOSTS on every call (a few microseconds, paid on every
    # authenticated request); its result depends only on these values and on settings, so the
    # validated answers are remembered (bounded; cleared on any settings change).
    key = (
        scheme,
        meta.get("HTTP_HOST"),
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("HTTP_X_FORWARDED_PORT"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
    )
    origin = _origins.get(key)
    if origin is None:
        origin = f"{scheme}://{request.get_host()}"  # raises DisallowedHost: nothing remembered
        if len(_origins) >= _MAX_ORIGINS:
            _origins.clear()
        _origins[key] = origin
    return origin


_MAX_ORIGINS = 256
_origins: dict[tuple[str | None, ...], str] = {}


_UNSET: Any = object()
_base_url_cache: Any = _UNSET


def _base_url() -> str | None:
    # Read once: settings parsing on every request showed up in the authentication benchmark.
    global _base_url_cache
    if _base_url_cache is _UNSET:
        _base_url_cache = mcp_scopes_settings.BASE_URL
    return _base_url_cache


def _reset_base_url(*, setting: str, **kwargs: Any) -> None:
    global _base_url_cache
    _origins.clear()  # ALLOWED_HOSTS, USE_X_FORWARDED_*, SECURE_PROXY_SSL_HEADER, ...
    if setting == "MCP_SCOPES":
        _base_url_cache = _UNSET


setting_changed.connect(_reset_base_url, dispatch_uid="mcp_scopes_resources_base_url")


def resource_path(request: HttpRequest, path: str | None = None) -> str:
    """The URL path of the resource: ``path`` if given, else the request's (script prefix included)."""
    value = path if path is not None else request.path
    value = "/" + value.strip("/")
    return value if value != "/" else ""


def resource_uri(request: HttpRequest, path: str | None = None) -> str:
    """Canonical resource URI of the endpoint at ``path`` (default: the requested path)."""
    return canonicalize_resource(public_origin(request) + resource_path(request, path))


def metadata_url(request: HttpRequest, path: str | None = None) -> str:
    """Path-inserted RFC 9728 metadata URL for the endpoint at ``path``."""
    return public_origin(request) + WELL_KNOWN_PATH + resource_path(request, path)


def authorization_servers(request: HttpRequest) -> list[str]:
    """Issuer identifiers, byte-identical to what the authorization servers publish (no trailing slash)."""
    configured = mcp_scopes_settings.AUTHORIZATION_SERVERS
    if configured:
        return [server.rstrip("/") for server in configured]
    from django.apps import apps

    if apps.is_installed("oauth2_provider"):
        from oauth2_provider.settings import oauth2_settings

        return [server.rstrip("/") for server in oauth2_settings.oauth2_resource_authorization_servers(request)]
    return []
