"""Which RFC 8707 resources this project serves, and comparing resource URIs canonically.

The authorization server issues tokens only for the MCP endpoint(s) of this project
(``settings.SERVED_MCP_PATHS``). Their canonical URIs are ``MCP_SCOPES["BASE_URL"]`` + path when a
base URL is configured, else derived from the request (so ``127.0.0.1`` and ``localhost`` both work
in development, and a proxy set up with ``SECURE_PROXY_SSL_HEADER`` / ``USE_X_FORWARDED_HOST`` is
honoured).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest

from django_mcp_scopes.conf import mcp_scopes_settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_resource(uri: object) -> str | None:
    """The comparable form of an absolute http(s) URI, or None when it is not one.

    Scheme and host are case-insensitive, a default port equals no port, and a trailing slash is
    not significant. User info and fragments are refused; a query is kept (and so must match).
    """
    if (
        not isinstance(uri, str)
        or not uri
        or len(uri) > 2048
        or any(ord(c) < 33 or ord(c) > 126 for c in uri)
    ):
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or "@" in parts.netloc
        or parts.fragment
        or "#" in uri
    ):
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{authority}{path}{query}"


def served_mcp_paths() -> list[str]:
    return ["/" + path.strip("/") for path in getattr(settings, "SERVED_MCP_PATHS", ["/mcp"])]


def served_resources(request: HttpRequest) -> list[str]:
    """The resource URIs (as published) of every MCP endpoint this project serves."""
    base = mcp_scopes_settings.BASE_URL or request.build_absolute_uri("/").rstrip("/")
    return [base + path for path in served_mcp_paths()]


def unserved(resources: Iterable[str], request: HttpRequest) -> list[str]:
    """The requested resources this project does not serve (all of them if malformed)."""
    served = {canonical_resource(uri) for uri in served_resources(request)}
    return [
        uri for uri in resources if canonical_resource(uri) is None or canonical_resource(uri) not in served
    ]


def resource_matches_exactly(request_uri: str, audiences: list[str]) -> bool:
    """``RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR``: the token must name exactly this endpoint.

    django-oauth-toolkit's default is a URL-prefix match (a token for ``http://host`` would open
    ``http://host/mcp``); here a request is allowed only when its canonical URI equals one of the
    token's resources. A token bound to no resource never reaches this function (DOT treats it as
    unrestricted; the enforcement layer refuses it by default).
    """
    target = canonical_resource(request_uri)
    return target is not None and any(canonical_resource(aud) == target for aud in audiences)
