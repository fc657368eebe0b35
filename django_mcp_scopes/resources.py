"""Canonical resource URIs (RFC 8707) and protected-resource metadata URLs (RFC 9728)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.http import HttpRequest

from django_mcp_scopes.conf import mcp_scopes_settings

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonicalize_resource(uri: str) -> str:
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
    configured = mcp_scopes_settings.BASE_URL
    if configured:
        return configured
    return f"{request.scheme}://{request.get_host()}"


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
