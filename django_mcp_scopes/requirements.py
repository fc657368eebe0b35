"""Scope requirements: all of a set, or any one of several sets, checked through the hierarchy.

Challenge strategy for alternatives (what goes into ``scope=`` of a 403): the alternative that
needs the fewest scopes the caller does not already have; on a tie, the one declared first. The
challenge names every scope of that alternative, so a client that re-authorizes with exactly the
challenged scopes (plus what it had) gets through. The JSON body lists every alternative.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from django_mcp_scopes.registry import scope_registry
from django_mcp_scopes.validators import is_valid_scope_name


@dataclass(frozen=True)
class ScopeRequirement:
    """Satisfied when the effective scopes hold every scope of at least one alternative."""

    alternatives: tuple[frozenset[str], ...]

    @classmethod
    def all_of(cls, *names: str) -> ScopeRequirement:
        return cls((frozenset(_checked(names)),))

    @classmethod
    def any_of(cls, *sets: Iterable[str]) -> ScopeRequirement:
        if not sets:
            raise ImproperlyConfigured("ScopeRequirement.any_of() needs at least one set of scopes.")
        alternatives = tuple(frozenset(_checked(list(s))) for s in sets)
        if any(not alternative for alternative in alternatives):
            # Every token meets an empty alternative: the other alternatives would mean nothing.
            raise ImproperlyConfigured(
                "ScopeRequirement.any_of() got an empty set of scopes, which any token meets; "
                "give each alternative at least one scope."
            )
        return cls(alternatives)

    @property
    def names(self) -> frozenset[str]:
        """Every scope mentioned by any alternative."""
        return frozenset().union(*self.alternatives)

    @property
    def is_empty(self) -> bool:
        """True when some alternative needs no scope at all (any valid token passes)."""
        return any(not alternative for alternative in self.alternatives)

    def is_satisfied_by(self, effective: Iterable[str]) -> bool:
        """``effective`` must already be the hierarchy closure (``Principal.effective_scopes``)."""
        effective = frozenset(effective)
        return any(alternative <= effective for alternative in self.alternatives)

    def is_granted(self, granted: Iterable[str]) -> bool:
        """Like ``is_satisfied_by`` for raw granted names: expands them through the registry first."""
        return self.is_satisfied_by(scope_registry.expand(granted))

    def challenge_scopes(self, effective: Iterable[str] = ()) -> list[str]:
        """The scopes to put in an ``insufficient_scope`` challenge, sorted."""
        effective = frozenset(effective)
        best = min(self.alternatives, key=lambda alternative: len(alternative - effective))
        return sorted(best)

    def missing(self, effective: Iterable[str]) -> list[str]:
        effective = frozenset(effective)
        return sorted(frozenset(self.challenge_scopes(effective)) - effective)

    def describe(self) -> list[list[str]]:
        return [sorted(alternative) for alternative in self.alternatives]

    def __and__(self, other: ScopeRequirement) -> ScopeRequirement:
        return ScopeRequirement(tuple(a | b for a in self.alternatives for b in other.alternatives))

    def __or__(self, other: ScopeRequirement) -> ScopeRequirement:
        return ScopeRequirement(self.alternatives + other.alternatives)


RequirementLike = ScopeRequirement | str | Iterable[str] | Iterable[Iterable[str]]


def _checked(names: Iterable[str]) -> list[str]:
    names = list(names)
    for name in names:
        if not is_valid_scope_name(name):
            raise ImproperlyConfigured(
                f"{name!r} is not a valid scope name (RFC 6749 scope-token: printable ASCII, "
                "no space, quote or backslash)."
            )
    return names


def coerce_requirement(value: Any) -> ScopeRequirement:
    """Accept the usual spellings of a requirement.

    - ``ScopeRequirement``: as is;
    - ``"a b"``: all of the space-separated names;
    - ``["a", "b"]``: all of them;
    - ``[["a"], ["b", "c"]]``: any one of the inner sets (alternatives).
    """
    if isinstance(value, ScopeRequirement):
        return value
    if isinstance(value, str):
        return ScopeRequirement.all_of(*value.split())
    if isinstance(value, Iterable):
        items = list(value)
        if items and all(isinstance(item, str) for item in items):
            return ScopeRequirement.all_of(*items)
        if items and all(isinstance(item, (list, tuple, set, frozenset)) for item in items):
            return ScopeRequirement.any_of(*items)
    raise ImproperlyConfigured(
        f"Cannot read a scope requirement from {value!r}: use a string of space-separated scopes, "
        "a list of scope names, a list of lists (alternatives) or a ScopeRequirement."
    )
