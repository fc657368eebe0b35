"""Epochs the database owns: why a cache that fails, or returns with old data, changes no decision.

Two counters live in one database row (``models.Epochs``):

- ``scopes`` moves with every committed change to the ``Scope`` table, in the same transaction as
  the change. Each process labels its in-memory scope snapshot with the value it was built under
  and rebuilds it from the database when the value moved. The cache plays no part, so no cache
  outage, flush or restart can undo a committed change, and a change that rolls back moves nothing.
- ``tokens`` moves when a revoked or changed token could not be dropped from the shared cache (the
  cache was down or stalled). Every token-cache entry carries the value it was written under; an
  entry from an older epoch is worthless, so a cache that returns with its old data cannot bring a
  revoked token back.

Each process reads the row at most once every ``REGISTRY_REFRESH_SECONDS`` (one primary-key query)
and trusts it in between; that is the documented propagation window. When the row cannot be read
and the last reading is older than the window, ``current()`` raises ``DatabaseError``: callers
answer 503, never a decision from stale data.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import F

from django_mcp_scopes.conf import mcp_scopes_settings

logger = logging.getLogger("django_mcp_scopes")

_ROW = 1


class Epoch(NamedTuple):
    scopes: int
    tokens: int


class EpochWatch:
    """This process's reading of the ``Epochs`` row, refreshed every ``REGISTRY_REFRESH_SECONDS``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Epoch | None = None
        self._read_at = 0.0
        # Per thread: "moved an epoch inside a transaction that has not ended yet".
        self._local = threading.local()

    @staticmethod
    def _db() -> str:
        from django_mcp_scopes.models import Epochs

        return router.db_for_write(Epochs)

    def _read(self) -> Epoch:
        from django_mcp_scopes.models import Epochs

        row = Epochs.objects.using(self._db()).filter(pk=_ROW).values_list("scopes", "tokens").first()
        return Epoch(*row) if row else Epoch(0, 0)

    def _has_private_changes(self) -> bool:
        if not getattr(self._local, "pending", False):
            return False
        connection = connections[self._db()]
        # Still the transaction that moved the epoch: its on_commit hook is queued. A rollback
        # discards the hook; a later transaction of this thread must not read the stale value.
        marker = getattr(self._local, "marker", None)
        if connection.in_atomic_block and any(entry[1] is marker for entry in connection.run_on_commit):
            return True
        self._local.pending = False
        self._local.value = None
        return False

    def current(self) -> Epoch:
        """The epochs as committed at most ``REGISTRY_REFRESH_SECONDS`` ago; ``DatabaseError`` if unknown."""
        if self._has_private_changes():
            # This thread's own uncommitted move: it sees it, nobody else does.
            private: Epoch | None = getattr(self._local, "value", None)
            if private is None:
                private = self._local.value = self._read()
            return private
        value = self._value
        if value is not None and time.monotonic() - self._read_at < mcp_scopes_settings.REGISTRY_REFRESH_SECONDS:
            return value
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at >= mcp_scopes_settings.REGISTRY_REFRESH_SECONDS:
                read_at = time.monotonic()
                self._value = self._read()
                self._read_at = read_at
            return self._value

    def peek(self) -> Epoch | None:
        """The current reading when it needs no query, else None (for async fast paths)."""
        value = self._value
        fresh = value is not None and time.monotonic() - self._read_at < mcp_scopes_settings.REGISTRY_REFRESH_SECONDS
        return value if fresh and not getattr(self._local, "pending", False) else None

    def bump_scopes(self) -> None:
        """Move the scope version, inside the caller's transaction when there is one."""
        self._bump("scopes")

    def bump_tokens(self) -> None:
        """Make every token-cache entry written so far worthless, in every process."""
        self._bump("tokens")

    def _bump(self, field: str) -> None:
        from django_mcp_scopes.models import Epochs

        using = self._db()
        with transaction.atomic(using=using):
            manager = Epochs.objects.using(using)
            if not manager.filter(pk=_ROW).update(**{field: F(field) + 1}):
                try:
                    with transaction.atomic(using=using):
                        manager.create(pk=_ROW, **{field: 1})
                except IntegrityError:  # created concurrently
                    manager.filter(pk=_ROW).update(**{field: F(field) + 1})
        self._local.value = None
        if connections[using].in_atomic_block:

            def forget_on_commit() -> None:
                self.forget()

            self._local.pending = True
            self._local.marker = forget_on_commit
            transaction.on_commit(forget_on_commit, using=using)
        else:
            self.forget()

    def forget(self) -> None:
        """Read the row again on next use (after a commit, a local change, in tests)."""
        with self._lock:
            self._value = None
            self._read_at = 0.0
        # This thread's private reading too: after a commit it is the shared one again, and a
        # test transaction rolled back by the test runner must not leave it to the next test.
        self._local.pending = False
        self._local.value = None


epochs = EpochWatch()


def bump_tokens_or_log() -> bool:
    """``bump_tokens()`` for paths that must not fail (revocation): False, and a log line, if it did."""
    try:
        epochs.bump_tokens()
    except DatabaseError:
        logger.critical(
            "Could not record a failed token-cache drop in the database; cached entries of that token "
            "may be accepted for up to TOKEN_CACHE_SECONDS.",
            exc_info=True,
        )
        return False
    return True
