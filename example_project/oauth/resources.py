"""Which RFC 8707 resources this project's authorization server issues tokens for.

Tokens are issued only for the MCP endpoint(s) of this project (``settings.SERVED_MCP_PATHS``).
Their canonical URIs come from ``django_mcp_scopes.resources`` (``MCP_SCOPES["BASE_URL"]`` + path
when a base URL is configured, else derived from the request, so ``127.0.0.1`` and ``localhost``
both work in development and a proxy set up with ``SECURE_PROXY_SSL_HEADER`` /
``USE_X_FORWARDED_HOST`` is honoured). Comparison is exact after canonicalisation: a token for
``/mcp`` is not a token for ``/mcp-admin`` or for the bare origin.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

from django_mcp_scopes.resources import canonicalize_resource, resource_uri, same_resource

MAX_RESOURCE_LENGTH = 2048


def served_mcp_paths() -> list[str]:
    return ["/" + path.strip("/") for path in getattr(settings, "SERVED_MCP_PATHS", ["/mcp"])]


def served_resources(request: HttpRequest) -> list[str]:
    """The canonical resource URIs of every MCP endpoint this project serves."""
    return [resource_uri(request, path) for path in served_mcp_paths()]


def _well_formed(uri: object) -> bool:
    """An absolute http(s) URI of printable ASCII, without a fragment (RFC 8707 section 2)."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_RESOURCE_LENGTH or "#" in uri:
        return False
    if any(ord(char) < 33 or ord(char) > 126 for char in uri):
        return False
    try:
        canonicalize_resource(uri)
    except ValueError:
        return False
    return True


def unserved(resources: Iterable[str], request: HttpRequest) -> list[str]:
    """The requested resources this project does not serve (malformed ones included)."""
    served = served_resources(request)
    return [uri for uri in resources if not (_well_formed(uri) and any(same_resource(uri, s) for s in served))]
