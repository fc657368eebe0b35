"""The record of recent refusals: who was refused what, and why, for the admin and ``manage.py``.

Receivers of ``token_rejected``, ``scope_denied`` and ``rate_limited`` (``django_mcp_scopes.signals``)
put one small record per refusal in a bounded in-process queue; nothing touches the database on
the request's way out. The queue is written in one batch when the request has finished
(``request_finished``: after the WSGI server has sent the response, or after the ASGI body went
out), at most once per ``FLUSH_INTERVAL_SECONDS`` per process unless ``FLUSH_BATCH`` refusals
wait, so a flood of refused requests costs one write a second, not one per request; then the
table is pruned to ``MCP_SCOPES["REFUSAL_LOG_MAX"]`` rows. A write that fails (the
table missing, a locked database) is logged and dropped: a refusal is never turned into an error,
and no request ever waits for or fails because of this record.

Stored: time, kind, reason code, operation, endpoint (the matched URL pattern, the path only when
none matched), client id, scopes missing. Never a token, a
token hash, a user or an address. ``MCP_SCOPES["REFUSAL_LOG"] = False`` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from django.core.signals import request_finished
from django.db import router, transaction
from django.dispatch import receiver
from django.utils import timezone

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.signals import rate_limited, request_operation, scope_denied, token_rejected

logger = logging.getLogger("django_mcp_scopes.refusals")

# At most this many refusals wait for a write per process; more are counted and dropped (a flood
# of refused requests must not grow memory).
QUEUE_LIMIT = 1000

# A finished request writes the waiting refusals only when this long has passed since the last
# write, or when this many wait: refusals are recorded within about a second of the next request.
FLUSH_INTERVAL_SECONDS = 1.0
FLUSH_BATCH = 100

_queue: deque[dict[str, Any]] = deque()
_lock = threading.Lock()
_dropped = 0
_last_flush = 0.0

_TOKEN_ERRORS = {"invalid_token": "invalid_token", "invalid_request": "invalid_request"}


def _clip(value: Any, length: int) -> str:
    return str(value or "")[:length]


def _enqueue(record: dict[str, Any]) -> None:
    global _dropped
    with _lock:
        if len(_queue) >= QUEUE_LIMIT:
            _dropped += 1
            return
        _queue.append(record)


def _record(
    request: Any, *, kind: str, reason: str, operation: str | None, client_id: Any, missing: Iterable[str]
) -> None:
    _enqueue(
        {
            "created_at": timezone.now(),
            "kind": kind,
            "reason": _clip(reason, 64),
            "operation": _clip(operation, 255),
            "endpoint": _clip(_endpoint(request), 255),
            "client_id": _clip(client_id, 255),
            "missing_scopes": _clip(" ".join(sorted(missing)), 1000),
        }
    )


def _endpoint(request: Any) -> str:
    """The matched URL pattern (``/api/users/<int:pk>``) rather than the path, which may carry
    personal data; the path only when nothing matched."""
    route = getattr(getattr(request, "resolver_match", None), "route", None)
    return f"/{route}" if route is not None else str(getattr(request, "path", ""))


def _enabled() -> bool:
    try:
        return mcp_scopes_settings.REFUSAL_LOG
    except Exception:  # a malformed setting is reported by check E001; never fail a request here
        return False


@receiver(token_rejected, dispatch_uid="mcp_scopes_refusal_token_rejected")
def _on_token_rejected(*, request: Any, reason: str, error: str | None, **kwargs: Any) -> None:
    if not _enabled():
        return
    try:
        kind = _TOKEN_ERRORS.get(error or "", "invalid_token")
        _record(request, kind=kind, reason=reason, operation=request_operation(request), client_id="", missing=())
    except Exception:
        logger.exception("A refusal could not be recorded")


@receiver(scope_denied, dispatch_uid="mcp_scopes_refusal_scope_denied")
def _on_scope_denied(
    *, request: Any, principal: Any, required_scopes: Iterable[str], operation: str | None = None, **kwargs: Any
) -> None:
    if not _enabled():
        return
    try:
        effective = frozenset(getattr(principal, "effective_scopes", None) or ())
        missing = set(required_scopes) - effective
        granted = frozenset(getattr(principal, "granted_scopes", ()) or ())
        # The token holds a scope it needs, yet it is not effective: that scope is inactive.
        kind = "inactive_scope" if missing & granted else "insufficient_scope"
        reason = "inactive_scope" if kind == "inactive_scope" else "insufficient_scope"
        client_id = getattr(principal, "client_id", None)
        _record(request, kind=kind, reason=reason, operation=operation, client_id=client_id, missing=missing)
    except Exception:
        logger.exception("A refusal could not be recorded")


@receiver(rate_limited, dispatch_uid="mcp_scopes_refusal_rate_limited")
def _on_rate_limited(*, request: Any, principal: Any, operation: str, **kwargs: Any) -> None:
    if not _enabled():
        return
    try:
        client_id = getattr(principal, "client_id", None)
        _record(
            request, kind="rate_limited", reason="rate_limited", operation=operation, client_id=client_id, missing=()
        )
    except Exception:
        logger.exception("A refusal could not be recorded")


def pending() -> int:
    """How many refusals wait for a write in this process."""
    return len(_queue)


def discard_pending() -> None:
    """Forget the refusals not written yet (tests)."""
    global _dropped, _last_flush
    with _lock:
        _queue.clear()
        _dropped = 0
        _last_flush = 0.0


def flush() -> int:
    """Write the waiting refusals in one batch and prune the table; return how many were written.

    Never raises: a database error is logged (without the records) and the batch is dropped.
    """
    global _dropped, _last_flush
    with _lock:
        batch = list(_queue)
        _queue.clear()
        dropped, _dropped = _dropped, 0
        _last_flush = time.monotonic()
    if dropped:
        logger.warning("%d refusals were not recorded: more than %d waited for a write.", dropped, QUEUE_LIMIT)
    if not batch:
        return 0
    from django_mcp_scopes.models import Refusal

    try:
        using = router.db_for_write(Refusal)
        # A savepoint: a failed write never spoils a transaction someone else left open.
        with transaction.atomic(using=using):
            Refusal.objects.using(using).bulk_create([Refusal(**record) for record in batch])
            _prune(using)
    except Exception as exc:
        logger.warning("%d refusals could not be recorded: %s: %s", len(batch), type(exc).__name__, exc)
        return 0
    return len(batch)


def _prune(using: str) -> None:
    from django_mcp_scopes.models import Refusal

    keep = mcp_scopes_settings.REFUSAL_LOG_MAX
    ordered = Refusal.objects.using(using).order_by("-created_at", "-id")
    boundary = ordered.values_list("created_at", "id")[keep : keep + 1]
    for created_at, pk in boundary:
        Refusal.objects.using(using).filter(created_at__lt=created_at).delete()
        Refusal.objects.using(using).filter(created_at=created_at, id__lte=pk).delete()


def flush_due() -> bool:
    """Whether refusals wait and a finished request should write them now (see the module docstring)."""
    return bool(_queue) and (len(_queue) >= FLUSH_BATCH or time.monotonic() - _last_flush >= FLUSH_INTERVAL_SECONDS)


@receiver(request_finished, dispatch_uid="mcp_scopes_refusal_flush")
def _flush_after_request(**kwargs: Any) -> None:
    if not flush_due():
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        flush()
    # else: on an event loop, where the ORM may not run; the next request in a thread writes them
    # (the ASGI fast lane writes them itself in a thread, django_mcp_scopes.mcp.serving).
