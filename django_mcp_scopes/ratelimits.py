"""Rate limits per token, per client and per user, counted in the shared cache.

``MCP_SCOPES["RATE_LIMITS"]`` is a list of rules; every rule that applies to a request must pass::

    "RATE_LIMITS": [
        {"rate": "600/minute", "per": "token"},
        {"rate": "5000/hour", "per": "user"},
        {"rate": "30/minute", "per": "client", "operations": ["tools/call create_entry", "POST /api/entries"]},
    ]

An operation is named ``"<JSON-RPC method>"`` or ``"<method> <tool, prompt or resource name>"``
on an MCP endpoint (``"tools/list"``, ``"tools/call create_entry"``), ``"<HTTP method> /<URL
route>"`` on a DRF view (``"POST /api/entries"``). A rule without ``operations`` counts every
request of its principal.

Counting: a sliding window approximated from two fixed windows (the current count plus the
previous one weighted by how much of it still overlaps), so a burst at a window boundary cannot
double the rate. Each request is one atomic ``cache.add`` + ``cache.incr`` on the current window's
key, so concurrent requests in any number of processes sharing the cache are counted exactly. A
refused request is counted too: hammering does not reset anything.

When the cache cannot be reached, ``RATE_LIMITS_WHEN_CACHE_DOWN`` decides: ``"allow"`` (the
default: a rate limit protects capacity, not authorization, and an outage of the cache must not
take the API down) or ``"refuse"`` (503 with ``Retry-After``). Either way the failure is logged and
the cache is left alone for ``CACHE_RETRY_SECONDS``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from django_mcp_scopes import telemetry
from django_mcp_scopes.principal import Principal

logger = logging.getLogger("django_mcp_scopes.ratelimits")

RATE_LIMITED = -32004
"""JSON-RPC error code (implementation-defined server error range) of a rate-limited MCP request."""

CACHE_DOWN_DESCRIPTION = "Rate limits cannot be counted right now; try again shortly."

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
PER = ("token", "client", "user")
WHEN_CACHE_DOWN = ("allow", "refuse")


@dataclass(frozen=True)
class Rule:
    """``limit`` requests per ``period`` seconds for each ``per`` (token, client or user)."""

    limit: int
    period: int
    per: str
    operations: frozenset[str] = frozenset()
    text: str = ""

    def applies_to(self, operations: Iterable[str]) -> bool:
        return not self.operations or not self.operations.isdisjoint(operations)


@dataclass(frozen=True)
class Refusal:
    """A rule a request exceeded, and how long until it may be tried again."""

    rule: Rule
    retry_after: int

    @property
    def description(self) -> str:
        return (
            f"Rate limit exceeded: at most {self.rule.text} per {self.rule.per}. "
            f"Try again in {self.retry_after} second{'s' if self.retry_after != 1 else ''}."
        )

    def data(self) -> dict[str, Any]:
        return {
            "error": "rate_limited",
            "error_description": self.description,
            "limit": self.rule.text,
            "per": self.rule.per,
            "retry_after": self.retry_after,
        }


class CacheUnavailable(Exception):
    """The cache could not count and ``RATE_LIMITS_WHEN_CACHE_DOWN`` is ``"refuse"``."""


def parse_rules(value: Any) -> tuple[Rule, ...]:
    """Read ``RATE_LIMITS``; raises ``ImproperlyConfigured`` naming what is wrong."""
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ImproperlyConfigured('MCP_SCOPES["RATE_LIMITS"] must be a list of rules like {"rate": "60/minute", ...}.')
    rules = []
    for index, item in enumerate(value):
        where = f'MCP_SCOPES["RATE_LIMITS"][{index}]'
        if not isinstance(item, Mapping):
            raise ImproperlyConfigured(f"{where} must be a dict with rate, per and optional operations.")
        unknown = set(item) - {"rate", "per", "operations"}
        if unknown:
            raise ImproperlyConfigured(f"{where} has unknown keys {sorted(unknown)}; use rate, per and operations.")
        limit, period = _parse_rate(item.get("rate"), where)
        per = item.get("per", "token")
        if per not in PER:
            raise ImproperlyConfigured(f"{where}['per'] must be one of {', '.join(PER)}, not {per!r}.")
        operations = item.get("operations", ())
        if isinstance(operations, str) or not all(isinstance(name, str) and name for name in operations):
            raise ImproperlyConfigured(f"{where}['operations'] must be a list of operation names.")
        rules.append(Rule(limit, period, per, frozenset(operations), str(item["rate"])))
    return tuple(rules)


def _parse_rate(rate: Any, where: str) -> tuple[int, int]:
    if isinstance(rate, str) and "/" in rate:
        count, _, unit = rate.partition("/")
        number, _, name = unit.strip().partition(" ")
        if not name:
            number, name = "1", number
        name = name.strip().removesuffix("s")
        if count.strip().isascii() and count.strip().isdigit() and number.isdigit() and name in PERIODS:
            limit, multiple = int(count), int(number)
            if limit > 0 and multiple > 0:
                return limit, multiple * PERIODS[name]
    raise ImproperlyConfigured(
        f"{where}['rate'] must look like '60/minute', '1000/hour' or '10/30 seconds', not {rate!r}."
    )


def identity(principal: Principal, per: str) -> str | None:
    """What a rule counts for ``principal`` (None: the principal has no such thing, e.g. no user)."""
    if per == "token":
        value: Any = principal.token_id
    elif per == "client":
        value = principal.client_id
    else:
        value = getattr(principal.user, "pk", None)
    if value is None or value == "":
        return None
    return hashlib.sha256(str(value).encode()).hexdigest()[:32]


class RateLimiter:
    """Counts requests in the shared cache. One per process (``rate_limiter``)."""

    def __init__(self) -> None:
        self._unavailable_until = 0.0
        self._lock = threading.Lock()

    def check(self, principal: Principal, operations: Iterable[str], *, now: float | None = None) -> Refusal | None:
        """Count this request under every rule that applies; the first exceeded rule, if any.

        Raises ``CacheUnavailable`` when the cache fails and the setting says to refuse.
        """
        from django_mcp_scopes.conf import mcp_scopes_settings

        rules = mcp_scopes_settings.RATE_LIMITS
        if not rules:
            return None
        names = frozenset(operations)
        now = time.time() if now is None else now
        refusal: Refusal | None = None
        for index, rule in enumerate(rules):
            if not rule.applies_to(names):
                continue
            who = identity(principal, rule.per)
            if who is None:
                continue
            retry_after = self._count(index, rule, who, now)
            if retry_after is not None and (refusal is None or retry_after > refusal.retry_after):
                refusal = Refusal(rule, retry_after)
        if refusal is not None:
            telemetry.refused("rate_limited")
        return refusal

    def _count(self, index: int, rule: Rule, who: str, now: float) -> int | None:
        """Count one request; seconds until it would pass again when over the limit, else None."""
        from django_mcp_scopes.conf import mcp_scopes_settings

        if time.monotonic() < self._unavailable_until:
            return self._cache_down(None)
        window = int(now // rule.period)
        prefix = f"{mcp_scopes_settings.CACHE_KEY_PREFIX}:rl:{index}:{rule.limit}:{rule.period}:{rule.per}:{who}"
        current_key, previous_key = f"{prefix}:{window}", f"{prefix}:{window - 1}"
        cache = caches[mcp_scopes_settings.CACHE_ALIAS]
        try:
            # add() then incr(): both atomic in Redis and memcached, so no two requests read one count.
            cache.add(current_key, 0, timeout=rule.period * 2 + 1)
            try:
                current = cache.incr(current_key)
            except ValueError:  # expired between add and incr
                cache.add(current_key, 1, timeout=rule.period * 2 + 1)
                current = 1
            previous = cache.get(previous_key, 0) or 0
        except Exception as exc:
            return self._cache_down(exc)
        elapsed = now - window * rule.period
        weight = 1 - elapsed / rule.period
        estimate = current + previous * weight
        if estimate <= rule.limit:
            return None
        # How long until one more request would fit, if none came meanwhile.
        if previous and current + 1 <= rule.limit:  # once enough of the previous window has faded
            seconds = rule.period * (1 - (rule.limit - current - 1) / previous) - elapsed
        else:  # once this window has become the previous one and faded enough (up to two periods)
            seconds = rule.period - elapsed + rule.period * max(0.0, 1 - (rule.limit - 1) / current)
        return max(1, math.ceil(seconds))

    def _cache_down(self, exc: BaseException | None) -> int | None:
        from django_mcp_scopes.conf import mcp_scopes_settings

        if exc is not None:
            with self._lock:
                self._unavailable_until = time.monotonic() + mcp_scopes_settings.CACHE_RETRY_SECONDS
            logger.error("mcp_rate_limit_cache_unavailable error=%s", type(exc).__name__)
        if mcp_scopes_settings.RATE_LIMITS_WHEN_CACHE_DOWN == "refuse":
            raise CacheUnavailable
        return None

    def reset(self) -> None:
        """Forget a cache failure (tests, and setting changes)."""
        self._unavailable_until = 0.0


rate_limiter = RateLimiter()


def drf_operation(request: Any) -> str:
    """``"POST /api/entries"``: the HTTP method and the matched URL route of a DRF request."""
    from django_mcp_scopes.signals import request_operation

    return request_operation(request) or f"{request.method} {request.path}"


_COUNTED_ATTRIBUTE = "_mcp_scopes_rate_limited"


def check_drf_request(request: Any, principal: Principal) -> None:
    """Count a DRF request once (however many composed permissions ask); raise DRF's ``Throttled``
    (429 with ``Retry-After``) over a limit, a 503 when the cache cannot count and that refuses."""
    from rest_framework import exceptions as drf_exceptions

    from django_mcp_scopes.authentication import AuthUnavailable, _django_request

    django_request = _django_request(request)
    if getattr(django_request, _COUNTED_ATTRIBUTE, False):
        refusal = getattr(django_request, _COUNTED_ATTRIBUTE + "_refusal", None)
    else:
        setattr(django_request, _COUNTED_ATTRIBUTE, True)
        try:
            refusal = rate_limiter.check(principal, [drf_operation(django_request)])
        except CacheUnavailable:
            raise AuthUnavailable(CACHE_DOWN_DESCRIPTION) from None
        setattr(django_request, _COUNTED_ATTRIBUTE + "_refusal", refusal)
        if refusal is not None:
            from django_mcp_scopes.signals import report_rate_limited

            report_rate_limited(
                django_request,
                principal=principal,
                operation=drf_operation(django_request),
                retry_after=refusal.retry_after,
            )
    if refusal is not None:
        exc = drf_exceptions.Throttled(wait=refusal.retry_after)
        # The body says which limit, as the MCP error's data does (DRF would append a sentence).
        drf_exceptions.APIException.__init__(exc, refusal.data())
        raise exc
