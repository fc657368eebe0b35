"""The scope registry: what is active, what a set of scopes implies, what the baseline is.

Each process keeps an immutable snapshot of the ``Scope`` table in memory. The shared cache
(``MCP_SCOPES["CACHE_ALIAS"]``) holds a version token and the snapshot for that version. A process
trusts its snapshot for ``REGISTRY_REFRESH_SECONDS``; after that it reads the version token (one
cache get, no database query) and, when it changed, takes the new snapshot from the cache, or
builds it from the database once and shares it. Any change to a scope bumps the version, so every
process sharing the cache sees it within ``REGISTRY_REFRESH_SECONDS``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import caches
from django.db import connection, transaction

from django_mcp_scopes.conf import mcp_scopes_settings


@dataclass(frozen=True)
class ScopeInfo:
    name: str
    description: str
    is_advertised: bool


@dataclass(frozen=True)
class Snapshot:
    """Active scopes and the closure of each (itself plus everything it implies, active only)."""

    version: str
    scopes: dict[str, ScopeInfo] = field(default_factory=dict)
    closures: dict[str, frozenset[str]] = field(default_factory=dict)
    implied_by: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, version: str, rows: Iterable[dict[str, Any]], edges: Iterable[tuple[str, str]]) -> Snapshot:
        scopes = {
            row["name"]: ScopeInfo(row["name"], row["description"], row["is_advertised"])
            for row in rows
            if row["is_active"]
        }
        # An inactive scope is cut out of the graph: it grants nothing and passes nothing on.
        children: dict[str, set[str]] = {name: set() for name in scopes}
        for parent, child in edges:
            if parent in scopes and child in scopes:
                children[parent].add(child)
        closures: dict[str, frozenset[str]] = {}
        for name in scopes:
            seen = {name}
            stack = [name]
            while stack:
                for child in children[stack.pop()]:
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
            closures[name] = frozenset(seen)
        implied_by: dict[str, set[str]] = {name: set() for name in scopes}
        for name, closure in closures.items():
            for implied in closure - {name}:
                implied_by[implied].add(name)
        return cls(
            version=version,
            scopes=scopes,
            closures=closures,
            implied_by={name: frozenset(parents) for name, parents in implied_by.items()},
        )


class ScopeRegistry:
    """Process-wide, thread-safe view of the scopes, kept fresh through the cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0

    # cache plumbing -------------------------------------------------------------------------
    @property
    def _cache(self) -> Any:
        return caches[mcp_scopes_settings.CACHE_ALIAS]

    def _key(self, suffix: str) -> str:
        return f"{mcp_scopes_settings.CACHE_KEY_PREFIX}:registry:{suffix}"

    def _load(self) -> Snapshot:
        from django_mcp_scopes.models import Scope

        cache = self._cache
        version = cache.get(self._key("version"))
        if version is None:
            version = uuid.uuid4().hex
            if not cache.add(self._key("version"), version, None):
                version = cache.get(self._key("version")) or version
        current = self._snapshot
        if current is not None and current.version == version:
            return current
        snapshot = cache.get(self._key(f"snapshot:{version}"))
        if isinstance(snapshot, Snapshot):
            return snapshot
        rows = list(Scope.objects.values("name", "description", "is_active", "is_advertised"))
        edges = list(Scope.implies.through.objects.values_list("from_scope__name", "to_scope__name"))
        snapshot = Snapshot.build(version, rows, edges)
        if not connection.in_atomic_block:
            # A snapshot read inside a transaction may never be committed: keep it to ourselves.
            cache.set(self._key(f"snapshot:{version}"), snapshot, 24 * 3600)
        return snapshot

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        snapshot = self._snapshot
        if snapshot is not None and now - self._checked_at < mcp_scopes_settings.REGISTRY_REFRESH_SECONDS:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or time.monotonic() - self._checked_at >= mcp_scopes_settings.REGISTRY_REFRESH_SECONDS:
                snapshot = self._load()
                self._snapshot = snapshot
                self._checked_at = time.monotonic()
            return snapshot

    def invalidate(self) -> None:
        """Announce a change: this process at once, every process sharing the cache soon after."""
        self._bump()
        if connection.in_atomic_block:
            # Bump again once the change is visible to other connections.
            transaction.on_commit(self._bump)

    def _bump(self) -> None:
        self._cache.set(self._key("version"), uuid.uuid4().hex, None)
        self.reset_local()

    def reset_local(self) -> None:
        """Forget this process's snapshot (tests, settings changes)."""
        with self._lock:
            self._snapshot = None
            self._checked_at = 0.0

    # questions ------------------------------------------------------------------------------
    def is_active(self, name: str) -> bool:
        return name in self.snapshot().scopes

    def active_names(self) -> list[str]:
        return sorted(self.snapshot().scopes)

    def describe(self, name: str) -> str | None:
        info = self.snapshot().scopes.get(name)
        return info.description if info else None

    def descriptions(self) -> dict[str, str]:
        return {name: info.description or name for name, info in sorted(self.snapshot().scopes.items())}

    def expand(self, names: Iterable[str]) -> frozenset[str]:
        """Effective scopes: everything ``names`` grant through the hierarchy, active scopes only."""
        closures = self.snapshot().closures
        effective: set[str] = set()
        for name in names:
            closure = closures.get(name)
            if closure:
                effective |= closure
        return frozenset(effective)

    def implied_by(self, name: str) -> frozenset[str]:
        """Active scopes that grant ``name`` (not counting itself)."""
        return self.snapshot().implied_by.get(name, frozenset())

    def baseline(self) -> list[str]:
        """The advertised active scopes, sorted: scopes_supported and the 401 challenge's scope."""
        return sorted(name for name, info in self.snapshot().scopes.items() if info.is_advertised)

    def satisfies(self, granted: Iterable[str], required: Iterable[str]) -> bool:
        """Whether the granted names, through the hierarchy, cover every required name."""
        required = set(required)
        return required <= self.expand(granted)


scope_registry = ScopeRegistry()
