"""django-oauth-toolkit scopes backend fed by the Scope table (see OAUTH2_PROVIDER["SCOPES_BACKEND_CLASS"])."""

from __future__ import annotations

from typing import Any

from oauth2_provider.scopes import BaseScopes

from django_mcp_scopes.registry import scope_registry


class DatabaseScopes(BaseScopes):
    """Issue only registered active scopes; default to the baseline, never to "all scopes"."""

    def get_all_scopes(self) -> dict[str, str]:
        return scope_registry.descriptions()

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return scope_registry.active_names()

    def get_default_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        return scope_registry.baseline()
