"""Settings of the authorization-server parts: ``settings.MCP_SCOPES_OAUTH`` (a dict), with defaults.

Kept apart from ``MCP_SCOPES`` because they only matter to a project that is its own
authorization server; the cache alias, key prefix and ``Retry-After`` come from ``MCP_SCOPES``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTINGS_NAME = "MCP_SCOPES_OAUTH"

DEFAULTS: dict[str, Any] = {
    # URL paths of the protected resources tokens may be bound to (RFC 8707), e.g. ["/mcp", "/api"].
    # None: every MCP endpoint mounted with mcp_path().
    "RESOURCE_PATHS": None,
    # The resource a request without `resource` is bound to. None: the only MCP endpoint mounted
    # with mcp_path(); with several (or none), such a request is refused with invalid_target.
    "DEFAULT_RESOURCE_PATH": None,
    # Login page the authorization endpoint sends anonymous users to. None: settings.LOGIN_URL when
    # it resolves to a view of this project, else the login page these URLs ship.
    "LOGIN_URL": None,
    # Anonymous registration (RFC 7591) of public clients.
    "REGISTRATION_MAX_REDIRECT_URIS": 5,
    "REGISTRATION_MAX_URI_LENGTH": 2000,
    "REGISTRATION_MAX_NAME_LENGTH": 255,
    "REGISTRATION_MAX_BODY_BYTES": 16 * 1024,
    # Successful registrations per client IP per window; a slot is reserved before the work.
    "REGISTRATION_RATE_LIMIT": 20,
    "REGISTRATION_RATE_WINDOW_SECONDS": 3600,
    # Anonymously registered clients in total (503 beyond: prune unused ones in the admin).
    "REGISTRATION_MAX_CLIENTS": 10_000,
    # Where the client IP comes from: a request.META key ("REMOTE_ADDR", or e.g.
    # "HTTP_X_FORWARDED_FOR" behind a proxy), and how many proxies append to that header (the
    # address that many entries from the right is taken; 0 for a header holding one address).
    "CLIENT_IP_META_KEY": "REMOTE_ADDR",
    "CLIENT_IP_TRUSTED_PROXIES": 0,
    # How long (seconds) the tokens issued for an authorization code are remembered, so that a
    # replay of that code revokes them (RFC 6749 section 4.1.2).
    "CODE_REPLAY_MEMORY_SECONDS": 3600,
}

_POSITIVE_INTS = {
    "REGISTRATION_MAX_REDIRECT_URIS",
    "REGISTRATION_MAX_URI_LENGTH",
    "REGISTRATION_MAX_NAME_LENGTH",
    "REGISTRATION_MAX_BODY_BYTES",
    "REGISTRATION_RATE_WINDOW_SECONDS",
    "CODE_REPLAY_MEMORY_SECONDS",
}
_NON_NEGATIVE_INTS = {"REGISTRATION_RATE_LIMIT", "REGISTRATION_MAX_CLIENTS", "CLIENT_IP_TRUSTED_PROXIES"}


class OAuthSettings:
    """Typed access to ``settings.MCP_SCOPES_OAUTH``; values are read on each access (cheap)."""

    def _user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTINGS_NAME, {})
        if not isinstance(value, dict):
            raise ImproperlyConfigured(f"{SETTINGS_NAME} must be a dict; got {type(value).__name__}.")
        unknown = sorted(set(value) - set(DEFAULTS))
        if unknown:
            raise ImproperlyConfigured(f"{SETTINGS_NAME} has unknown keys {unknown}; known: {sorted(DEFAULTS)}.")
        return value

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        value = self._user_settings().get(name, DEFAULTS[name])
        if name in _POSITIVE_INTS | _NON_NEGATIVE_INTS:
            minimum = 1 if name in _POSITIVE_INTS else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ImproperlyConfigured(f"{SETTINGS_NAME}[{name!r}] must be an integer >= {minimum}; got {value!r}.")
        elif name == "RESOURCE_PATHS":
            if value is not None and (
                not isinstance(value, (list, tuple)) or not all(isinstance(p, str) and p.strip("/") for p in value)
            ):
                raise ImproperlyConfigured(f"{SETTINGS_NAME}['RESOURCE_PATHS'] must be None or a list of URL paths.")
        elif name in ("LOGIN_URL", "DEFAULT_RESOURCE_PATH") and value is not None and not isinstance(value, str):
            raise ImproperlyConfigured(f"{SETTINGS_NAME}[{name!r}] must be None or a URL path.")
        elif name == "CLIENT_IP_META_KEY" and (not isinstance(value, str) or not value):
            raise ImproperlyConfigured(f"{SETTINGS_NAME}['CLIENT_IP_META_KEY'] must be a request.META key.")
        return value

    def validate(self) -> list[str]:
        """One message per malformed setting (for the system checks)."""
        problems = []
        for name in DEFAULTS:
            try:
                getattr(self, name)
            except ImproperlyConfigured as exc:
                problems.append(str(exc))
                if "unknown keys" in str(exc) or "must be a dict" in str(exc):
                    break
        return problems


oauth_settings = OAuthSettings()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF" or setting == SETTINGS_NAME:
        from django_mcp_scopes.oauth import resources

        resources.forget_paths()
