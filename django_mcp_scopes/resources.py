"""Canonical resource URIs (RFC 8707) and protected-resource metadata URLs (RFC 9728)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from django.core.signals import setting_changed
from django.http import Http404, HttpRequest
from django.urls import URLResolver, get_resolver, get_urlconf, resolve

from django_mcp_scopes.conf import mcp_scopes_settings

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonicalize_resource(uri: str) -> str:
    """See ``_canonicalize``; memoized (a pure function called on every request)."""
    return _canonicalize(uri)


@functools.lru_cache(maxsize=2048)
def _canonicalize(uri: str) -> str:
    """The canonical form of a resource URI used for comparisons.

    Scheme and host are case-insensitive (an ASCII host only), a default port is dropped, a trailing slash on the path
    is dropped (``https://h/mcp/`` and ``https://h/mcp`` are one resource), and a fragment is never
    part of a resource. The path and query stay case-sensitive. Raises ``ValueError`` for a URI
    that is not absolute http(s).
    """
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URI: {uri!r}")
    if not parts.netloc.isascii():
        # Unicode case folding maps e.g. KELVIN SIGN to an ASCII "k": an internationalised
        # host is only ever compared in its A-label (punycode) form.
        raise ValueError(f"a resource URI's host must be ASCII (IDNA A-label): {uri!r}")
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


# RFC 3986 pchar and "/": what a path keeps literally; everything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;="


def resource_path(request: HttpRequest, path: str | None = None) -> str:
    """The URL path of the resource: ``path`` if given, else the request's (script prefix included).

    The request's path is percent-encoded again (Django decodes it): ``/a%3F`` is the path
    ``/a?``, another URL than ``/a``, and must not read as ``/a`` with an empty query.
    """
    value = path if path is not None else quote(request.path, safe=_PATH_SAFE)
    value = "/" + value.strip("/")
    return value if value != "/" else ""


def resource_uri(request: HttpRequest, path: str | None = None) -> str:
    """Canonical resource URI of the endpoint at ``path`` (default: the requested path)."""
    return canonicalize_resource(public_origin(request) + resource_path(request, path))


def metadata_url(request: HttpRequest, path: str | None = None) -> str:
    """Path-inserted RFC 9728 metadata URL for the endpoint at ``path``."""
    return public_origin(request) + WELL_KNOWN_PATH + resource_path(request, path)


def authorization_servers(request: HttpRequest) -> list[str]:
    """Issuer identifiers, byte-identical to what the authorization servers publish (no trailing slash).

    ``AUTHORIZATION_SERVERS`` first, then the issuers of ``JWT_ISSUERS`` (exactly as their tokens
    spell ``iss``). django-oauth-toolkit's own issuer is listed only when neither is set.
    """
    configured = [server.rstrip("/") for server in mcp_scopes_settings.AUTHORIZATION_SERVERS]
    external = [issuer.issuer for issuer in mcp_scopes_settings.JWT_ISSUERS]
    if configured or external:
        return configured + [issuer for issuer in external if issuer not in configured]
    from django.apps import apps

    if apps.is_installed("oauth2_provider"):
        from oauth2_provider.settings import oauth2_settings

        return [server.rstrip("/") for server in oauth2_settings.oauth2_resource_authorization_servers(request)]
    return []


# Which views are protected resources ---------------------------------------------------------

RESOURCE_ATTRIBUTE = "mcp_scopes_resource"
"""Attribute a view function or view class carries when it is a protected resource."""

PROTECTED_ATTRIBUTE = "mcp_scopes_protected"
"""``True`` on a view function, a view class, or a DRF authentication class the view uses: a protected resource."""

MAX_RESOURCE_PATH_LENGTH = 512
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]+\Z")

ScopesSource = Callable[[], Iterable[str]]


@dataclass(frozen=True)
class ProtectedResource:
    """What the metadata of one protected endpoint needs to know about it.

    ``scopes``: ``None`` (the endpoint needs the whole baseline) or a callable without arguments
    that returns every scope name the endpoint's operations can require; it is called on each
    metadata request, so it must be cheap and make no database query. ``name``: the
    ``resource_name`` of this endpoint (default ``MCP_SCOPES["RESOURCE_NAME"]``).
    """

    scopes: ScopesSource | None = None
    name: str | None = None

    def operation_scopes(self) -> frozenset[str] | None:
        if self.scopes is None:
            return None
        names = self.scopes()
        if isinstance(names, str):
            raise TypeError("a protected resource's scopes callable must return an iterable of names, not a string")
        return frozenset(names)


_V = TypeVar("_V")


def _protected_resource(scopes: ScopesSource | Iterable[str] | None, name: str | None) -> ProtectedResource:
    if isinstance(scopes, str):
        raise TypeError("scopes must be a callable or a collection of scope names, not a string")
    source: ScopesSource | None
    if scopes is None or callable(scopes):
        source = scopes
    else:
        fixed = tuple(scopes)
        source = lambda: fixed  # noqa: E731
    return ProtectedResource(scopes=source, name=name or None)


def mark_protected_resource(
    view: _V, *, scopes: ScopesSource | Iterable[str] | None = None, name: str | None = None
) -> _V:
    """Mark ``view`` (a view function, ``as_view()`` result, or view class) as a protected resource.

    Its RFC 9728 metadata is then served at ``/.well-known/oauth-protected-resource/<its path>``
    wherever it is mounted. ``scopes`` is ``None``, a callable returning the scope names the
    endpoint's operations need, or a fixed collection of names. The marker is an attribute of
    ``view`` itself; returns ``view``.
    """
    setattr(view, RESOURCE_ATTRIBUTE, _protected_resource(scopes, name))
    return view


_registered_resources: dict[str, ProtectedResource] = {}


def register_protected_resource(
    path: str, *, scopes: ScopesSource | Iterable[str] | None = None, name: str | None = None
) -> None:
    """Publish metadata for a resource that is no single routed view, e.g. a whole API under ``/api``.

    ``path`` is the resource's URL path (``"/api"``). Call it once at start-up (``AppConfig.ready``
    or a urls module). Raises ``ValueError`` for a path ``find_protected_resource`` would refuse.
    """
    normalized = _normalize_resource_path(path.removeprefix("/"))
    if normalized is None:
        raise ValueError(f"not a well-formed resource path: {path!r}")
    _registered_resources[normalized] = _protected_resource(scopes, name)


def unregister_protected_resource(path: str) -> None:
    """Undo ``register_protected_resource`` (tests)."""
    normalized = _normalize_resource_path(path.removeprefix("/"))
    if normalized is not None:
        _registered_resources.pop(normalized, None)


def protected_resource_for(view: Any) -> ProtectedResource | None:
    """The marker of a resolved view, or ``None`` when it is not a protected resource.

    Looks at the function, then the class behind Django's ``View.as_view()`` (``view_class``) and
    DRF's ``APIView.as_view()`` (``cls``). Without a marker, a view counts as protected (with
    the whole baseline) when the function or class has ``mcp_scopes_protected = True``, or when
    its ``authentication_classes`` (class attribute or ``as_view()`` keyword; DRF views and any
    class-based view that takes them) include a class with that attribute.
    """
    candidates = [view, getattr(view, "view_class", None), getattr(view, "cls", None)]
    for candidate in candidates:
        marker = getattr(candidate, RESOURCE_ATTRIBUTE, None)
        if isinstance(marker, ProtectedResource):
            return marker
    if any(getattr(candidate, PROTECTED_ATTRIBUTE, False) is True for candidate in candidates):
        return ProtectedResource()
    # DRF keeps as_view() keywords in view.initkwargs, Django in view.view_initkwargs.
    initkwargs = getattr(view, "initkwargs", None) or getattr(view, "view_initkwargs", None) or {}
    for view_class in candidates[1:]:
        if view_class is None:
            continue
        authentication_classes = initkwargs.get(
            "authentication_classes", getattr(view_class, "authentication_classes", None)
        )
        if any(getattr(auth, PROTECTED_ATTRIBUTE, False) is True for auth in authentication_classes or ()):
            return ProtectedResource()
    return None


def _normalize_resource_path(path: str) -> str | None:
    """``a/b`` for a well-formed relative path (one trailing slash allowed), else ``None``."""
    if not path or len(path) > MAX_RESOURCE_PATH_LENGTH:
        return None
    trimmed = path[:-1] if path.endswith("/") else path
    segments = trimmed.split("/")
    for segment in segments:
        if segment in (".", "..") or not _PATH_SEGMENT.match(segment):
            return None
    return trimmed


def find_protected_resource(path: str, *, urlconf: str | None = None) -> tuple[str, ProtectedResource] | None:
    """Resolve the endpoint at ``path`` (relative to the script prefix, e.g. ``"tenant/a/mcp"``).

    Returns ``(normalised path without slashes around it, marker)`` when Django's resolver maps
    the path (with or without a trailing slash) to a view marked as a protected resource;
    ``None`` for anything else, including malformed paths (``..``, empty segments, characters
    outside RFC 3986 ``pchar``, over ``MAX_RESOURCE_PATH_LENGTH``).
    """
    normalized = _normalize_resource_path(path)
    if normalized is None:
        return None
    registered = _registered_resources.get(normalized)
    if registered is not None:
        return normalized, registered
    for candidate in ("/" + normalized, "/" + normalized + "/"):
        try:
            match = resolve(candidate, urlconf=urlconf)
        except Http404:
            continue
        marker = protected_resource_for(match.func)
        if marker is None:
            continue
        declared = declared_resource_path(match.func)
        if declared is not None and declared != normalized:
            # A URL inside a resource declared at another path (``mcp_resource_path``): its
            # document is the declared path's, never one of its own.
            return None
        return normalized, marker
    declared_marker = _declared_resources(urlconf).get(normalized)
    return (normalized, declared_marker) if declared_marker is not None else None


def declared_resource_path(view: Any) -> str | None:
    """The normalised ``mcp_resource_path`` a view declares (class attribute or ``as_view()`` keyword)."""
    initkwargs = getattr(view, "initkwargs", None) or getattr(view, "view_initkwargs", None) or {}
    value = initkwargs.get("mcp_resource_path")
    if value is None:
        for candidate in (view, getattr(view, "view_class", None), getattr(view, "cls", None)):
            value = getattr(candidate, "mcp_resource_path", None)
            if value is not None:
                break
    if not isinstance(value, str):
        return None
    return _normalize_resource_path(value.strip("/"))


def _declared_resources(urlconf: str | None) -> dict[str, ProtectedResource]:
    """Declared ``mcp_resource_path`` -> marker, for resources no URL pattern serves by itself.

    Kept on the resolver, which Django rebuilds whenever the URLconf changes.
    """
    resolver = get_resolver(urlconf or get_urlconf())
    found: dict[str, ProtectedResource] | None = getattr(resolver, "_mcp_declared_resources", None)
    if found is not None:
        return found
    found = {}

    def walk(patterns: Any) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
                continue
            declared = declared_resource_path(pattern.callback)
            marker = protected_resource_for(pattern.callback)
            if declared is not None and marker is not None:
                found.setdefault(declared, marker)

    walk(resolver.url_patterns)
    resolver._mcp_declared_resources = found  # type: ignore[attr-defined]
    return found


def scopes_supported(resource: ProtectedResource | None = None) -> list[str]:
    """``scopes_supported`` for an endpoint: the baseline, narrowed to what its operations need.

    Without a scopes callable, every advertised active scope. With one, the advertised active
    scopes that grant (themselves or through the hierarchy) at least one scope the operations
    need. Never ``offline_access``.
    """
    from django_mcp_scopes.registry import scope_registry

    baseline = [name for name in scope_registry.baseline() if name != "offline_access"]
    needed = resource.operation_scopes() if resource is not None else None
    if needed is None:
        return baseline
    return [name for name in baseline if scope_registry.expand([name]) & needed]
