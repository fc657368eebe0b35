"""Settings for django-mcp-scopes, read from the ``MCP_SCOPES`` dict in Django settings.

Every setting has a typed property here with its default beside it. Values are validated
when read: a malformed value raises ``ImproperlyConfigured`` with a message that names the
setting, and the system checks (``django_mcp_scopes.E0xx``) report the same at start-up.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTINGS_NAME = "MCP_SCOPES"

LISTING_POLICIES = ("obtainable", "strict", "all")
"""The values of ``MCP_SCOPES["LISTING_POLICY"]``."""

DEFAULTS: dict[str, Any] = {
    # Public origin of this server, e.g. "https://api.example.com" (scheme, host, optional port;
    # no path). Each endpoint's canonical resource URI is BASE_URL + its URL path. None: derived
    # from the request (honours SECURE_PROXY_SSL_HEADER / USE_X_FORWARDED_HOST when Django is set
    # up for a proxy).
    "BASE_URL": None,
    # Issuer identifiers of the authorization servers. Empty: django-oauth-toolkit's own
    # (OIDC_ISS_ENDPOINT, else derived from the request) when oauth2_provider is installed.
    "AUTHORIZATION_SERVERS": [],
    # Cache alias used for the token cache (validated tokens, introspection answers) and the
    # registration rate limit. The scope registry does not use the cache.
    "CACHE_ALIAS": "default",
    # Key prefix for everything this app stores in the cache. None: "mcp_scopes:" followed by a
    # digest of SECRET_KEY, so two projects sharing one cache server never read each other's keys.
    "CACHE_KEY_PREFIX": None,
    # After a cache call fails or times out, how long (seconds) this process leaves the cache
    # alone and answers from the database instead.
    "CACHE_RETRY_SECONDS": 1.0,
    # How long (seconds) a process trusts its reading of the database-owned scope version and
    # token epoch (django_mcp_scopes.epochs) before it reads them again (one primary-key query).
    # Scope changes and outage-time revocations reach every process within this time.
    "REGISTRY_REFRESH_SECONDS": 0.5,
    # Optional RFC 9728 fields.
    "RESOURCE_NAME": "",
    "RESOURCE_DOCUMENTATION": "",
    "RESOURCE_POLICY_URI": "",
    "RESOURCE_TOS_URI": "",
    # Path (without leading slash) of the endpoint whose metadata is also served at the root
    # /.well-known/oauth-protected-resource. None: no root document.
    "ROOT_RESOURCE_PATH": None,
    # Cache-Control max-age (seconds) of the protected-resource metadata.
    "METADATA_MAX_AGE": 60,
    # Token validation.
    # How long (seconds) a validated token's principal stays in the shared cache (never past the
    # token's expiry). Revocation and deletion through django-oauth-toolkit drop it at once.
    "TOKEN_CACHE_SECONDS": 30,
    # How long (seconds) each process keeps a principal in memory in front of the shared cache.
    # A token revoked in another process is refused here at the latest after this long. 0: off.
    "TOKEN_LOCAL_CACHE_SECONDS": 0.5,
    # Accept tokens bound to no resource (RFC 8707). Off by default; a deploy check warns when on.
    "ALLOW_TOKENS_WITHOUT_RESOURCE": False,
    "INTROSPECTION_TIMEOUT_SECONDS": 5.0,
    "INTROSPECTION_CACHE_SECONDS": 30,
    # When set, an introspection response must carry exactly this "iss".
    "INTROSPECTION_ISSUER": None,
    "SERVICE_UNAVAILABLE_RETRY_AFTER": 5,
    # JWT access tokens (RFC 9068) from external identity providers (django_mcp_scopes.tokens.jwt,
    # docs/jwt.md). One dict per trusted issuer; the keys and their defaults are ISSUER_DEFAULTS.
    # Empty: no JWT is accepted, tokens are DOT's own or introspected as before.
    "JWT_ISSUERS": [],
    # Clock skew (seconds) allowed when checking exp, nbf and iat; at most MAX_JWT_LEEWAY_SECONDS.
    "JWT_LEEWAY_SECONDS": 60,
    # A JWT longer than this (bytes) is refused before it is parsed.
    "JWT_MAX_TOKEN_BYTES": 8192,
    # Each JWKS (or discovery document) fetch: whole answer within this many seconds, at most
    # JWKS_MAX_BYTES, no redirects.
    "JWKS_TIMEOUT_SECONDS": 3.0,
    "JWKS_MAX_BYTES": 64 * 1024,
    # How long (seconds) a fetched key set is used before it is fetched again.
    "JWKS_REFRESH_SECONDS": 300,
    # A token signed with an unknown key id fetches the key set again, at most once per issuer and
    # process in this many seconds (a flood of made-up kids is not a flood of fetches).
    "JWKS_MIN_REFRESH_SECONDS": 30,
    # While the provider cannot be reached, keys already known keep being used for this many
    # seconds past JWKS_REFRESH_SECONDS; after that tokens get 503 until the provider answers.
    "JWKS_MAX_STALE_SECONDS": 3600,
    # MCP endpoint.
    # What tools/list, prompts/list and resources/(templates/)list show a token:
    # "obtainable": what it may use now, and what its client could obtain by step-up (every scope
    #   needed is active and the authorization server may grant it to this client);
    # "strict": only what it may use now; "all": everything the server has.
    "LISTING_POLICY": "obtainable",
    # Deprecated: True means LISTING_POLICY "all", False "strict". None: not set.
    "LIST_ALL_OPERATIONS": None,
    "ALLOWED_ORIGINS": [],
    "MAX_BODY_BYTES": 1024 * 1024,
    # Least privilege: an MCP tool, resource, resource template or prompt without @requires_scopes
    # or @open_to_any_token, or a listing / completion/complete method default missing from
    # method_scopes, refuses to start. True: undeclared means any valid token (the behaviour before
    # issue 11); a deploy check warns (W201).
    "ALLOW_UNDECLARED_OPERATIONS": False,
    # Under WSGI, a sync tool, resource or prompt function runs in the request thread that serves
    # the call (django_mcp_scopes.mcp.database). False: in a worker thread of the event loop, as the
    # SDK's own server runs it (anyio.from_thread works there; a thread hop per call).
    "SYNC_CALLS_IN_REQUEST_THREAD": True,
    # Rate limits per token / client / user on MCP endpoints and the DRF permissions
    # (django_mcp_scopes.ratelimits): [{"rate": "600/minute", "per": "token", "operations": [...]}].
    "RATE_LIMITS": [],
    # When the cache cannot count: "allow" (logged) or "refuse" (503 with Retry-After).
    "RATE_LIMITS_WHEN_CACHE_DOWN": "allow",
    # OpenTelemetry spans and refusal counters (django_mcp_scopes.telemetry). Needs opentelemetry-api
    # (the "otel" extra); off: opentelemetry is never imported by this package.
    "OPENTELEMETRY": False,
    # Keep a record of refused requests (django_mcp_scopes.refusals) for the admin and
    # ``manage.py mcp_scopes refusals``: time, kind, reason, operation, path, client id, scopes
    # missing; never a token, a user or an address. Written after the response, in batches.
    "REFUSAL_LOG": True,
    # The newest this many refusals are kept; older ones are deleted as new ones are written.
    "REFUSAL_LOG_MAX": 1000,
}


# Keys of one MCP_SCOPES["JWT_ISSUERS"] entry and their defaults. ISSUER and one of JWKS_URI or
# DISCOVERY_URL are required.
ISSUER_DEFAULTS: dict[str, Any] = {
    # The exact "iss" of the tokens (compared byte for byte) and the issuer listed in the
    # protected-resource metadata's authorization_servers.
    "ISSUER": None,
    # Where the signing keys are: the JWKS URI, or an RFC 8414 / OpenID discovery document
    # (its "issuer" must equal ISSUER; its "jwks_uri" is used).
    "JWKS_URI": None,
    "DISCOVERY_URL": None,
    # Audiences accepted besides this server's resource URI (Entra ID's application ID or App ID
    # URI, a client id in aud). Accepted at every protected resource of the project; a deploy
    # check (W006) explains the risk.
    "AUDIENCES": [],
    # The claim holding the granted scopes: a space-separated string or an array of strings
    # ("scope" for RFC 9068 and Keycloak, "scp" for Okta and Entra ID).
    "SCOPE_CLAIM": "scope",
    # Signature algorithms accepted (asymmetric ones only: no HMAC, never "none").
    "ALGORITHMS": ["RS256"],
    # Require the RFC 9068 header typ "at+jwt". False also accepts "JWT" or no typ (Entra ID,
    # Okta, Auth0); tokens that look like ID tokens (nonce, at_hash) are still refused.
    "REQUIRE_AT_JWT_TYPE": True,
    # The claim naming the user, given to USER_RESOLVER. None: the principal has no Django user.
    "USER_CLAIM": "sub",
    # Called as resolver(claims, issuer) -> user or None (refused); a dotted path or a callable.
    "USER_RESOLVER": "django_mcp_scopes.tokens.jwt.resolve_user",
    # The default resolver creates a user (username = the USER_CLAIM value) on first sight.
    "CREATE_USERS": False,
}
# RFC 7518 / RFC 8037 asymmetric signature algorithms. HMAC ("HS256", ...) needs a shared secret,
# and a resource server that takes HMAC with a published key would accept forged tokens.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
MAX_JWT_LEEWAY_SECONDS = 300


@dataclass(frozen=True)
class JWTIssuer:
    """One trusted issuer of JWT access tokens, validated (``MCP_SCOPES["JWT_ISSUERS"]`` entry)."""

    issuer: str
    jwks_uri: str | None
    discovery_url: str | None
    audiences: tuple[str, ...]
    scope_claim: str
    algorithms: tuple[str, ...]
    require_at_jwt_type: bool
    user_claim: str | None
    user_resolver: str | Callable[..., Any]
    create_users: bool


def _require(condition: bool, name: str, expected: str, value: Any) -> None:
    if not condition:
        raise ImproperlyConfigured(f"{SETTINGS_NAME}[{name!r}] must be {expected}; got {value!r}.")


def _is_str_list(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and all(isinstance(item, str) for item in value)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_absolute_url(value: Any) -> bool:
    """An http(s) URL with an ASCII host (IDNA A-label), no query, no fragment, no whitespace."""
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.netloc.isascii()
        and not parts.query
        and not parts.fragment
    )


_T = TypeVar("_T")


class _setting(Generic[_T]):
    """A read-only property whose validated value is remembered until the settings change.

    Settings are read on hot paths (every authenticated request); validating them each time
    costs more than the rest of a warm token check. A malformed value is never remembered, so
    it keeps raising ``ImproperlyConfigured``. ``setting_changed`` clears the memo.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    @overload
    def __get__(self, instance: None, owner: type) -> _setting[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> _T: ...

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        memo = instance._memo
        try:
            return memo[self.name]
        except KeyError:
            value = self.compute(instance)
            memo[self.name] = value
            return value


class MCPScopesSettings:
    """Typed access to ``settings.MCP_SCOPES`` with defaults."""

    def __init__(self) -> None:
        self._memo: dict[str, Any] = {}

    def clear(self) -> None:
        """Forget remembered values (done on ``setting_changed``)."""
        self._memo.clear()

    def _user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTINGS_NAME, {})
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"{SETTINGS_NAME} must be a dict; got {type(value).__name__}.")
        return value

    def _get(self, name: str) -> Any:
        return self._user_settings().get(name, DEFAULTS[name])

    def unknown_keys(self) -> list[str]:
        return sorted(set(self._user_settings()) - set(DEFAULTS))

    def _optional_url(self, name: str) -> str | None:
        value = self._get(name)
        if value in (None, ""):
            return None
        _require(_is_absolute_url(value), name, "an absolute http(s) URL without query or fragment, or None", value)
        return str(value).rstrip("/")

    def _str(self, name: str) -> str:
        value = self._get(name)
        _require(isinstance(value, str), name, "a string", value)
        return str(value)

    def _str_list(self, name: str) -> list[str]:
        value = self._get(name)
        _require(_is_str_list(value), name, "a list of strings", value)
        return list(value)

    def _number(self, name: str, minimum: float = 0) -> float:
        value = self._get(name)
        _require(_is_number(value) and value >= minimum, name, f"a number >= {minimum}", value)
        return float(value)

    def _int(self, name: str, minimum: int = 0) -> int:
        value = self._get(name)
        _require(
            isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
            name,
            f"an integer >= {minimum}",
            value,
        )
        return int(value)

    def _bool(self, name: str) -> bool:
        value = self._get(name)
        _require(isinstance(value, bool), name, "True or False", value)
        return bool(value)

    @_setting
    def BASE_URL(self) -> str | None:
        value = self._optional_url("BASE_URL")
        if value is not None:
            parts = urlsplit(value)
            _require(
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and not parts.path
                and not parts.query
                and not parts.fragment,
                "BASE_URL",
                'an origin like "https://api.example.com" (no path) or None',
                value,
            )
        return value

    @_setting
    def AUTHORIZATION_SERVERS(self) -> list[str]:
        servers = self._str_list("AUTHORIZATION_SERVERS")
        for server in servers:
            _require(
                _is_absolute_url(server),
                "AUTHORIZATION_SERVERS",
                "a list of issuer URLs (http(s), no query or fragment)",
                servers,
            )
        return servers

    @_setting
    def CACHE_ALIAS(self) -> str:
        alias = self._str("CACHE_ALIAS")
        caches_setting = getattr(settings, "CACHES", {})
        _require(alias in caches_setting, "CACHE_ALIAS", f"one of {sorted(caches_setting)}", alias)
        return alias

    @_setting
    def CACHE_KEY_PREFIX(self) -> str:
        if self._get("CACHE_KEY_PREFIX") is None:
            secret = str(getattr(settings, "SECRET_KEY", ""))
            digest = hashlib.sha256(f"django_mcp_scopes cache namespace:{secret}".encode()).hexdigest()
            return f"mcp_scopes:{digest[:16]}"
        value = self._str("CACHE_KEY_PREFIX")
        _require(
            value != "" and value.isprintable() and " " not in value,
            "CACHE_KEY_PREFIX",
            "a non-empty string without spaces",
            value,
        )
        return value

    @_setting
    def CACHE_RETRY_SECONDS(self) -> float:
        return self._number("CACHE_RETRY_SECONDS")

    @_setting
    def REGISTRY_REFRESH_SECONDS(self) -> float:
        return self._number("REGISTRY_REFRESH_SECONDS")

    @_setting
    def RESOURCE_NAME(self) -> str:
        return self._str("RESOURCE_NAME")

    @_setting
    def RESOURCE_DOCUMENTATION(self) -> str | None:
        return self._optional_url("RESOURCE_DOCUMENTATION")

    @_setting
    def RESOURCE_POLICY_URI(self) -> str | None:
        return self._optional_url("RESOURCE_POLICY_URI")

    @_setting
    def RESOURCE_TOS_URI(self) -> str | None:
        return self._optional_url("RESOURCE_TOS_URI")

    @_setting
    def ROOT_RESOURCE_PATH(self) -> str | None:
        value = self._get("ROOT_RESOURCE_PATH")
        if value is None:
            return None
        _require(
            isinstance(value, str) and value.strip("/") != "",
            "ROOT_RESOURCE_PATH",
            "a URL path or None",
            value,
        )
        return str(value).strip("/")

    @_setting
    def METADATA_MAX_AGE(self) -> int:
        return self._int("METADATA_MAX_AGE")

    @_setting
    def TOKEN_CACHE_SECONDS(self) -> float:
        return self._number("TOKEN_CACHE_SECONDS")

    @_setting
    def TOKEN_LOCAL_CACHE_SECONDS(self) -> float:
        return self._number("TOKEN_LOCAL_CACHE_SECONDS")

    @_setting
    def INTROSPECTION_ISSUER(self) -> str | None:
        return self._optional_url("INTROSPECTION_ISSUER")

    @_setting
    def ALLOW_TOKENS_WITHOUT_RESOURCE(self) -> bool:
        return self._bool("ALLOW_TOKENS_WITHOUT_RESOURCE")

    @_setting
    def INTROSPECTION_TIMEOUT_SECONDS(self) -> float:
        return self._number("INTROSPECTION_TIMEOUT_SECONDS", minimum=0.001)

    @_setting
    def INTROSPECTION_CACHE_SECONDS(self) -> float:
        return self._number("INTROSPECTION_CACHE_SECONDS")

    @_setting
    def SERVICE_UNAVAILABLE_RETRY_AFTER(self) -> int:
        return self._int("SERVICE_UNAVAILABLE_RETRY_AFTER", minimum=1)

    @_setting
    def LISTING_POLICY(self) -> str:
        user = self._user_settings()
        legacy = user.get("LIST_ALL_OPERATIONS")
        if legacy is not None:
            _require(isinstance(legacy, bool), "LIST_ALL_OPERATIONS", "True, False or None (deprecated)", legacy)
            if "LISTING_POLICY" in user:
                raise ImproperlyConfigured(
                    f"{SETTINGS_NAME} sets both LISTING_POLICY and the deprecated LIST_ALL_OPERATIONS; "
                    "remove LIST_ALL_OPERATIONS."
                )
            replacement = "all" if legacy else "strict"
            warnings.warn(
                f'{SETTINGS_NAME}["LIST_ALL_OPERATIONS"] is deprecated: set '
                f'{SETTINGS_NAME}["LISTING_POLICY"] = "{replacement}" instead.',
                DeprecationWarning,
                stacklevel=2,
            )
            return replacement
        value = self._get("LISTING_POLICY")
        _require(value in LISTING_POLICIES, "LISTING_POLICY", f"one of {', '.join(map(repr, LISTING_POLICIES))}", value)
        return str(value)

    @_setting
    def JWT_ISSUERS(self) -> tuple[JWTIssuer, ...]:
        value = self._get("JWT_ISSUERS")
        _require(
            isinstance(value, Sequence) and not isinstance(value, (str, bytes)),
            "JWT_ISSUERS",
            "a list of dicts (one per trusted issuer)",
            value,
        )
        issuers = tuple(_jwt_issuer(index, entry) for index, entry in enumerate(value))
        names = [issuer.issuer for issuer in issuers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        _require(not duplicates, "JWT_ISSUERS", "a list naming each ISSUER once", duplicates)
        return issuers

    @_setting
    def JWT_LEEWAY_SECONDS(self) -> float:
        value = self._number("JWT_LEEWAY_SECONDS")
        _require(value <= MAX_JWT_LEEWAY_SECONDS, "JWT_LEEWAY_SECONDS", f"at most {MAX_JWT_LEEWAY_SECONDS}", value)
        return value

    @_setting
    def JWT_MAX_TOKEN_BYTES(self) -> int:
        return self._int("JWT_MAX_TOKEN_BYTES", minimum=256)

    @_setting
    def JWKS_TIMEOUT_SECONDS(self) -> float:
        return self._number("JWKS_TIMEOUT_SECONDS", minimum=0.001)

    @_setting
    def JWKS_MAX_BYTES(self) -> int:
        return self._int("JWKS_MAX_BYTES", minimum=1024)

    @_setting
    def JWKS_REFRESH_SECONDS(self) -> float:
        return self._number("JWKS_REFRESH_SECONDS", minimum=1)

    @_setting
    def JWKS_MIN_REFRESH_SECONDS(self) -> float:
        return self._number("JWKS_MIN_REFRESH_SECONDS")

    @_setting
    def JWKS_MAX_STALE_SECONDS(self) -> float:
        return self._number("JWKS_MAX_STALE_SECONDS")

    @_setting
    def LIST_ALL_OPERATIONS(self) -> bool:
        """Deprecated: whether ``LISTING_POLICY`` is ``"all"``."""
        return self.LISTING_POLICY == "all"

    @_setting
    def ALLOWED_ORIGINS(self) -> list[str]:
        return self._str_list("ALLOWED_ORIGINS")

    @_setting
    def MAX_BODY_BYTES(self) -> int:
        return self._int("MAX_BODY_BYTES", minimum=1)

    @_setting
    def ALLOW_UNDECLARED_OPERATIONS(self) -> bool:
        return self._bool("ALLOW_UNDECLARED_OPERATIONS")

    @_setting
    def RATE_LIMITS(self) -> tuple[Any, ...]:
        from django_mcp_scopes.ratelimits import parse_rules

        return parse_rules(self._get("RATE_LIMITS"))

    @_setting
    def RATE_LIMITS_WHEN_CACHE_DOWN(self) -> str:
        value = self._get("RATE_LIMITS_WHEN_CACHE_DOWN")
        _require(value in ("allow", "refuse"), "RATE_LIMITS_WHEN_CACHE_DOWN", '"allow" or "refuse"', value)
        return str(value)

    @_setting
    def SYNC_CALLS_IN_REQUEST_THREAD(self) -> bool:
        return self._bool("SYNC_CALLS_IN_REQUEST_THREAD")

    @_setting
    def OPENTELEMETRY(self) -> bool:
        return self._bool("OPENTELEMETRY")

    @_setting
    def REFUSAL_LOG(self) -> bool:
        return self._bool("REFUSAL_LOG")

    @_setting
    def REFUSAL_LOG_MAX(self) -> int:
        return self._int("REFUSAL_LOG_MAX", minimum=1)

    def validate(self) -> list[str]:
        """Return one message per malformed setting (used by the system checks)."""
        problems = []
        try:
            self._user_settings()
        except ImproperlyConfigured as exc:
            return [str(exc)]
        for name in DEFAULTS:
            try:
                getattr(self, name)
            except ImproperlyConfigured as exc:
                if str(exc) not in problems:  # a derived setting (LIST_ALL_OPERATIONS) repeats its source's
                    problems.append(str(exc))
        return problems


def _jwt_issuer(index: int, entry: Any) -> JWTIssuer:
    """One ``JWT_ISSUERS`` entry, validated; ``ImproperlyConfigured`` names the entry and key."""
    name = f"JWT_ISSUERS[{index}]"
    _require(isinstance(entry, dict), name, "a dict with ISSUER and JWKS_URI or DISCOVERY_URL", entry)
    unknown = sorted(set(entry) - set(ISSUER_DEFAULTS))
    _require(not unknown, name, f"a dict with the keys {sorted(ISSUER_DEFAULTS)} only", unknown)
    values = {**ISSUER_DEFAULTS, **entry}

    def check(key: str, condition: bool, expected: str) -> None:
        _require(condition, f"{name}[{key!r}]", expected, values[key])

    def url_or_none(key: str) -> str | None:
        check(key, values[key] is None or _is_absolute_url(values[key]), "an http(s) URL or None")
        return values[key]

    issuer = values["ISSUER"]
    check("ISSUER", _is_absolute_url(issuer), "the issuer's URL, exactly as the tokens' iss claim spells it")
    jwks_uri, discovery_url = url_or_none("JWKS_URI"), url_or_none("DISCOVERY_URL")
    check("JWKS_URI", (jwks_uri is None) != (discovery_url is None), "set, or DISCOVERY_URL set (exactly one)")
    check("AUDIENCES", _is_str_list(values["AUDIENCES"]) and "" not in values["AUDIENCES"], "a list of strings")
    check("SCOPE_CLAIM", isinstance(values["SCOPE_CLAIM"], str) and values["SCOPE_CLAIM"] != "", "a claim name")
    algorithms = values["ALGORITHMS"]
    check(
        "ALGORITHMS",
        _is_str_list(algorithms) and bool(algorithms) and set(algorithms) <= ASYMMETRIC_ALGORITHMS,
        f"a non-empty list from {sorted(ASYMMETRIC_ALGORITHMS)} (never none or HMAC)",
    )
    check("REQUIRE_AT_JWT_TYPE", isinstance(values["REQUIRE_AT_JWT_TYPE"], bool), "True or False")
    user_claim = values["USER_CLAIM"]
    check("USER_CLAIM", user_claim is None or (isinstance(user_claim, str) and user_claim != ""), "a claim or None")
    resolver = values["USER_RESOLVER"]
    check("USER_RESOLVER", callable(resolver) or (isinstance(resolver, str) and "." in resolver), "a dotted path")
    check("CREATE_USERS", isinstance(values["CREATE_USERS"], bool), "True or False")
    return JWTIssuer(
        issuer=issuer,
        jwks_uri=jwks_uri,
        discovery_url=discovery_url,
        audiences=tuple(values["AUDIENCES"]),
        scope_claim=values["SCOPE_CLAIM"],
        algorithms=tuple(algorithms),
        require_at_jwt_type=values["REQUIRE_AT_JWT_TYPE"],
        user_claim=user_claim,
        user_resolver=resolver,
        create_users=values["CREATE_USERS"],
    )


mcp_scopes_settings = MCPScopesSettings()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, "CACHES", "SECRET_KEY"):
        mcp_scopes_settings.clear()
        from django_mcp_scopes.registry import scope_registry
        from django_mcp_scopes.token_cache import token_cache
        from django_mcp_scopes.tokens.jwks import jwks_cache

        scope_registry.reset_local()
        token_cache.clear_local()
        jwks_cache.clear_local()
        from django_mcp_scopes.ratelimits import rate_limiter

        rate_limiter.reset()
        from django_mcp_scopes import telemetry

        telemetry.reset()
