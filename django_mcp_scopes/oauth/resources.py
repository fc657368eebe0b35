"""Which RFC 8707 resources this project's authorization server issues tokens for.

``MCP_SCOPES_OAUTH["RESOURCE_PATHS"]`` when set, else every MCP endpoint mounted with
``mcp_path()``. Canonical URIs come from ``django_mcp_scopes.resources`` (``MCP_SCOPES["BASE_URL"]``
when set, else the request's origin, honouring a proxy Django trusts) plus the script prefix.
Comparison is exact after canonicalisation: a token for ``/mcp`` is not one for ``/mcp-admin`` or
for the bare origin.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest
from django.urls import get_script_prefix

from django_mcp_scopes.oauth.conf import oauth_settings
from django_mcp_scopes.resources import canonicalize_resource, public_origin, same_resource

MAX_RESOURCE_LENGTH = 2048

# URLconf -> MCP endpoint paths; walking a URLconf on every token request would be wasted work.
_mounted: dict[str, list[str]] = {}


def forget_paths() -> None:
    _mounted.clear()


def mcp_endpoint_paths() -> list[str]:
    """The URL paths (``/mcp`` form) of the MCP endpoints mounted with ``mcp_path()``."""
    from django.conf import settings
    from django.urls import get_urlconf

    urlconf = str(get_urlconf() or settings.ROOT_URLCONF)
    paths = _mounted.get(urlconf)
    if paths is None:
        from django_mcp_scopes.mcp.endpoint import mounted_endpoints

        paths = []
        for route, _endpoint in mounted_endpoints(urlconf):
            path = "/" + route.strip("/")
            if path not in paths:
                paths.append(path)
        _mounted[urlconf] = paths
    return list(paths)


def resource_paths() -> list[str]:
    """The URL paths (below the script prefix, ``/mcp`` form) of the resources tokens are bound to."""
    configured = oauth_settings.RESOURCE_PATHS
    if configured is not None:
        return ["/" + path.strip("/") for path in configured]
    return mcp_endpoint_paths()


def _uri(request: HttpRequest, path: str) -> str:
    return canonicalize_resource(public_origin(request) + get_script_prefix().rstrip("/") + path)


def served_resources(request: HttpRequest) -> list[str]:
    """The canonical resource URIs of every protected resource tokens may be bound to."""
    return [_uri(request, path) for path in resource_paths()]


def well_formed(uri: object) -> bool:
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
    return [uri for uri in resources if not (well_formed(uri) and any(same_resource(uri, s) for s in served))]


def default_resource(request: HttpRequest) -> str | None:
    """The resource a request without ``resource`` is bound to, or ``None`` when there is no single one."""
    configured = oauth_settings.DEFAULT_RESOURCE_PATH
    if configured:
        return _uri(request, "/" + configured.strip("/"))
    served = resource_paths()
    candidates = [path for path in mcp_endpoint_paths() if path in served]
    if len(candidates) != 1:
        candidates = served if len(served) == 1 else []
    return _uri(request, candidates[0]) if candidates else None


def refusal(request: HttpRequest, requested: list[str]) -> str:
    """Why the resource indicators of a request are refused, in one sentence a developer can act on."""
    served = served_resources(request)
    if not requested:
        if not served:
            return "This server has no protected resource to issue tokens for."
        return f"This server protects several resources; name one in the resource parameter: {' or '.join(served)}."
    foreign = unserved(requested, request)
    return (
        f"This server does not issue tokens for the resource {foreign[0][:200]!r}; ask for {' or '.join(served)}."
        if foreign
        else ""
    )
