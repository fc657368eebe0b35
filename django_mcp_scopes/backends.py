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


class DatabaseScopes(BaseScopes):
    """Issue only registered active scopes; default to the baseline, never to "all scopes"."""

    def get_all_scopes(self) -> dict[str, str]:
        return ScopeDescriptions(scope_registry.descriptions())

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return scope_registry.active_names()

    def get_default_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        return scope_registry.baseline()
