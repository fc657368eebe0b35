"""Who is calling: the authenticated principal behind a bearer token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.utils.functional import LazyObject, empty

from django_mcp_scopes.registry import scope_registry

REQUEST_ATTRIBUTE = "mcp_principal"


@dataclass(frozen=True)
class Principal:
    """What a validated access token says, in terms tool and view code can use directly.

    ``effective_scopes`` is computed on every access from the live scope registry, so a scope
    deactivated a moment ago is no longer effective even for a principal taken from a cache.
    """

    user: Any
    granted_scopes: frozenset[str]
    application: Any = None
    client_id: str | None = None
    expires: datetime | None = None
    resource: str | None = None
    token_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # The verified claims of a JWT access token (read-only); empty for other tokens.
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def effective_scopes(self) -> frozenset[str]:
        return scope_registry.expand(self.granted_scopes)

    def has_scopes(self, *names: str) -> bool:
        """Whether every name is effective (hierarchy-aware, active scopes only)."""
        return set(names) <= self.effective_scopes

    @property
    def is_authenticated(self) -> bool:
        return True

    async def auser(self) -> Any:
        """``user`` for async code (``async def`` tools and views): loaded outside the event loop.

        ``principal.user.pk`` needs no query in either world; any other attribute of a user not yet
        loaded would raise ``SynchronousOnlyOperation`` in an event loop. Await this first.
        """
        user = self.user
        if isinstance(user, LazyObject) and user._wrapped is empty:  # type: ignore[attr-defined]
            await sync_to_async(user._setup, thread_sensitive=True)()  # type: ignore[attr-defined]
        return user


def get_principal(request: HttpRequest) -> Principal | None:
    """The principal the authentication layer attached to ``request``, if any."""
    principal = getattr(request, REQUEST_ATTRIBUTE, None)
    if principal is None:
        # DRF wraps the Django request; authentication stores the principal as request.auth.
        auth = getattr(request, "auth", None)
        if isinstance(auth, Principal):
            return auth
    return principal if isinstance(principal, Principal) else None


def set_principal(request: HttpRequest, principal: Principal | None) -> None:
    setattr(request, REQUEST_ATTRIBUTE, principal)
    inner = getattr(request, "_request", None)
    if inner is not None:
        setattr(inner, REQUEST_ATTRIBUTE, principal)
