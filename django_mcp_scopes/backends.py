"""django-oauth-toolkit scopes backend fed by the Scope table.

Set ``OAUTH2_PROVIDER["SCOPES_BACKEND_CLASS"] = "django_mcp_scopes.backends.DatabaseScopes"``.
"""

from __future__ import annotations

from typing import Any

from oauth2_provider.scopes import BaseScopes

from django_mcp_scopes.registry import scope_registry


class ScopeDescriptions(dict[str, str]):
    """Name -> description. A name missing here (deactivated a moment ago) reads as itself.

    django-oauth-toolkit's consent page indexes this mapping with the scopes it validated a
    moment earlier; a scope deactivated in between must not turn the page into a 500 (the
    authorization POST validates the scopes again and refuses it).
    """

    def __missing__(self, key: str) -> str:
        return key


# Scopes that unlock django-oauth-toolkit's own machinery rather than this server's resources.
# A row with such a name (created by mistake, or on purpose for a back-office client) must never
# reach a public client through dynamic registration and a consent click (CONTEXT: a DCR client
# given every advertised scope could introspect other users' tokens).
INTROSPECTION_SCOPE = "introspection"


def _machinery_scopes_for(application: Any) -> set[str]:
    """The reserved names ``application`` may not be issued."""
    from oauth2_provider.settings import oauth2_settings

    refused = {oauth2_settings.DCR_REGISTRATION_SCOPE}
    client_type = getattr(application, "client_type", None)
    grant_type = getattr(application, "authorization_grant_type", None)
    if not (client_type == "confidential" and grant_type == "client-credentials"):
        refused.add(INTROSPECTION_SCOPE)
    return refused


class DatabaseScopes(BaseScopes):
    """Issue only registered active scopes; default to the baseline, never to "all scopes".

    DOT's registration scope is never issued, and ``introspection`` only to confidential
    clients of the client-credentials grant (resource servers), never through a consent page.
    """

    def get_all_scopes(self) -> dict[str, str]:
        return ScopeDescriptions(scope_registry.descriptions())

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        refused = _machinery_scopes_for(application)
        return [name for name in scope_registry.active_names() if name not in refused]

    def get_default_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        refused = _machinery_scopes_for(application)
        return [name for name in scope_registry.baseline() if name not in refused]
