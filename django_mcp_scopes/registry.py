"""The scope registry: what is active, what a set of scopes implies, what the baseline is.

Each process keeps an immutable snapshot of the ``Scope`` table in memory, labelled with the
database-owned scope version it was built under (``django_mcp_scopes.epochs``). A process trusts
its snapshot for ``REGISTRY_REFRESH_SECONDS``; after that it reads the version (one primary-key
query) and, when it moved, rebuilds the snapshot from the database (two queries). Every change to
a scope moves the version in the same transaction, so every process sees a committed change
within ``REGISTRY_REFRESH_SECONDS`` and no cache, whatever state it is in, can bring back what the
database no longer says.

A thread that changed scopes inside a transaction that has not committed yet sees its own
changes through a private snapshot (kept in a thread-local, dropped when the transaction ends
or the scopes change again); no other thread or process ever sees uncommitted scopes, and a
rolled-back change never outlives its transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections, router, transaction

from django_mcp_scopes.epochs import epochs
from django_mcp_scopes.validators import is_valid_scope_name

logger = logging.getLogger("django_mcp_scopes")


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
    """Process-wide, thread-safe view of the scopes, kept fresh through the database-owned version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        # The database-owned scope version the shared snapshot was built under.
        self._version: int | None = None
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
        version = epochs.current().scopes  # this thread's own reading, its uncommitted moves included
        private: Snapshot | None = getattr(self._local, "snapshot", None)
        if private is None or private.version != f"private-{version}":
            private = self._from_db(f"private-{version}")
            self._local.snapshot = private
        return private

    def _from_db(self, version: str) -> Snapshot:
        from django_mcp_scopes.models import Implication, Scope

        rows = list(Scope.objects.values("name", "description", "is_active", "is_advertised"))
        edges = list(Implication.objects.values_list("from_scope__name", "to_scope__name"))
        return Snapshot.build(version, rows, edges)

    def snapshot(self) -> Snapshot:
        private = self._private_snapshot()
        if private is not None:
            return private
        # The version first, then the rows: a change committed in between makes the snapshot
        # newer than its label (rebuilt once more at the next check), never older.
        version = epochs.current().scopes
        snapshot = self._snapshot
        if snapshot is not None and self._version == version:
            return snapshot
        with self._lock:
            if self._snapshot is not None and self._version == version:
                return self._snapshot
            generation = self._generation
            snapshot = self._from_db(str(version))
            if generation == self._generation:
                self._snapshot = snapshot
                self._version = version
            return snapshot

    def is_current(self, epoch: Any) -> bool:
        """Whether the shared snapshot was built under ``epoch`` (an ``epochs.peek()`` reading) and
        this thread has no private one: then ``snapshot()`` needs no query."""
        if getattr(self._local, "dirty", False):
            if connections[self._db()].in_atomic_block:
                return False
            self._local.dirty = False  # that transaction ended (as _private_snapshot() finds)
            self._local.snapshot = None
        return self._snapshot is not None and epoch.scopes == self._version

    async def asnapshot(self) -> Snapshot:
        """``snapshot()`` for async code: warm, no thread hop; cold, the load runs in a sync thread."""
        snapshot = self._snapshot
        epoch = epochs.peek()
        if (
            snapshot is not None
            and epoch is not None
            and epoch.scopes == self._version
            and not getattr(self._local, "dirty", False)
        ):
            return snapshot
        return await sync_to_async(self.snapshot, thread_sensitive=True)()

    def invalidate(self) -> None:
        """Announce a change: this process at once, every other process within the refresh window.

        Moves the database-owned scope version inside the caller's transaction (or in its own), so
        the change and its announcement commit together or not at all. ``Scope.objects`` querysets
        call it for ``update()``, ``bulk_create()`` and ``bulk_update()``, and the model signals for
        saves, deletes and implication changes; call it yourself after raw SQL, in the same
        transaction. Raises ``DatabaseError`` when the version cannot be written.
        """
        using = self._db()
        epochs.bump_scopes()
        if connections[using].in_atomic_block:
            # Until the transaction commits, this thread sees its change privately.
            self._local.dirty = True
            self._local.snapshot = None
            transaction.on_commit(self._forget_shared, using=using)
        self._forget_shared()

    def _forget_shared(self) -> None:
        self._generation += 1
        with self._lock:
            self._snapshot = None
            self._version = None

    def reset_local(self) -> None:
        """Forget this process's snapshot (tests, settings changes)."""
        with self._lock:
            self._snapshot = None
            self._version = None
        self._local.dirty = False
        self._local.snapshot = None
        epochs.forget()

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
