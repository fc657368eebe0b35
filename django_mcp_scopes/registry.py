"""The scope registry: what is active, what a set of scopes implies, what the baseline is.

Each process keeps an immutable snapshot of the ``Scope`` table in memory. The shared cache
(``MCP_SCOPES["CACHE_ALIAS"]``) holds a version token and the snapshot for that version. A process
trusts its snapshot for ``REGISTRY_REFRESH_SECONDS``; after that it reads the version token (one
cache get, no database query) and, when it changed, takes the new snapshot from the cache, or
builds it from the database once and shares it. Any change to a scope bumps the version, so every
process sharing the cache sees it within ``REGISTRY_REFRESH_SECONDS``.

A thread that changed scopes inside a transaction that has not committed yet sees its own
changes through a private snapshot (kept in a thread-local, dropped when the transaction ends
or the scopes change again); no other thread or process ever sees uncommitted scopes, and a
rolled-back change never outlives its transaction.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router, transaction

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.validators import is_valid_scope_name

logger = logging.getLogger("django_mcp_scopes")

# Part of the cache key of a shared snapshot: bump it when Snapshot changes shape, so a process
# running new code never unpickles a snapshot written by old code during a rolling deploy.
SNAPSHOT_FORMAT = 2


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
    active: tuple[str, ...] = ()
    baseline: tuple[str, ...] = ()

    @classmethod
    def build(cls, version: str, rows: Iterable[Mapping[str, Any]], edges: Iterable[tuple[str, str]]) -> Snapshot:
        scopes = {}
        for row in rows:
            if not row["is_active"]:
                continue
            if not is_valid_scope_name(row["name"]):
                # Written past the model's validators (bulk_create, update(), raw SQL, loaddata):
                # such a name could break a challenge header or the metadata, so it grants nothing.
                logger.warning("Scope %r is not a valid scope name and is treated as inactive.", row["name"])
                continue
            scopes[row["name"]] = ScopeInfo(row["name"], row["description"], row["is_advertised"])
        # An inactive scope is cut out of the graph: it grants nothing and passes nothing on.
        children: dict[str, set[str]] = {name: set() for name in scopes}
        for parent, child in edges:
            if parent in scopes and child in scopes:
                children[parent].add(child)
        closures = _closures(children)
        # An implication whose child already grants its parent closes a cycle (loaddata, raw SQL,
        # two admins each adding one half at once): it would let a narrower scope grant a
        # broader one, so it grants nothing.
        cyclic = [(parent, child) for parent, kids in children.items() for child in kids if parent in closures[child]]
        if cyclic:
            logger.error(
                "Scope implications form a cycle and are ignored until it is removed: %s",
                ", ".join(f"{parent} -> {child}" for parent, child in sorted(cyclic)),
            )
            for parent, child in cyclic:
                children[parent].discard(child)
            closures = _closures(children)
        implied_by: dict[str, set[str]] = {name: set() for name in scopes}
        for name, closure in closures.items():
            for implied in closure - {name}:
                implied_by[implied].add(name)
        return cls(
            version=version,
            scopes=scopes,
            closures=closures,
            implied_by={name: frozenset(parents) for name, parents in implied_by.items()},
            active=tuple(sorted(scopes)),
            baseline=tuple(sorted(name for name, info in scopes.items() if info.is_advertised)),
        )


def _closures(children: Mapping[str, set[str]]) -> dict[str, frozenset[str]]:
    """Each name with everything it reaches (itself included); cycle-safe."""
    closures: dict[str, frozenset[str]] = {}
    for name in children:
        seen = {name}
        stack = [name]
        while stack:
            for child in children[stack.pop()]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        closures[name] = frozenset(seen)
    return closures


class ScopeRegistry:
    """Process-wide, thread-safe view of the scopes, kept fresh through the cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        # Bumped on every local change, so a load that raced with it is not kept as current.
        self._generation = 0
        # Per thread: "changed scopes in the open transaction" and the private snapshot.
        self._local = threading.local()

    @staticmethod
    def _db() -> str:
        """The database alias the Scope table is written to (transactions are tracked there)."""
        from django_mcp_scopes.models import Scope

        return router.db_for_write(Scope)

    def _private_snapshot(self) -> Snapshot | None:
        """This thread's own view while it has uncommitted scope changes; None otherwise."""
        if not getattr(self._local, "dirty", False):
            return None
        if not connections[self._db()].in_atomic_block:
            # The transaction ended (committed or rolled back): back to the shared snapshot.
            self._local.dirty = False
            self._local.snapshot = None
            return None
        private: Snapshot | None = getattr(self._local, "snapshot", None)
        if private is None:
            private = self._from_db("private")
            self._local.snapshot = private
        return private

    # cache plumbing -------------------------------------------------------------------------
    @property
    def _cache(self) -> Any:
        return caches[mcp_scopes_settings.CACHE_ALIAS]

    def _key(self, suffix: str) -> str:
        return f"{mcp_scopes_settings.CACHE_KEY_PREFIX}:registry:{suffix}"

    def _from_db(self, version: str) -> Snapshot:
        from django_mcp_scopes.models import Scope

        rows = list(Scope.objects.values("name", "description", "is_active", "is_advertised"))
        edges = list(Scope.implies.through.objects.values_list("from_scope__name", "to_scope__name"))
        return Snapshot.build(version, rows, edges)

    def _load(self) -> Snapshot:
        try:
            return self._load_through_cache()
        except (ImproperlyConfigured, DatabaseError):
            raise
        except Exception:
            # The cache is unreachable: answer from the database (always current) rather than fail
            # every request; the snapshot is trusted for REGISTRY_REFRESH_SECONDS as usual.
            logger.warning("Scope registry cache unavailable; reading scopes from the database.", exc_info=True)
            return self._from_db(f"uncached-{uuid.uuid4().hex}")

    def _load_through_cache(self) -> Snapshot:
        cache = self._cache
        version = cache.get(self._key("version"))
        if version is None:
            version = uuid.uuid4().hex
            if not cache.add(self._key("version"), version, None):
                version = cache.get(self._key("version")) or version
        current = self._snapshot
        if current is not None and current.version == version:
            return current
        snapshot_key = self._key(f"snapshot:{SNAPSHOT_FORMAT}:{version}")
        snapshot = cache.get(snapshot_key)
        if isinstance(snapshot, Snapshot):
            return snapshot
        snapshot = self._from_db(version)
        # Only reached by a thread without uncommitted scope changes: what it read is committed.
        cache.set(snapshot_key, snapshot, 24 * 3600)
        return snapshot

    def snapshot(self) -> Snapshot:
        private = self._private_snapshot()
        if private is not None:
            return private
        now = time.monotonic()
        snapshot = self._snapshot
        if snapshot is not None and now - self._checked_at < mcp_scopes_settings.REGISTRY_REFRESH_SECONDS:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or time.monotonic() - self._checked_at >= mcp_scopes_settings.REGISTRY_REFRESH_SECONDS:
                generation = self._generation
                snapshot = self._load()
                if generation == self._generation:
                    self._snapshot = snapshot
                    self._checked_at = time.monotonic()
            return snapshot

    async def asnapshot(self) -> Snapshot:
        """``snapshot()`` for async code: warm, no thread hop; cold, the load runs in a sync thread."""
        snapshot = self._snapshot
        if (
            snapshot is not None
            and not getattr(self._local, "dirty", False)
            and time.monotonic() - self._checked_at < mcp_scopes_settings.REGISTRY_REFRESH_SECONDS
        ):
            return snapshot
        return await sync_to_async(self.snapshot, thread_sensitive=True)()

    def invalidate(self) -> None:
        """Announce a change: this process at once, every process sharing the cache soon after.

        Call it after any write that bypasses the model signals (``QuerySet.update()``,
        ``bulk_create()``, raw SQL).
        """
        using = self._db()
        if connections[using].in_atomic_block:
            # Until the transaction commits, this thread sees its change privately; bump now
            # (other processes rebuild from committed rows, which is harmless) and once more when
            # the change is visible to other connections.
            self._local.dirty = True
            self._local.snapshot = None
            self._bump()
            transaction.on_commit(self._bump, using=using)
        else:
            self._bump()

    def _bump(self) -> None:
        self._generation += 1
        self._cache.set(self._key("version"), uuid.uuid4().hex, None)
        self._generation += 1
        self._snapshot = None
        self._checked_at = 0.0

    def reset_local(self) -> None:
        """Forget this process's snapshot (tests, settings changes)."""
        with self._lock:
            self._snapshot = None
            self._checked_at = 0.0
        self._local.dirty = False
        self._local.snapshot = None

    # questions ------------------------------------------------------------------------------
    def is_active(self, name: str) -> bool:
        return name in self.snapshot().scopes

    def active_names(self) -> list[str]:
        return list(self.snapshot().active)

    def describe(self, name: str) -> str | None:
        info = self.snapshot().scopes.get(name)
        return info.description if info else None

    def descriptions(self) -> dict[str, str]:
        return {name: info.description or name for name, info in sorted(self.snapshot().scopes.items())}

    def expand(self, names: Iterable[str]) -> frozenset[str]:
        """Effective scopes: everything ``names`` grant through the hierarchy, active scopes only."""
        return _expand(self.snapshot(), names)

    def implied_by(self, name: str) -> frozenset[str]:
        """Active scopes that grant ``name`` (not counting itself)."""
        return self.snapshot().implied_by.get(name, frozenset())

    def baseline(self) -> list[str]:
        """The advertised active scopes, sorted: scopes_supported and the 401 challenge's scope."""
        return list(self.snapshot().baseline)

    def satisfies(self, granted: Iterable[str], required: Iterable[str]) -> bool:
        """Whether the granted names, through the hierarchy, cover every required name."""
        required = set(required)
        return required <= self.expand(granted)

    # the same questions from async code -------------------------------------------------------
    async def ais_active(self, name: str) -> bool:
        return name in (await self.asnapshot()).scopes

    async def aexpand(self, names: Iterable[str]) -> frozenset[str]:
        return _expand(await self.asnapshot(), names)

    async def abaseline(self) -> list[str]:
        return list((await self.asnapshot()).baseline)

    async def asatisfies(self, granted: Iterable[str], required: Iterable[str]) -> bool:
        return set(required) <= _expand(await self.asnapshot(), granted)


def _expand(snapshot: Snapshot, names: Iterable[str]) -> frozenset[str]:
    effective: set[str] = set()
    for name in names:
        closure = snapshot.closures.get(name)
        if closure:
            effective |= closure
    return frozenset(effective)


scope_registry = ScopeRegistry()
