"""OpenTelemetry: a span per authentication decision and per MCP request, a counter of refusals.

Off unless ``MCP_SCOPES["OPENTELEMETRY"]`` is True. While off, every helper here returns a shared
object whose methods do nothing, and the ``opentelemetry`` package is never imported by this
package: the first use after the setting is turned on imports it. Spans and the counter go to
the global tracer and meter providers the project configures (``opentelemetry-sdk`` and an
exporter); without providers the API's no-op ones take them.

Attributes never hold a token, a token's hash or anything about the user: the method, the
operation's declared name, the outcome and the OAuth client id. Outcomes are ``allowed``, a
token-refusal reason (``expired``, ``wrong_resource``, ... as in ``signals.token_rejected``),
``no_credentials``, ``insufficient_scope``, ``rate_limited``, ``unavailable``, or the HTTP-level
refusals of the MCP endpoint (``bad_request``, ``forbidden``, ...).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from django_mcp_scopes import __version__
from django_mcp_scopes.conf import mcp_scopes_settings

INSTRUMENTATION_NAME = "django_mcp_scopes"
AUTHENTICATE_SPAN = "mcp_scopes.authenticate"
OPERATION_SPAN = "mcp_scopes.mcp"
REFUSALS_COUNTER = "mcp_scopes.refusals"

OUTCOME = "mcp_scopes.outcome"
CLIENT_ID = "mcp_scopes.client_id"
TOKEN_SOURCE = "mcp_scopes.token_source"
OPERATION = "mcp_scopes.operation"
REASON = "mcp_scopes.reason"
METHOD = "mcp.method.name"  # as the mcp SDK's own spans name it
HTTP_STATUS = "http.response.status_code"

_ATTRIBUTE_NAMES = {
    "outcome": OUTCOME,
    "client_id": CLIENT_ID,
    "token_source": TOKEN_SOURCE,
    "operation": OPERATION,
    "method": METHOD,
}
# The outcome of an MCP request that no refusal named, from its status.
_STATUS_OUTCOMES = {
    400: "bad_request",
    401: "no_credentials",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}

# Methods named as they are; any other client-chosen string is "other" (bounded span names).
_KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    }
)

logger = logging.getLogger(__name__)


class _Off:
    """What the helpers return while telemetry is off: a context manager that records nothing."""

    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def set(self, **attributes: Any) -> None:
        return None

    def finish(self, status: int, client_id: str | None = None) -> None:
        return None


_OFF = _Off()


class _Instruments:
    """The tracer and the counter; built (and ``opentelemetry`` imported) on first use only."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace

        self.trace = trace
        self.tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__)
        self.refusals = metrics.get_meter(INSTRUMENTATION_NAME, __version__).create_counter(
            REFUSALS_COUNTER, unit="{refusal}", description="Requests refused by django-mcp-scopes, by reason."
        )


_instruments: _Instruments | None = None
_instruments_lock = threading.Lock()
_unavailable_logged = False
_operation: contextvars.ContextVar[_Span | None] = contextvars.ContextVar("mcp_scopes_operation_span", default=None)


def _get() -> _Instruments | None:
    global _instruments, _unavailable_logged
    if not mcp_scopes_settings.OPENTELEMETRY:
        return None
    if _instruments is None:
        with _instruments_lock:  # one counter per process, even when the first requests race
            if _instruments is None:
                try:
                    _instruments = _Instruments()
                except ImportError:
                    # Telemetry must never take requests down; check E401 reports it at start-up.
                    if not _unavailable_logged:
                        logger.error('MCP_SCOPES["OPENTELEMETRY"] is True but opentelemetry-api is not installed.')
                        _unavailable_logged = True
                    return None
    return _instruments


def reset() -> None:
    """Forget the instruments (on ``setting_changed``), so a new provider or setting takes effect."""
    global _instruments, _unavailable_logged
    _instruments = None
    _unavailable_logged = False


class _Span:
    def __init__(self, instruments: _Instruments, name: str, *, operation: bool) -> None:
        self._instruments = instruments
        self._name = name
        self._is_operation = operation
        self.outcome: str | None = None

    def __enter__(self) -> _Span:
        # A refusal is an outcome, not an error: exceptions are neither recorded nor make the status.
        self._manager = self._instruments.tracer.start_as_current_span(
            self._name, record_exception=False, set_status_on_exception=False
        )
        self.span = self._manager.__enter__()
        self._token = _operation.set(self) if self._is_operation else None
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._token is not None:
            _operation.reset(self._token)
        if exc is not None and self.outcome is None:
            self.set(outcome="error")
            self.span.set_status(self._instruments.trace.StatusCode.ERROR, type(exc).__name__)
        self._manager.__exit__(exc_type, exc, traceback)

    def set(self, **attributes: Any) -> None:
        """Set attributes by short name (``outcome``, ``client_id``, ``method``, ``operation``, ...)."""
        if "method" in attributes and attributes["method"] not in _KNOWN_METHODS:
            attributes["method"] = "other"
        for key, value in attributes.items():
            if value is None:
                continue
            if key == "outcome":
                self.outcome = str(value)
            self.span.set_attribute(_ATTRIBUTE_NAMES[key], str(value))
        if self._is_operation and attributes.get("method") is not None:
            # Low cardinality: a known method, and the operation's declared name (found, so declared).
            name = " ".join(filter(None, (OPERATION_SPAN, attributes["method"], attributes.get("operation"))))
            self.span.update_name(name)

    def finish(self, status: int, client_id: str | None = None) -> None:
        """Record the response status; an outcome no refusal named comes from it."""
        self.span.set_attribute(HTTP_STATUS, status)
        if client_id is not None:
            self.set(client_id=client_id)
        if self.outcome is None:
            self.set(outcome=_STATUS_OUTCOMES.get(status, "allowed" if status < 400 else "error"))
        if status >= 500:
            self.span.set_status(self._instruments.trace.StatusCode.ERROR)


def authentication_span() -> _Span | _Off:
    """Context manager around one authentication decision (``authenticate_request``)."""
    instruments = _get()
    return _OFF if instruments is None else _Span(instruments, AUTHENTICATE_SPAN, operation=False)


def operation_span() -> _Span | _Off:
    """Context manager around one MCP request, from its arrival to the SDK's answer."""
    instruments = _get()
    return _OFF if instruments is None else _Span(instruments, OPERATION_SPAN, operation=True)


def annotate(**attributes: Any) -> None:
    """Set attributes on the MCP request's span, when there is one (``method=``, ``operation=``, ...)."""
    span = _operation.get()
    if span is not None:
        span.set(**attributes)


def refused(reason: str) -> None:
    """Count one refusal, and name it as the outcome of the MCP request's span, if any."""
    instruments = _get()
    if instruments is None:
        return
    instruments.refusals.add(1, {REASON: reason})
    span = _operation.get()
    if span is not None and span.outcome is None:
        span.set(outcome=reason)


def _client_id(request: Any) -> str | None:
    from django_mcp_scopes.principal import REQUEST_ATTRIBUTE

    return getattr(getattr(request, REQUEST_ATTRIBUTE, None), "client_id", None)


def traced_view(view: Callable[..., Any], *, is_async: bool) -> Callable[..., Any]:
    """An MCP endpoint's view function inside ``operation_span()`` (while telemetry is on)."""
    if is_async:

        @functools.wraps(view)
        async def traced_async(request: Any, *args: Any, **kwargs: Any) -> Any:
            span = operation_span()
            if span is _OFF:
                return await view(request, *args, **kwargs)
            with span:
                response = await view(request, *args, **kwargs)
                span.finish(response.status_code, _client_id(request))
                return response

        return traced_async

    @functools.wraps(view)
    def traced(request: Any, *args: Any, **kwargs: Any) -> Any:
        span = operation_span()
        if span is _OFF:
            return view(request, *args, **kwargs)
        with span:
            response = view(request, *args, **kwargs)
            span.finish(response.status_code, _client_id(request))
            return response

    return traced
