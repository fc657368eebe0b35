"""System checks (``manage.py check``; the ``deploy=True`` ones with ``check --deploy``).

Ids: E001 malformed ``MCP_SCOPES`` setting, W001 unknown key, E002 no authorization server,
W002 django-oauth-toolkit not using ``DatabaseScopes``; deploy only: W003 no ``BASE_URL``,
E003 ``BASE_URL`` not https, E004 authorization server not https, W004 process-local cache,
E005 a Redis cache without socket timeouts of at most a second, E008 a JWT issuer's key URL not
https, W009 a JWT issuer with accepted AUDIENCES, W010 a JWT issuer not requiring typ at+jwt.
E007 its own authorization server without an RFC 8414 document; URL checks: E006 nothing serves an
MCP endpoint's metadata URL, W008 another view does; database checks: W006 scopes the mounted
operations need are missing, W007 inactive; E401 ``OPENTELEMETRY`` on without the OpenTelemetry
API. All carry the tag ``mcp_scopes``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_mcp_scopes.conf import DEFAULTS, SETTINGS_NAME, mcp_scopes_settings

PREFIX = "django_mcp_scopes"
# `manage.py check --tag mcp_scopes [--deploy]` runs only these checks.
TAG = "mcp_scopes"
BACKEND_PATH = "django_mcp_scopes.backends.DatabaseScopes"
PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "keeps its data inside one process: a token revoked "
    "in one server process stays valid in the others' caches for up to TOKEN_CACHE_SECONDS",
    "django.core.cache.backends.dummy.DummyCache": "caches nothing: every request validates its token "
    "against the database",
}
# Redis backends and the OPTIONS keys that bound a call's wait (connect, then each read/write).
REDIS_TIMEOUT_OPTIONS = {
    "django.core.cache.backends.redis.RedisCache": ("socket_connect_timeout", "socket_timeout"),
    "django_redis.cache.RedisCache": ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"),
}
MAX_CACHE_TIMEOUT_SECONDS = 1.0


def _did_you_mean(key: Any) -> str:
    close = difflib.get_close_matches(str(key).upper(), DEFAULTS, n=1, cutoff=0.6)
    if close:
        return f"Did you mean {close[0]!r}?"
    return f"Check the spelling; known keys: {', '.join(sorted(DEFAULTS))}."


def _safe(getter: Any) -> Any:
    """A setting's value, or None when it is malformed (E001 reports that)."""
    try:
        return getter()
    except ImproperlyConfigured:
        return None


@register(TAG)
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for problem in mcp_scopes_settings.validate():
        messages.append(
            Error(
                problem,
                hint=f"Fix {SETTINGS_NAME} in your settings; docs/scopes.md lists each key and its default.",
                id=f"{PREFIX}.E001",
            )
        )
    unknown = _safe(mcp_scopes_settings.unknown_keys) or []
    for key in unknown:
        messages.append(
            Warning(
                f"{SETTINGS_NAME}[{key!r}] is not a django-mcp-scopes setting and is ignored.",
                hint=_did_you_mean(key),
                id=f"{PREFIX}.W001",
            )
        )
    return messages


@register(TAG)
def check_authorization_server(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    servers = _safe(lambda: mcp_scopes_settings.AUTHORIZATION_SERVERS)
    issuers = _safe(lambda: mcp_scopes_settings.JWT_ISSUERS)
    if servers == [] and not issuers and not apps.is_installed("oauth2_provider"):
        messages.append(
            Error(
                "No authorization server: MCP clients cannot find where to get a token.",
                hint=f'Set {SETTINGS_NAME}["AUTHORIZATION_SERVERS"] (or "JWT_ISSUERS") to your issuer URL(s), or add '
                '"oauth2_provider" to INSTALLED_APPS to be your own authorization server.',
                id=f"{PREFIX}.E002",
            )
        )
    if servers == [] and apps.is_installed("oauth2_provider"):
        messages.extend(_own_authorization_server_problems())
    if apps.is_installed("oauth2_provider"):
        from django_mcp_scopes.backends import DatabaseScopes

        configured = _dot_settings().get("SCOPES_BACKEND_CLASS", "oauth2_provider.scopes.SettingsScopes")
        try:
            backend = import_string(configured) if isinstance(configured, str) else configured
            ours = isinstance(backend, type) and issubclass(backend, DatabaseScopes)
        except ImportError:
            ours = False
        if not ours:
            messages.append(
                Warning(
                    "django-oauth-toolkit does not use the Scope table: it will issue scopes from "
                    "settings, without the hierarchy or the active/advertised flags.",
                    hint=f'Set OAUTH2_PROVIDER["SCOPES_BACKEND_CLASS"] = "{BACKEND_PATH}".',
                    id=f"{PREFIX}.W002",
                )
            )
    return messages


def _own_authorization_server_problems() -> list[CheckMessage]:
    """This project issues the tokens (no external issuer): can an MCP client get one here?"""
    from django.urls import Resolver404, resolve

    from django_mcp_scopes.mcp.endpoint import mounted_endpoints

    if not mounted_endpoints():
        return []  # no MCP endpoint yet: nothing for a client to be refused
    try:
        resolve("/.well-known/oauth-authorization-server")
    except Resolver404:
        return [
            Error(
                "This project is its own authorization server (AUTHORIZATION_SERVERS is empty), but nothing "
                "serves /.well-known/oauth-authorization-server: MCP clients cannot find where to get a token.",
                hint='Add path("", include("django_mcp_scopes.oauth.urls")) to the root URLconf, or set '
                f'{SETTINGS_NAME}["AUTHORIZATION_SERVERS"] to the issuer of another authorization server.',
                id=f"{PREFIX}.E007",
            )
        ]
    return []


def _dot_settings() -> dict[str, Any]:
    value = getattr(settings, "OAUTH2_PROVIDER", {})
    return value if isinstance(value, dict) else {}


def _is_https(url: str) -> bool:
    return urlsplit(url).scheme == "https"


@register(TAG, Tags.security, deploy=True)
def check_deploy(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    try:
        base_url = mcp_scopes_settings.BASE_URL
    except ImproperlyConfigured:
        base_url = ""  # E001 reports it
    if base_url is None:
        messages.append(
            Warning(
                f'{SETTINGS_NAME}["BASE_URL"] is not set: each resource URI is derived from the request\'s '
                "Host header, which a proxy or an attacker can change.",
                hint=f'Set {SETTINGS_NAME}["BASE_URL"] = "https://your.public.host" (the public origin).',
                id=f"{PREFIX}.W003",
            )
        )
    elif base_url and not _is_https(base_url):
        messages.append(
            Error(
                f'{SETTINGS_NAME}["BASE_URL"] ({base_url}) is not https: tokens would travel in clear text.',
                hint="Serve the MCP endpoints over https and use the https origin in BASE_URL.",
                id=f"{PREFIX}.E003",
            )
        )
    servers = _safe(lambda: mcp_scopes_settings.AUTHORIZATION_SERVERS) or []
    servers = servers + [issuer.issuer for issuer in _safe(lambda: mcp_scopes_settings.JWT_ISSUERS) or ()]
    if not servers and apps.is_installed("oauth2_provider"):
        issuer = _dot_settings().get("OIDC_ISS_ENDPOINT") or ""
        servers = [issuer] if issuer else []
    for server in servers:
        if not _is_https(server):
            messages.append(
                Error(
                    f"The authorization server {server} is not https.",
                    hint=f'Use the https issuer URL in {SETTINGS_NAME}["AUTHORIZATION_SERVERS"] '
                    '(or OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]).',
                    id=f"{PREFIX}.E004",
                )
            )
    for issuer in _safe(lambda: mcp_scopes_settings.JWT_ISSUERS) or ():
        for label, url in (("JWKS_URI", issuer.jwks_uri), ("DISCOVERY_URL", issuer.discovery_url)):
            if url is not None and not _is_https(url):
                messages.append(
                    Error(
                        f"The {label} of the JWT issuer {issuer.issuer} ({url}) is not https: whoever sits "
                        "on the network path could hand this server keys of their own.",
                        hint=f'Use the https URL in {SETTINGS_NAME}["JWT_ISSUERS"].',
                        id=f"{PREFIX}.E008",
                    )
                )
        if issuer.audiences:
            messages.append(
                Warning(
                    f"The JWT issuer {issuer.issuer} has AUDIENCES {list(issuer.audiences)}: its tokens for "
                    "those audiences are accepted at every protected resource of this project, although they do "
                    "not name this server's resource URI. Any other service that receives such tokens (the same "
                    "application registration, or a client id used as aud) can replay them here.",
                    hint="Give this server an application registration of its own at the provider, so its "
                    "audience is used by nothing else; prefer the resource URI (RFC 8707) where the provider "
                    "supports it. docs/jwt.md explains each provider.",
                    id=f"{PREFIX}.W009",
                )
            )
        if not issuer.require_at_jwt_type:
            messages.append(
                Warning(
                    f'The JWT issuer {issuer.issuer} has REQUIRE_AT_JWT_TYPE False: tokens without typ "at+jwt" '
                    "are accepted, so an ID token or another JWT of that issuer with an accepted aud could pass "
                    "as an access token (those carrying nonce or at_hash are still refused).",
                    hint="Keep it only for providers that do not set at+jwt (Entra ID, Okta, Auth0), and "
                    "make sure the accepted audiences are this server's own.",
                    id=f"{PREFIX}.W010",
                )
            )
    if _safe(lambda: mcp_scopes_settings.ALLOW_TOKENS_WITHOUT_RESOURCE):
        messages.append(
            Warning(
                f'{SETTINGS_NAME}["ALLOW_TOKENS_WITHOUT_RESOURCE"] is True: a token issued for any other '
                "service of this authorization server is accepted here.",
                hint="Have clients send the RFC 8707 resource parameter and set it to False.",
                id=f"{PREFIX}.W005",
            )
        )
    alias = _safe(lambda: mcp_scopes_settings.CACHE_ALIAS)
    if alias is not None:
        backend = settings.CACHES[alias].get("BACKEND", "")
        if backend in PROCESS_LOCAL_CACHES:
            messages.append(
                Warning(
                    f"The token cache {alias!r} ({backend.rsplit('.', 1)[-1]}) {PROCESS_LOCAL_CACHES[backend]}.",
                    hint=f'Point {SETTINGS_NAME}["CACHE_ALIAS"] at a shared cache (Redis, Memcached, database).',
                    id=f"{PREFIX}.W004",
                )
            )
        timeout_keys = REDIS_TIMEOUT_OPTIONS.get(backend)
        if timeout_keys:
            options: Any = settings.CACHES[alias].get("OPTIONS") or {}
            unbounded = [key for key in timeout_keys if not _is_short_timeout(options.get(key))]
            if unbounded:
                example = ", ".join(f'"{key}": 0.25' for key in timeout_keys)
                messages.append(
                    Error(
                        f"The cache {alias!r} sets no {' or '.join(unbounded)} of at most "
                        f"{MAX_CACHE_TIMEOUT_SECONDS:g} s: a stalled Redis would hold every authenticated "
                        "request for as long as the operating system waits.",
                        hint=f'Add to CACHES[{alias!r}]["OPTIONS"]: {{{example}}}.',
                        id=f"{PREFIX}.E005",
                    )
                )
    return messages


def _is_short_timeout(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= MAX_CACHE_TIMEOUT_SECONDS


@register(TAG, Tags.database)
def check_operation_scopes(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Scopes the mounted MCP operations need that the database lacks or has switched off.

    A database check (Django runs it in ``migrate`` and ``check --database default``): without
    the scope, the consent page cannot be approved and every call of the operation is refused.
    """
    if not databases:
        return []
    from django.db import DatabaseError

    from django_mcp_scopes.mcp.endpoint import mounted_endpoints
    from django_mcp_scopes.mcp.operations import needed_scopes
    from django_mcp_scopes.models import Scope

    needed: dict[str, set[str]] = {}
    for path, endpoint in mounted_endpoints():
        for name in needed_scopes(endpoint):
            needed.setdefault(name, set()).add(path)
    if not needed:
        return []
    try:
        active = dict(Scope.objects.filter(name__in=needed).values_list("name", "is_active"))
    except DatabaseError:
        return []  # not migrated yet: migrate itself runs this check again afterwards
    messages: list[CheckMessage] = []
    missing = sorted(name for name in needed if name not in active)
    inactive = sorted(name for name, is_active in active.items() if not is_active)
    if missing:
        messages.append(
            Warning(
                f"MCP operations need scopes that are not in the database: {_where(missing, needed)}. "
                "No token can grant them, and the consent page cannot be approved.",
                hint="Run `python manage.py mcp_scopes sync` (it creates the declared scopes), or add them "
                "in the admin.",
                id=f"{PREFIX}.W006",
            )
        )
    if inactive:
        messages.append(
            Warning(
                f"MCP operations need scopes that are inactive: {_where(inactive, needed)}. Every call of "
                "these operations is refused.",
                hint="Activate them in the admin (Scopes, action 'Activate') if that was not intended.",
                id=f"{PREFIX}.W007",
            )
        )
    return messages


def _where(names: list[str], needed: dict[str, set[str]]) -> str:
    return ", ".join(f"{name} ({', '.join(sorted(needed[name]))})" for name in names)


@register(TAG, Tags.urls)
def check_metadata_urls(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Each mounted MCP endpoint's metadata URL reaches this package's view, not another one.

    When django-oauth-toolkit's own ``metadata_urlpatterns`` (or any other view) come first in the
    URLconf, they answer instead: every scope listed, any path accepted, the wrong ``resource``.
    """
    from django.urls import Resolver404, resolve

    from django_mcp_scopes.mcp.endpoint import mounted_endpoints
    from django_mcp_scopes.resources import WELL_KNOWN_PATH
    from django_mcp_scopes.views import ProtectedResourceMetadataView

    messages: list[CheckMessage] = []
    for path in sorted({path.rstrip("/") for path, _endpoint in mounted_endpoints()}):
        url = WELL_KNOWN_PATH + path
        try:
            match = resolve(url)
        except Resolver404:
            messages.append(
                Error(
                    f"Nothing serves {url}, the protected-resource metadata of the MCP endpoint {path}: "
                    "MCP clients cannot discover its authorization server.",
                    hint='Add path("", include("django_mcp_scopes.urls")) to the root URLconf.',
                    id=f"{PREFIX}.E006",
                )
            )
            continue
        view_class = getattr(match.func, "view_class", None)
        if not (isinstance(view_class, type) and issubclass(view_class, ProtectedResourceMetadataView)):
            where = f"{getattr(match.func, '__module__', '?')}.{getattr(match.func, '__qualname__', match.func)}"
            messages.append(
                Warning(
                    f"{url} is answered by {where}, not by django-mcp-scopes: the metadata MCP clients read "
                    f"for {path} does not come from its registered scopes.",
                    hint='Put path("", include("django_mcp_scopes.urls")) before the URL patterns that '
                    "match it (for example django-oauth-toolkit's metadata_urlpatterns).",
                    id=f"{PREFIX}.W008",
                )
            )
    return messages


@register(TAG, Tags.urls)
def check_undeclared_operations(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Least privilege: every operation of a mounted MCP endpoint declares what it needs (E201), or
    the setting that lets undeclared ones through is on (W201, deploy)."""
    from django_mcp_scopes.conf import mcp_scopes_settings
    from django_mcp_scopes.mcp.endpoint import mounted_endpoints, undeclared_message
    from django_mcp_scopes.mcp.operations import undeclared_operations

    allowed = _safe(lambda: mcp_scopes_settings.ALLOW_UNDECLARED_OPERATIONS)
    if allowed is not False:
        return []
    messages: list[CheckMessage] = []
    seen: set[int] = set()
    for path, endpoint in mounted_endpoints():
        missing = undeclared_operations(endpoint)
        if missing and id(endpoint) not in seen:
            seen.add(id(endpoint))
            messages.append(
                Error(
                    f"The MCP endpoint {path}: {undeclared_message(endpoint.server.name, missing)}",
                    hint="An undeclared operation is refused to every caller.",
                    id=f"{PREFIX}.E201",
                )
            )
    return messages


@register(TAG, Tags.security, deploy=True)
def check_undeclared_operations_allowed(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    from django_mcp_scopes.conf import mcp_scopes_settings

    if _safe(lambda: mcp_scopes_settings.ALLOW_UNDECLARED_OPERATIONS) is not True:
        return []
    return [
        Warning(
            'MCP_SCOPES["ALLOW_UNDECLARED_OPERATIONS"] is on: any valid token may call an MCP operation '
            "that declares no scope requirement, and list or complete without a declared method default.",
            hint="Declare each operation with @requires_scopes(...) or @open_to_any_token, give method_scopes "
            "for the listings, then remove the setting.",
            id=f"{PREFIX}.W201",
        )
    ]


@register(TAG)
def check_opentelemetry(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    if not _safe(lambda: mcp_scopes_settings.OPENTELEMETRY):
        return []
    try:
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return [
            Error(
                f'{SETTINGS_NAME}["OPENTELEMETRY"] is True but the OpenTelemetry API is not installed.',
                hint='pip install "django-mcp-scopes[otel]", or set OPENTELEMETRY to False.',
                id=f"{PREFIX}.E401",
            )
        ]
    return []
