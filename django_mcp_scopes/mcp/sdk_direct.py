"""The hot path: one JSON-RPC message straight to the SDK's request handling, its answer back.

The SDK's Streamable HTTP transport wraps each stateless request in an ASGI exchange, memory
streams, a task group and a dispatcher loop before its handler kernel sees the message. This
module calls that kernel the way the SDK's own single-exchange entry does:
``mcp.server.runner.serve_one`` with a born-ready ``Connection`` (``Connection.from_envelope``),
so the SDK still does everything protocol-shaped: the 2026-07-28 classification ladder
(``classify_inbound_request``), ``Mcp-Param-*`` header checks (``validate_mcp_param_headers``),
JSON-RPC envelope and params validation, the server's middleware (this package's backstop),
dispatch, result serialisation and the exception-to-error mapping (``modern_error_data`` for
2026-07-28, ``handler_exception_to_error_data`` for the handshake era). What this module adds is
what the SDK's transport would have written: the JSON-RPC reply and its HTTP status.

``answer()`` returns ``None`` for anything it does not serve exactly as the transport would; the
caller then goes through the bridge (``django_mcp_scopes.mcp.bridge``), which runs the SDK's
transport as before: an ``Accept`` header without ``application/json``, a handshake-era message
the SDK's envelope validation refuses (its 400 carries the SDK's own text), a server whose tool
input schemas cannot be looked up without a listing, and every request when the installed SDK
is not one of ``CHECKED_SDK_VERSIONS``.

One private part of the SDK is used, and only here: the running session manager's
``_lifespan_state`` (the server's lifespan, entered once by the manager; the hot path shares it
rather than entering the server's lifespan a second time). ``tests/test_mcp_direct.py`` checks
it and compares the hot path's answers with the transport's for every message kind, so an SDK
release that changes either fails there, loudly; ``CHECKED_SDK_VERSIONS`` makes any other
release fall back to the bridge (with a warning) until it has been checked.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.connection import Connection
from mcp.server.runner import ServerRunner, aclose_shielded, modern_error_data, serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    MCP_PARAM_HEADER_PREFIX,
    InboundLadderRejection,
    classify_inbound_request,
    unsupported_protocol_version_rejection,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data, progress_token_from_params
from mcp.shared.message import MessageMetadata, ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    INVALID_REQUEST,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    ProgressToken,
    RequestId,
    jsonrpc_message_adapter,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request

from django_mcp_scopes.mcp import context
from django_mcp_scopes.mcp.bridge import Response

logger = logging.getLogger("django_mcp_scopes.mcp")

CHECKED_SDK_VERSIONS = frozenset({"2.3.0"})
"""Releases of the ``mcp`` SDK this module was checked against (private parts and wire output)."""

_JSON_HEADERS = [(b"content-type", b"application/json")]
_PARAM_PREFIX = MCP_PARAM_HEADER_PREFIX.lower()
_INVALID_BODY = ErrorData(code=INVALID_REQUEST, message="Body must be a single JSON-RPC request or notification object")


@functools.cache
def sdk_checked() -> bool:
    """Whether the installed SDK is a release the hot path was checked against (warns once if not)."""
    try:
        version = importlib.metadata.version("mcp")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored or renamed
        version = "unknown"
    if version in CHECKED_SDK_VERSIONS:
        return True
    logger.warning(
        "The installed mcp SDK %s is not one django-mcp-scopes' direct path was checked against (%s); "
        "every MCP request goes through the SDK's Streamable HTTP transport instead (slower, same answers).",
        version,
        ", ".join(sorted(CHECKED_SDK_VERSIONS)),
    )
    return False


@dataclass
class _DispatchContext:
    """``mcp.shared.dispatcher.DispatchContext`` for one request answered with one JSON body.

    As in the SDK's stateless JSON-response transport: no back-channel (a server request raises
    ``NoBackChannelError``), and notifications or progress sent while handling are dropped (a JSON
    body carries only the reply).
    """

    transport: TransportContext
    request_id: RequestId | None
    message_metadata: MessageMetadata
    progress_token: ProgressToken | None = None
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = field(default=False, init=False)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        logger.debug("dropped %s: a JSON response carries only the reply", method)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


def lifespan_state(manager: Any) -> Any:
    """The server's lifespan state held by a running session manager (SDK-private attribute)."""
    return manager._lifespan_state


async def answer(
    manager: Any,
    server: Any,
    message: dict[str, Any],
    headers: Mapping[str, str],
    scope: dict[str, Any],
    principal: Any,
    endpoint: Any,
) -> Response | None:
    """The SDK's answer to ``message``, or ``None`` when the transport must serve it (see above).

    ``headers`` are the request's, names in lower case, without credentials; ``scope`` is the
    request as tools see it (``ctx.request_context.request``), with the principal as its user.
    """
    has_json, _has_sse = check_accept_headers(_Headers(headers))  # type: ignore[arg-type]
    if not has_json:
        return None  # the transport's 406
    lowlevel = server._lowlevel_server
    version = headers.get("mcp-protocol-version")
    principal_token = context._principal.set(principal)
    endpoint_token = context._endpoint.set(endpoint)
    user = scope.get("user")
    auth_token = auth_context_var.set(user if isinstance(user, AuthenticatedUser) else None)
    try:
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            return await _modern(lowlevel, lifespan_state(manager), message, headers, version, scope)
        return await _handshake_era(lowlevel, lifespan_state(manager), message, version, scope)
    except _NotServed:
        return None
    finally:
        auth_context_var.reset(auth_token)
        context._endpoint.reset(endpoint_token)
        context._principal.reset(principal_token)


class _Headers:
    """What ``check_accept_headers`` reads of a request."""

    __slots__ = ("headers",)

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers


async def _modern(
    server: Any, state: Any, message: dict[str, Any], headers: Mapping[str, str], version: str, scope: dict[str, Any]
) -> Response:
    """A 2026-07-28 exchange, as the SDK's single-exchange entry answers it in JSON mode."""
    if "id" not in message:
        # A notification: acknowledged and dropped (nothing on this wire acts on one).
        try:
            JSONRPCNotification.model_validate(message)
        except ValidationError:
            return _modern_reply(JSONRPCError(jsonrpc="2.0", id=None, error=_INVALID_BODY))
        unsupported = unsupported_protocol_version_rejection(version)
        if unsupported is not None:
            return _modern_reply(_rejection(unsupported, None))
        return Response(202, [], b"")
    try:
        request = JSONRPCRequest.model_validate(message)
    except ValidationError:
        return _modern_reply(JSONRPCError(jsonrpc="2.0", id=None, error=_INVALID_BODY))
    verdict = classify_inbound_request(message, headers=headers)
    if isinstance(verdict, InboundLadderRejection):
        return _modern_reply(_rejection(verdict, request.id))
    param_rejection = _param_header_rejection(server, request, headers)
    if param_rejection is not None:
        return _modern_reply(_rejection(param_rejection, request.id))
    connection = Connection.from_envelope(verdict.protocol_version, verdict.client_info, verdict.client_capabilities)
    http_request = Request(scope)
    dctx = _DispatchContext(
        transport=TransportContext(kind="streamable-http", can_send_request=False, headers=http_request.headers),
        request_id=request.id,
        message_metadata=ServerMessageMetadata(request_context=http_request),
        progress_token=progress_token_from_params(request.params),
    )
    reply: JSONRPCResponse | JSONRPCError
    try:
        result = await serve_one(
            server, dctx, request.method, request.params, connection=connection, lifespan_state=state
        )
    except Exception as exc:
        reply = JSONRPCError(jsonrpc="2.0", id=request.id, error=modern_error_data(exc))
    else:
        reply = JSONRPCResponse(jsonrpc="2.0", id=request.id, result=result)
    return _modern_reply(reply)


def _param_header_rejection(
    server: Any, request: JSONRPCRequest, headers: Mapping[str, str]
) -> InboundLadderRejection | None:
    """``Mcp-Param-*`` headers against the called tool's input schema, as the SDK's entry checks them."""
    if request.method != "tools/call":
        return None
    params = request.params or {}
    name = params.get("name")
    arguments = params.get("arguments")
    if not isinstance(name, str) or (arguments is not None and not isinstance(arguments, Mapping)):
        return None
    if not arguments and not any(key.startswith(_PARAM_PREFIX) for key in headers):
        return None
    lookup = server.get_tool_input_schema
    if lookup is None:
        # Only the SDK's listing walk could find the schema; MCPServer always has a lookup.
        raise _NotServed
    try:
        schema = lookup(name)
    except Exception:
        logger.exception("Mcp-Param header validation skipped: get_tool_input_schema raised")
        return None
    if schema is None:
        return None
    return validate_mcp_param_headers(schema, arguments or {}, headers)


class _NotServed(Exception):
    """This exchange is the transport's to answer."""


async def _handshake_era(
    server: Any, state: Any, message: dict[str, Any], version: str | None, scope: dict[str, Any]
) -> Response | None:
    """A 2025 (handshake-era) exchange, as the SDK's stateless JSON-response transport answers it."""
    try:
        parsed = jsonrpc_message_adapter.validate_python(message, by_name=False)
    except ValidationError:
        return None  # the transport's 400 names what pydantic found
    http_request = Request(scope)
    metadata = ServerMessageMetadata(request_context=http_request, can_send_request=False)
    transport = TransportContext(kind="streamable-http", can_send_request=False)
    connection = Connection.from_envelope(version if version is not None else DEFAULT_NEGOTIATED_VERSION, None, None)
    if isinstance(parsed, JSONRPCNotification):
        runner = ServerRunner(server, connection, state)
        dctx = _DispatchContext(transport=transport, request_id=None, message_metadata=metadata)
        try:
            await runner.on_notify(dctx, parsed.method, parsed.params)
        finally:
            await aclose_shielded(connection)
        return Response(202, list(_JSON_HEADERS), b"")
    if not isinstance(parsed, JSONRPCRequest):
        return None
    dctx = _DispatchContext(
        transport=transport,
        request_id=parsed.id,
        message_metadata=metadata,
        progress_token=progress_token_from_params(parsed.params),
    )
    reply: JSONRPCResponse | JSONRPCError
    try:
        result = await serve_one(
            server, dctx, parsed.method, parsed.params, connection=connection, lifespan_state=state
        )
    except Exception as exc:
        error = handler_exception_to_error_data(exc)
        if error is None:
            # The handshake-era dispatcher's catch-all (code 0 with the message), kept for its clients.
            logger.exception("handler for %r raised", parsed.method)
            error = ErrorData(code=0, message=str(exc))
        reply = JSONRPCError(jsonrpc="2.0", id=parsed.id, error=error)
    else:
        reply = JSONRPCResponse(jsonrpc="2.0", id=parsed.id, result=result)
    body = reply.model_dump_json(by_alias=True, exclude_unset=True).encode()
    return Response(200, list(_JSON_HEADERS), body)


def _rejection(rejection: InboundLadderRejection, request_id: RequestId | None) -> JSONRPCError:
    error = ErrorData(code=rejection.code, message=rejection.message, data=rejection.data)
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=error)


def _modern_reply(reply: JSONRPCResponse | JSONRPCError) -> Response:
    """The reply with the status the SDK's table maps its error code to."""
    status = 200
    body = reply.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(reply, JSONRPCError):
        status = ERROR_CODE_HTTP_STATUS.get(reply.error.code, 200)
        if reply.id is None:
            body["id"] = None  # JSON-RPC wants id: null on the wire when the id is unknown
    # As the SDK's transport writes it (json.dumps: a lone surrogate in an id or a result is escaped,
    # where pydantic's serialiser would refuse it).
    return Response(status, list(_JSON_HEADERS), json.dumps(body, separators=(",", ":")).encode())
