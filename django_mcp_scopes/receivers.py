"""Keep the scope registry fresh and the hierarchy acyclic, whatever path a change takes."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from django_mcp_scopes.models import Scope
from django_mcp_scopes.registry import scope_registry


@receiver(post_save, sender=Scope, dispatch_uid="mcp_scopes_scope_saved")
@receiver(post_delete, sender=Scope, dispatch_uid="mcp_scopes_scope_deleted")
def _scope_changed(**kwargs: Any) -> None:
    scope_registry.invalidate()


@receiver(m2m_changed, sender=Scope.implies.through, dispatch_uid="mcp_scopes_implies_changed")
def _implications_changed(*, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any) -> None:
    if action == "pre_add" and pk_set:
        if reverse:
            # instance is the narrower scope; each pk in pk_set will imply it.
            for parent in Scope.objects.filter(pk__in=pk_set):
                parent.check_implications([instance])
        else:
            instance.check_implications(Scope.objects.filter(pk__in=pk_set))
    elif action.startswith("post_"):
        scope_registry.invalidate()


# Token-cache invalidation on django-oauth-toolkit's AccessToken changes, and its deploy check.
# The record of recent refusals, written from the refusal signals.
from django_mcp_scopes import refusals as _refusals  # noqa: E402, F401
from django_mcp_scopes import token_cache as _token_cache  # noqa: E402, F401
