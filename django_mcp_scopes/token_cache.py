"""The validated-token cache: what a token proved, kept briefly, dropped the moment it is revoked.

Two levels:

- the shared cache (``MCP_SCOPES["CACHE_ALIAS"]``) holds plain data (ids, scope names, expiry,
  resource binding; never model instances, never the token) under ``sha256(token)``, for the
  earlier of the token's expiry and ``TOKEN_CACHE_SECONDS``;
- each process keeps a small in-memory copy in front of it for ``TOKEN_LOCAL_CACHE_SECONDS``
  (a bounded LRU), which saves a cache round trip on every request.

When django-oauth-toolkit deletes an access token (revocation endpoint, admin action, refresh-token
rotation, ``cleartokens``) or saves a changed one, the shared entry is dropped and, once the
transaction commits, replaced by a short-lived tombstone so a racing request cannot put it back.
The process that made the change forgets its local copy at once; other processes refuse the token
at the latest ``TOKEN_LOCAL_CACHE_SECONDS`` later. A bulk ``QuerySet.update()`` sends no signal and
is seen only when the entry expires (``TOKEN_CACHE_SECONDS``). Saving a user as inactive
forgets their tokens' entries the same way (they are then refused by the database check).

Faults: every entry's key holds the database-owned token epoch it was written under
(``django_mcp_scopes.epochs``). A drop that the cache does not confirm (down, stalled, or skipped
because it just failed) moves that epoch, in the revoking transaction when there is one, so every
entry written before is worthless in every process within ``REGISTRY_REFRESH_SECONDS``: a cache
that comes back with its old data cannot bring a revoked token back. After a failed or timed-out
call the process leaves the cache alone for ``CACHE_RETRY_SECONDS`` and validates against the
database, so a stalled cache costs at most one socket timeout per process per interval.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from oauth2_provider.settings import oauth2_settings

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.epochs import bump_tokens_or_log, epochs

# Marker stored for a token known to be unusable (revoked, deleted, inactive at the introspection
# endpoint). A lookup that finds it refuses the token without asking the database.
REVOKED = "revoked"
_logger = logging.getLogger("django_mcp_scopes.security")
_LOCAL_MAX_ENTRIES = 4096


def token_checksum(token: str) -> str:
    """sha256 hex of the token: the cache key, the same digest django-oauth-toolkit stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Config:
    cache_alias: str
    prefix: str
    shared_seconds: float
    local_seconds: float
    retry_seconds: float


class TokenCache:
    """Thread-safe two-level cache of validated token facts (plain dicts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._config: _Config | None = None
        # monotonic time before which this process does not call the shared cache (it just failed).
        self._unavailable_until = 0.0

    @property
    def config(self) -> _Config:
        # Settings are read once, not on every request; setting_changed resets this.
        config = self._config
        if config is None:
            config = _Config(
                cache_alias=mcp_scopes_settings.CACHE_ALIAS,
                prefix=mcp_scopes_settings.CACHE_KEY_PREFIX,
                shared_seconds=mcp_scopes_settings.TOKEN_CACHE_SECONDS,
                local_seconds=mcp_scopes_settings.TOKEN_LOCAL_CACHE_SECONDS,
                retry_seconds=mcp_scopes_settings.CACHE_RETRY_SECONDS,
            )
            self._config = config
        return config

    def _key(self, namespace: str, checksum: str, epoch: int | None = None) -> str:
        """The entry's key under ``epoch`` (default: the current token epoch)."""
        if epoch is None:
            epoch = epochs.current().tokens
        return f"{self.config.prefix}:{namespace}:{epoch}:{checksum}"

    def _available(self) -> bool:
        return time.monotonic() >= self._unavailable_until

    def _failed(self, operation: str) -> None:
        self._unavailable_until = time.monotonic() + self.config.retry_seconds
        _logger.exception("mcp_token_cache_unavailable operation=%s", operation)

    @staticmethod
    def _epoch() -> int | None:
        try:
            return epochs.current().tokens
        except DatabaseError:
            return None

    def get(self, checksum: str, namespace: str = "token") -> Any:
        """The cached facts, ``REVOKED``, or None when nothing usable is cached."""
        epoch = self._epoch()
        if epoch is None:
            return None  # the epoch is unknown: nothing cached can be trusted
        key = self._key(namespace, checksum, epoch)
        now = time.monotonic()
        entry = self._local.get(key)
        if entry is not None:
            if entry[0] > now:
                return entry[1]
            with self._lock:
                self._local.pop(key, None)
        if not self._available():
            return None
        try:
            value = caches[self.config.cache_alias].get(key)
        except Exception:
            # The shared cache is down: validate against the source of truth instead.
            self._failed("get")
            return None
        if value is not None:
            self._remember(key, value, now)
        return value

    def peek(self, checksum: str, epoch: int, namespace: str = "token") -> Any:
        """This process's in-memory entry under token epoch ``epoch``, or None: never a cache round trip."""
        entry = self._local.get(self._key(namespace, checksum, epoch))
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    def put(self, checksum: str, value: Any, seconds: float, namespace: str = "token") -> None:
        """Cache ``value`` for ``seconds`` (already capped by the caller at the token's expiry).

        ``add`` rather than ``set``: a tombstone written by a concurrent revocation wins.
        """
        if seconds <= 0 or not self._available():
            return
        epoch = self._epoch()
        if epoch is None:
            return
        key = self._key(namespace, checksum, epoch)
        try:
            added = caches[self.config.cache_alias].add(key, value, seconds)
        except Exception:
            self._failed("add")
            return
        if added:
            # Not when the add lost: the entry there may be a tombstone, and a local copy of
            # what this request read would outlive the revocation in this process.
            self._remember(key, value, time.monotonic(), seconds)

    def _remember(self, key: str, value: Any, now: float, seconds: float | None = None) -> None:
        local_seconds = self.config.local_seconds
        if seconds is not None:
            local_seconds = min(local_seconds, seconds)
        if local_seconds <= 0:
            return
        with self._lock:
            self._local[key] = (now + local_seconds, value)
            self._local.move_to_end(key)
            while len(self._local) > _LOCAL_MAX_ENTRIES:
                self._local.popitem(last=False)

    def drop(self, checksum: str, *, tombstone: bool) -> None:
        """Forget a token everywhere; with ``tombstone``, also refuse it for ``TOKEN_CACHE_SECONDS``.

        When the shared cache does not confirm it, the token epoch moves instead (see above).
        """
        config = self.config
        suffix = f":{checksum}"
        with self._lock:
            for key in [key for key in self._local if key.endswith(suffix)]:
                del self._local[key]
        epoch = self._epoch()
        if epoch is not None and self._available():
            keys = [self._key(namespace, checksum, epoch) for namespace in ("token", "introspection")]
            try:
                cache = caches[config.cache_alias]
                if tombstone and config.shared_seconds > 0:
                    cache.set_many(dict.fromkeys(keys, REVOKED), config.shared_seconds)
                else:
                    cache.delete_many(keys)
                return
            except Exception:
                self._failed("drop")
        # Never break django-oauth-toolkit's revocation: make every older entry worthless instead.
        bump_tokens_or_log()

    def clear_local(self) -> None:
        """Forget this process's copies and settings (tests, ``setting_changed``)."""
        with self._lock:
            self._local.clear()
            self._config = None
            self._unavailable_until = 0.0


token_cache = TokenCache()


def _access_token_changed(instance: Any, *, deleted: bool) -> None:
    checksum = getattr(instance, "token_checksum", "")
    if not checksum:
        return
    # Drop now (this process and the shared cache), and once the change is committed put a
    # tombstone (deleted) or drop again (changed), so a request that read the old row in between
    # cannot leave a stale entry behind. A rolled-back delete leaves no tombstone.
    token_cache.drop(checksum, tombstone=False)
    transaction.on_commit(lambda: token_cache.drop(checksum, tombstone=deleted))


@receiver(post_delete, sender=oauth2_settings.ACCESS_TOKEN_MODEL, dispatch_uid="mcp_scopes_access_token_deleted")
def _access_token_deleted(*, instance: Any, **kwargs: Any) -> None:
    _access_token_changed(instance, deleted=True)


@receiver(post_save, sender=oauth2_settings.ACCESS_TOKEN_MODEL, dispatch_uid="mcp_scopes_access_token_saved")
def _access_token_saved(*, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created:
        _access_token_changed(instance, deleted=False)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="mcp_scopes_user_saved")
def _user_saved(*, instance: Any, created: bool, **kwargs: Any) -> None:
    # A deactivated user's tokens are refused from the next request on, not when their cached
    # entries expire: forget them, so they are validated again (and refused) by the database.
    if created or getattr(instance, "is_active", True):
        return
    from oauth2_provider.models import get_access_token_model

    checksums = list(
        get_access_token_model()
        .objects.filter(user_id=instance.pk)
        .exclude(token_checksum="")
        .values_list("token_checksum", flat=True)
    )

    def forget() -> None:
        for checksum in checksums:
            token_cache.drop(checksum, tombstone=False)

    forget()
    if checksums:
        transaction.on_commit(forget)  # again, after a request that read the old row in between
