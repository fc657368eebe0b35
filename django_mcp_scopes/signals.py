"""Signals and security log lines for refused requests.

- ``token_rejected(sender, reason, error, request, token_hash)``: a request's credentials were
  refused (malformed header, unknown/expired/revoked token, wrong audience, ...). ``reason`` is a
  short machine-readable code, ``error`` the OAuth error (``invalid_token``/``invalid_request``).
- ``scope_denied(sender, required_scopes, principal, request, operation)``: a valid token lacked the
  scopes an operation needs; ``required_scopes`` are the scopes named in the challenge, ``operation``
  what was refused (``"tools/call add_entry"``, ``"POST /api/entries"``; None when unknown).
- ``rate_limited(sender, principal, request, operation, retry_after)``: a valid token went over one
  of ``MCP_SCOPES["RATE_LIMITS"]`` (429).

Both are also written to the ``django_mcp_scopes.security`` logger (WARNING) as one line of
``key=value`` pairs. A token never appears; at most the first 12 hex digits of its sha256.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from django.dispatch import Signal

from django_mcp_scopes import telemetry

token_rejected = Signal()
scope_denied = Signal()
rate_limited = Signal()

security_logger = logging.getLogger("django_mcp_scopes.security")

TOKEN_HASH_PREFIX = 12


def _client_address(request: Any) -> str:
    meta = getattr(request, "META", None) or {}
    return _loggable(meta.get("REMOTE_ADDR", "-"))


def _path(request: Any) -> str:
    # Django decodes the path: percent-encode it again so "%0A" cannot start a forged log line.
    return quote(str(getattr(request, "path", "-")), safe="/:@!$&'()*+,;=")


def _loggable(value: Any) -> str:
    """One log field: control characters and non-ASCII escaped, so no value can forge a line."""
    return str(value).encode("unicode_escape").decode("ascii").replace(" ", "\\x20")


def report_token_rejected(request: Any, *, reason: str, error: str | None, token_hash: str | None) -> None:
    short_hash = token_hash[:TOKEN_HASH_PREFIX] if token_hash else "-"
    security_logger.warning(
        "mcp_token_rejected reason=%s error=%s path=%s remote=%s token_sha256=%s",
        _loggable(reason),
        _loggable(error or "-"),
        _path(request),
        _client_address(request),
        short_hash,
    )
    telemetry.refused(reason)
    token_rejected.send(sender=None, reason=reason, error=error, request=request, token_hash=short_hash)


def report_scope_denied(
    request: Any, *, principal: Any, required_scopes: Iterable[str], operation: str | None = None
) -> None:
    required = sorted(required_scopes)
    granted = sorted(getattr(principal, "granted_scopes", ()) or ())
    security_logger.warning(
        "mcp_scope_denied path=%s remote=%s client_id=%s user_id=%s token_id=%s required=%s granted=%s",
        _path(request),
        _client_address(request),
        _loggable(getattr(principal, "client_id", None) or "-"),
        _user_id(principal),
        _loggable(getattr(principal, "token_id", None) or "-"),
        _loggable(",".join(required) or "-"),
        _loggable(",".join(granted) or "-"),
    )
    telemetry.refused("insufficient_scope")
    if operation is None:
        operation = request_operation(request)
    scope_denied.send(sender=None, required_scopes=required, principal=principal, request=request, operation=operation)


def report_rate_limited(request: Any, *, principal: Any, operation: str, retry_after: int) -> None:
    security_logger.warning(
        "mcp_rate_limited path=%s remote=%s client_id=%s operation=%s retry_after=%s",
        _path(request),
        _client_address(request),
        _loggable(getattr(principal, "client_id", None) or "-"),
        _loggable(operation),
        retry_after,
    )
    rate_limited.send(sender=None, principal=principal, request=request, operation=operation, retry_after=retry_after)


def request_operation(request: Any) -> str | None:
    """``"GET /api/entries"``: the HTTP method and the matched URL route (the path when unresolved)."""
    method = getattr(request, "method", None)
    if not method:
        return None
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    return f"{method} /{route if route is not None else str(getattr(request, 'path', '')).lstrip('/')}"


def report_service_unavailable(request: Any, *, reason: str) -> None:
    security_logger.error("mcp_auth_unavailable reason=%s path=%s", _loggable(reason), _path(request))
    telemetry.refused("unavailable")


def _user_id(principal: Any) -> str:
    user_id = getattr(principal, "extra", {}).get("user_id")
    return _loggable(user_id) if user_id is not None else "-"
