"""Scopes declared in code, next to the tools and views that need them.

``declare_scope("entries:write", "Create and change your entries", implies=["entries:read"])``
records a scope; ``manage.py mcp_scopes sync`` creates what is missing in the database without
ever overwriting what an admin edited. Declaring is idempotent; declaring one name twice with
different content raises ``ImproperlyConfigured``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured, ValidationError

from django_mcp_scopes.models import NEVER_ADVERTISED
from django_mcp_scopes.validators import validate_scope_name


@dataclass(frozen=True)
class DeclaredScope:
    name: str
    description: str = ""
    implies: tuple[str, ...] = ()
    advertised: bool = False
    source: str = ""


_declared: dict[str, DeclaredScope] = {}
_lock = threading.Lock()


def declare_scope(
    name: str,
    description: str = "",
    *,
    implies: Iterable[str] = (),
    advertised: bool = False,
    source: str = "",
) -> DeclaredScope:
    """Declare a scope in code. Returns the declaration."""
    if isinstance(implies, str):
        raise ImproperlyConfigured(
            f"declare_scope({name!r}, implies=...) takes a list of scope names, not the string {implies!r}."
        )
    implies = list(implies)
    for candidate in (name, *implies):
        try:
            validate_scope_name(candidate)
        except ValidationError as exc:
            raise ImproperlyConfigured(f"Declared scope {candidate!r} is invalid: {exc.messages[0]}") from exc
    if advertised and name in NEVER_ADVERTISED:
        raise ImproperlyConfigured(f"{name} can never be advertised.")
    declaration = DeclaredScope(name, description, tuple(sorted(set(implies))), advertised, source)
    with _lock:
        existing = _declared.get(name)
        if existing is not None:
            merged = _merge(existing, declaration)
            _declared[name] = merged
            return merged
        _declared[name] = declaration
    return declaration


def _merge(old: DeclaredScope, new: DeclaredScope) -> DeclaredScope:
    """A bare mention (no description, no implications) adds to an earlier full declaration."""
    if new.description and old.description and new.description != old.description:
        raise ImproperlyConfigured(
            f"Scope {new.name!r} is declared twice with different descriptions "
            f"({old.description!r} and {new.description!r}); keep one."
        )
    return DeclaredScope(
        name=old.name,
        description=old.description or new.description,
        implies=tuple(sorted(set(old.implies) | set(new.implies))),
        advertised=old.advertised or new.advertised,
        source=old.source or new.source,
    )


def declared_scopes() -> dict[str, DeclaredScope]:
    with _lock:
        return dict(_declared)


def _forget(name: str) -> None:
    """Drop a declaration (tests only)."""
    with _lock:
        _declared.pop(name, None)
