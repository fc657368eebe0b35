"""The MCP endpoint view: HTTP checks, authentication, per-operation scopes, then the SDK.

Every request goes through the same steps, and the first that fails answers:

1. Host: Django's ``ALLOWED_HOSTS`` (``request.get_host()``; 400 otherwise).
2. Origin, when sent: same origin or listed in ``MCP_SCOPES["ALLOWED_ORIGINS"]`` (403 otherwise).
   CORS preflight (``OPTIONS``) is answered here.
3. Method: only ``POST`` carries MCP messages; anything else is ``405`` with ``Allow: POST, OPTIONS``
   at once (a stateless JSON endpoint has no GET stream and no session to DELETE).
4. Declared body size over ``MCP_SCOPES["MAX_BODY_BYTES"]``: 413.
5. Authentication and endpoint-wide permissions, DRF style (401 / 403 / 503 with challenges).
6. Content-Type ``application/json`` (415), body size as read (413), one JSON-RPC object (400
   for invalid JSON, a batch, a missing method), routing headers that agree with the body (400),
   a protocol version this server speaks (400).
7. Scopes: what the method and the named tool, resource or prompt need, for these arguments
   (403 ``insufficient_scope`` naming every scope the operation needs).
8. The SDK answers (stateless, JSON responses), with the principal in the request's context.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views import View
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    decode_header_value,
    unsupported_protocol_version_rejection,
)
from mcp_types import HEADER_MISMATCH, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from rest_framework import exceptions as drf_exceptions
from rest_framework.parsers import BaseParser
from rest_framework.request import Request as DRFRequest
from starlette.authentication import AuthCredentials

from django_mcp_scopes import telemetry
from django_mcp_scopes.authentication import MCPTokenAuthentication, _django_request, check_resource_binding
from django_mcp_scopes.challenges import (
    insufficient_scope_response,
    service_unavailable_response,
    unauthorized_response,
)
from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.exceptions import AuthServiceUnavailable, InsufficientScope, InvalidToken, TokenError
from django_mcp_scopes.mcp import context, sdk_direct
from django_mcp_scopes.mcp.context import pin
from django_mcp_scopes.mcp.database import in_request_cycle
from django_mcp_scopes.mcp.endpoint import INSUFFICIENT_SCOPE, Decision, MCPEndpoint, UndeclaredOperation
from django_mcp_scopes.mcp.listing import obtainable_scopes
from django_mcp_scopes.mcp.operations import LISTING_METHODS
from django_mcp_scopes.principal import Principal, get_principal
from django_mcp_scopes.ratelimits import CACHE_DOWN_DESCRIPTION, RATE_LIMITED, CacheUnavailable, rate_limiter
from django_mcp_scopes.resources import (
    canonicalize_all,
    canonicalize_resource,
    mark_protected_resource,
    public_origin,
    resource_uri,
)
from django_mcp_scopes.signals import report_rate_limited, report_scope_denied

if TYPE_CHECKING:
    from django_mcp_scopes.mcp.bridge import Response as SDKResponse
    from django_mcp_scopes.requirements import ScopeRequirement

logger = logging.getLogger("django_mcp_scopes.mcp")

ALLOW = "POST, OPTIONS"
CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Mcp-Method",
    "Mcp-Name",
    "MCP-Protocol-Version",
    "Last-Event-ID",
)
CORS_EXPOSE_HEADERS = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version"
CORS_MAX_AGE = 600
_SUPPORTED_VERSIONS = frozenset((*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS))
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "content-length"})


def _meta_key(header: str) -> str:
    """Where Django's ``request.META`` holds a request header (read there: ``request.headers``
    parses every header on first use, a cost on each MCP call)."""
    return "HTTP_" + header.upper().replace("-", "_")


_META_PROTOCOL_VERSION = _meta_key(MCP_PROTOCOL_VERSION_HEADER)
_META_METHOD = _meta_key(MCP_METHOD_HEADER)
_META_NAME = _meta_key(MCP_NAME_HEADER)


class _BodyLeftAlone(BaseParser):
    """Lets authentication classes ask DRF for form data without consuming the JSON-RPC body."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> dict[str, Any]:
        return {}


def _unauthenticated(request: HttpRequest) -> None:
    """What DRF's request leaves on the request it wraps when no authenticator accepted it."""
    from rest_framework.settings import api_settings

    make_user: Any = api_settings.UNAUTHENTICATED_USER
    make_token: Any = api_settings.UNAUTHENTICATED_TOKEN
    request.user = make_user() if make_user else None  # type: ignore[assignment]
    request.auth = make_token() if make_token else None  # type: ignore[attr-defined]


class _AuthenticatedRequest:
    """What ``MCPTokenAuthentication`` reads of a DRF request: the Django request and the view."""

    def __init__(self, request: HttpRequest, view: Any) -> None:
        self._request = request
        self.parser_context = {"view": view}


class _Call:
    """A request that passed every check in the view: what goes to the SDK.

    ``message`` is the body as the view decoded it (decoded again from ``body`` when absent);
    ``cleared``: the view decided this message's scopes and allowed it (the SDK-side backstop then
    does not decide it again).
    """

    __slots__ = ("body", "cleared", "headers", "message", "principal", "scope")

    def __init__(
        self,
        scope: dict[str, Any],
        body: bytes,
        principal: Principal,
        *,
        message: dict[str, Any] | None = None,
        cleared: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.scope = scope
        self.headers = headers
        self.body = body
        self.principal = principal
        self.message = message
        self.cleared = cleared and message is not None


def jsonrpc_error(
    status: int,
    code: int,
    message: str,
    request_id: Any = None,
    data: Any = None,
) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    response = JsonResponse({"jsonrpc": "2.0", "id": request_id, "error": error}, status=status)
    response["Cache-Control"] = "no-store"
    return response


class MCPView(View):
    """Serves an ``MCPServer`` under WSGI. Use ``AsyncMCPView`` under ASGI, or ``mcp_path()`` for both.

    ``MCPView.as_view(server=server, authentication_classes=[...], permission_classes=[...],
    method_scopes={"tools/list": "entries:read"})``.
    """

    server: Any = None
    method_scopes: Mapping[str, Any] | None = None
    authentication_classes: Sequence[type] = (MCPTokenAuthentication,)
    permission_classes: Sequence[type] = ()
    endpoint: MCPEndpoint | None = None
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options", "trace"]
    view_is_async = False  # type: ignore[assignment]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        server = initkwargs.get("server", cls.server)
        if server is None:
            raise ImproperlyConfigured(f"{cls.__name__}.as_view() needs server=<an MCPServer>.")
        if not initkwargs.get("authentication_classes", cls.authentication_classes):
            raise ImproperlyConfigured(
                f"{cls.__name__} needs authentication_classes: an MCP endpoint never serves anonymous callers."
            )
        if "endpoint" not in initkwargs:
            method_scopes = initkwargs.get("method_scopes") or cls.method_scopes or {}
            initkwargs["endpoint"] = MCPEndpoint(server, dict(method_scopes))
        endpoint = initkwargs["endpoint"]
        view = telemetry.traced_view(super().as_view(**initkwargs), is_async=cls.view_is_async)
        view.csrf_exempt = True  # type: ignore[attr-defined]
        view.mcp_endpoint = endpoint  # type: ignore[attr-defined]
        # Its RFC 9728 metadata advertises only what the operations need (django_mcp_scopes.urls).
        return mark_protected_resource(view, scopes=endpoint.needed_scopes, name=getattr(server, "title", None))

    # entry points ---------------------------------------------------------------------------
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        outcome = self.prepare(request)
        if isinstance(outcome, _Call):
            assert self.endpoint is not None
            try:
                sdk_response = self.endpoint.bridge.run(serve(self.endpoint, outcome))
            except Exception:
                logger.exception("The MCP SDK failed to answer")
                return self.with_cors(request, jsonrpc_error(500, INTERNAL_ERROR, "Internal error"))
            return self.with_cors(request, self.to_django(sdk_response))
        return self.with_cors(request, outcome)

    # checks ---------------------------------------------------------------------------------
    def prepare(self, request: HttpRequest) -> _Call | HttpResponseBase:
        """Every check before the SDK; a response when one fails, else what to send to the SDK."""
        refusal = self.check_http(request)
        if refusal is not None:
            return refusal
        try:
            principal = self.authenticate(request)
        except Exception as exc:
            return self.handle_exception(request, exc)
        body = self.read_body(request)
        if isinstance(body, HttpResponseBase):
            return body
        return self.check_message(request, body, principal)

    def check_http(self, request: HttpRequest) -> HttpResponseBase | None:
        """Host, Origin, CORS preflight, method and declared size: the checks before authentication."""
        request.get_host()  # ALLOWED_HOSTS: DisallowedHost becomes Django's 400
        origin = request.META.get("HTTP_ORIGIN")
        if origin is not None and not self.origin_allowed(request, origin):
            message = "This Origin may not use this endpoint."
            if settings.DEBUG:
                message += f' To allow it, add it to MCP_SCOPES["ALLOWED_ORIGINS"] (for example {origin!r}).'
            return jsonrpc_error(403, INVALID_REQUEST, message)
        if request.method == "OPTIONS":
            return self.preflight(request)
        if request.method != "POST":
            return _method_not_allowed(request)
        limit = mcp_scopes_settings.MAX_BODY_BYTES
        if _declared_length(request) > limit:
            return _too_large(limit)
        return None

    def read_body(self, request: HttpRequest) -> bytes | HttpResponseBase:
        """The JSON body, at most ``MAX_BODY_BYTES`` of it (415 / 413 otherwise)."""
        if request.content_type != "application/json":
            return jsonrpc_error(415, INVALID_REQUEST, "Content-Type must be application/json.")
        limit = mcp_scopes_settings.MAX_BODY_BYTES
        body = request.read(limit + 1)
        if len(body) > limit:
            return _too_large(limit)
        return body

    def check_message(self, request: HttpRequest, body: bytes, principal: Principal) -> _Call | HttpResponseBase:
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return jsonrpc_error(400, PARSE_ERROR, "Parse error: the body is not valid JSON.")
        if isinstance(message, list):
            return jsonrpc_error(400, INVALID_REQUEST, "Batches are not supported: send one message per request.")
        if not isinstance(message, dict):
            return jsonrpc_error(400, INVALID_REQUEST, "The body must be one JSON-RPC request or notification object.")
        raw_id = message.get("id")
        request_id = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
        if "id" in message and request_id is None:
            # Neither a request nor a notification: the SDK would drop it and the client would wait forever.
            return jsonrpc_error(400, INVALID_REQUEST, "The id must be a string or an integer (never null).")
        method = message.get("method")
        if not isinstance(method, str) or not method:
            return jsonrpc_error(400, INVALID_REQUEST, "The message needs a method (a non-empty string).", request_id)
        telemetry.annotate(method=method)
        params = message.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return jsonrpc_error(400, INVALID_PARAMS, "params must be an object.", request_id)

        version = request.META.get(_META_PROTOCOL_VERSION)
        if version is not None and version not in _SUPPORTED_VERSIONS:
            rejection = unsupported_protocol_version_rejection(version)
            assert rejection is not None
            return jsonrpc_error(400, rejection.code, rejection.message, request_id, rejection.data)
        header_method = request.META.get(_META_METHOD)
        if header_method is not None and header_method != method:
            return jsonrpc_error(
                400, HEADER_MISMATCH, "The Mcp-Method header does not match the request body's method.", request_id
            )
        name_key = NAME_BEARING_METHODS.get(method)
        header_name = request.META.get(_META_NAME)
        named = params.get(name_key) if name_key is not None else None
        if name_key is not None and header_name is not None and decode_header_value(header_name) != named:
            return jsonrpc_error(
                400, HEADER_MISMATCH, f"The Mcp-Name header does not match the request body's {name_key!r}.", request_id
            )
        if method == "subscriptions/listen":
            # An endless notification stream: this stateless JSON endpoint does not serve it.
            return jsonrpc_error(404, METHOD_NOT_FOUND, "Method not found", request_id, method)

        assert self.endpoint is not None
        try:
            decision = self.endpoint.decide(method, params, principal)
        except DatabaseError as exc:
            return self.handle_exception(request, exc)
        except UndeclaredOperation as exc:
            logger.error("%s Refused (least privilege).", exc)
            return jsonrpc_error(500, INTERNAL_ERROR, "This operation declares no scope requirement.", request_id)
        except Exception:
            logger.exception("The scope requirement of %s could not be evaluated", method)
            return jsonrpc_error(500, INTERNAL_ERROR, "The scope requirement of this call could not be evaluated.")
        if decision.operation is not None:
            telemetry.annotate(method=method, operation=decision.operation.name)
        limited = self.rate_limited(request, principal, method, decision, request_id)
        if limited is not None:
            return limited
        if not decision.allows(principal):
            assert decision.requirement is not None
            what = method if decision.operation is None else f"{method} {decision.operation.name}"
            return self.insufficient_scope(request, decision.requirement, principal, what, request_id)
        if method in LISTING_METHODS and mcp_scopes_settings.LISTING_POLICY == "obtainable":
            # Decided here, where the database may be used; the listing filter runs on the SDK's loop.
            try:
                principal = replace(pin(principal), obtainable_scopes=obtainable_scopes(request, principal))
            except DatabaseError as exc:
                return self.handle_exception(request, exc)
        scope, headers = _scope_and_headers(request, body, principal)
        return _Call(scope, body, principal, message=message, cleared=True, headers=headers)

    def rate_limited(
        self, request: HttpRequest, principal: Principal, method: str, decision: Decision, request_id: Any
    ) -> HttpResponseBase | None:
        """429 with ``Retry-After`` and a JSON-RPC error over ``MCP_SCOPES["RATE_LIMITS"]``."""
        operations = [method]
        if decision.operation is not None:
            operations.append(f"{method} {decision.operation.name}")
        try:
            refusal = rate_limiter.check(principal, operations)
        except CacheUnavailable:
            return service_unavailable_response(request, CACHE_DOWN_DESCRIPTION)
        if refusal is None:
            return None
        report_rate_limited(request, principal=principal, operation=operations[-1], retry_after=refusal.retry_after)
        response = jsonrpc_error(429, RATE_LIMITED, refusal.description, request_id, refusal.data())
        response["Retry-After"] = str(refusal.retry_after)
        return response

    def origin_allowed(self, request: HttpRequest, origin: str) -> bool:
        allowed = mcp_scopes_settings.ALLOWED_ORIGINS
        if "*" in allowed or origin in allowed:
            return True
        try:
            candidate = canonicalize_resource(origin)
        except ValueError:
            return False
        own = {f"{request.scheme}://{request.get_host()}", public_origin(request)}
        for value in (*own, *allowed):
            try:
                if canonicalize_resource(value) == candidate:
                    return True
            except ValueError:
                continue
        return False

    def preflight(self, request: HttpRequest) -> HttpResponse:
        response = HttpResponse(status=204)
        response["Allow"] = ALLOW
        if request.headers.get("Origin") is None:
            return response
        requested = request.headers.get("Access-Control-Request-Headers", "")
        allowed = list(CORS_ALLOW_HEADERS)
        known = {name.lower() for name in allowed}
        for name in (part.strip() for part in requested.split(",")):
            # Tools may declare Mcp-Param-* headers (x-mcp-header); let browsers send them.
            if name and name.lower().startswith("mcp-param-") and name.lower() not in known:
                allowed.append(name)
                known.add(name.lower())
        response["Access-Control-Allow-Methods"] = ALLOW
        response["Access-Control-Allow-Headers"] = ", ".join(allowed)
        response["Access-Control-Max-Age"] = str(CORS_MAX_AGE)
        return response

    def with_cors(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        origin = request.META.get("HTTP_ORIGIN")
        if origin is None:
            return response
        response["Vary"] = "Origin"
        if self.origin_allowed(request, origin):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        return response

    # authentication -------------------------------------------------------------------------
    def authenticate(self, request: HttpRequest) -> Principal:
        """Run the authentication and permission classes like DRF's ``APIView`` does."""
        if (
            not self.permission_classes
            and tuple(self.authentication_classes) == (MCPTokenAuthentication,)
            and getattr(request, "_force_auth_user", None) is None  # DRF's force_authenticate() in tests
            and getattr(request, "_force_auth_token", None) is None
        ):
            return self.authenticate_bearer(request)
        authenticators = [authenticator() for authenticator in self.authentication_classes]
        drf_request = DRFRequest(
            request, parsers=[_BodyLeftAlone()], authenticators=authenticators, parser_context={"view": self}
        )
        try:
            try:
                drf_request.user  # noqa: B018 - runs the authenticators (DRF's perform_authentication)
            except DatabaseError as exc:
                raise AuthServiceUnavailable() from exc
            for permission in [permission() for permission in self.permission_classes]:
                if not permission.has_permission(drf_request, self):
                    if drf_request.authenticators and not drf_request.successful_authenticator:
                        raise drf_exceptions.NotAuthenticated()
                    raise drf_exceptions.PermissionDenied(
                        detail=getattr(permission, "message", None), code=getattr(permission, "code", None)
                    )
            principal = principal_of(drf_request)
            if principal is None:
                raise drf_exceptions.NotAuthenticated()
        except (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed) as exc:
            # As DRF's APIView.handle_exception: the first authenticator writes the challenge.
            if authenticators and not getattr(exc, "auth_header", None):
                header = authenticators[0].authenticate_header(drf_request)
                if header:
                    setattr(exc, "auth_header", header)  # noqa: B010
            raise
        return pin(principal)

    def authenticate_bearer(self, request: HttpRequest) -> Principal:
        """``authenticate()`` with the default classes (``MCPTokenAuthentication`` alone, no permission
        classes), without building a DRF request: the same principal, the same refusals."""
        authenticator = MCPTokenAuthentication()
        stand_in = _AuthenticatedRequest(request, self)
        try:
            try:
                found = authenticator.authenticate(stand_in)  # type: ignore[arg-type]
            except DatabaseError as exc:
                raise AuthServiceUnavailable() from exc
            except drf_exceptions.APIException:
                _unauthenticated(request)
                raise
            if found is None:
                _unauthenticated(request)
                # As DRF's path: a principal attached earlier (an outer require_token) stands.
                principal = principal_of(request)
                if principal is None:
                    raise drf_exceptions.NotAuthenticated()
                return pin(principal)
        except (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed) as exc:
            setattr(exc, "auth_header", authenticator.authenticate_header(stand_in))  # type: ignore[arg-type]  # noqa: B010
            raise
        # As DRF's Request does for the request it wraps.
        request.user, request.auth = found  # type: ignore[attr-defined]
        return pin(found[1])

    def handle_exception(self, request: HttpRequest, exc: Exception) -> HttpResponseBase:
        if isinstance(exc, TokenError):
            return unauthorized_response(request, error=exc.error, description=exc.description, status=exc.status)
        if isinstance(exc, AuthServiceUnavailable):
            return service_unavailable_response(request, exc.description)
        if isinstance(exc, DatabaseError):
            # The scope table could not be read: fail closed, as for the token table.
            logger.error("The scopes could not be read: %s", type(exc).__name__)
            return service_unavailable_response(request)
        if isinstance(exc, InsufficientScope):
            return insufficient_scope_response(
                request, exc.requirement, effective=exc.effective, description=exc.description
            )
        if isinstance(exc, drf_exceptions.APIException):
            return _api_exception_response(request, exc)
        raise exc

    def insufficient_scope(
        self,
        request: HttpRequest,
        requirement: ScopeRequirement,
        principal: Principal,
        what: str,
        request_id: Any,
    ) -> HttpResponseBase:
        """The 403 challenge, its JSON body as a JSON-RPC error so MCP clients surface it."""
        effective = principal.effective_scopes
        report_scope_denied(
            request, principal=principal, required_scopes=requirement.challenge_scopes(effective), operation=what
        )
        response = insufficient_scope_response(
            request,
            requirement,
            effective=effective,
            description=f"The access token does not grant what {what} needs; "
            "ask for the scopes named in the challenge.",
        )
        details = json.loads(response.content)
        response.content = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": INSUFFICIENT_SCOPE, "message": details["error_description"], "data": details},
            }
        ).encode()
        return response

    # the SDK's answer ------------------------------------------------------------------------
    @staticmethod
    def to_django(sdk_response: SDKResponse) -> HttpResponse:
        response = HttpResponse(sdk_response.body, status=sdk_response.status)
        for name, value in sdk_response.headers:
            key = name.decode("latin-1")
            if key.lower() != "content-length":
                response[key] = value.decode("latin-1")
        if "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response


class AsyncMCPView(MCPView):
    """``MCPView`` for ASGI: the checks and the SDK run on the server's own event loop.

    With a warm token (its facts in this process's memory, the epochs and the scope registry
    fresh) every check runs in the request's task: no query, no thread. What may touch the
    database (a cold token, custom authentication or permission classes, a dynamic requirement,
    an ``"obtainable"`` listing, rate limits in the cache) runs in one hop to Django's sync
    thread instead.
    """

    view_is_async = True  # type: ignore[assignment]

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        outcome = await self.aprepare(request)
        if isinstance(outcome, _Call):
            assert self.endpoint is not None
            try:
                sdk_response = await serve(self.endpoint, outcome)
            except Exception:
                logger.exception("The MCP SDK failed to answer")
                return self.with_cors(request, jsonrpc_error(500, INTERNAL_ERROR, "Internal error"))
            return self.with_cors(request, self.to_django(sdk_response))
        return self.with_cors(request, outcome)

    async def aprepare(self, request: HttpRequest) -> _Call | HttpResponseBase:
        """``prepare()`` on the event loop when nothing in it needs the database, else in one hop."""
        if not self.authenticates_in_memory(request):
            return await sync_to_async(in_request_cycle(self.prepare))(request)
        refusal = self.check_http(request)
        if refusal is not None:
            return refusal
        try:
            principal = self.authenticate(request)
        except SynchronousOnlyOperation:
            # An epoch or an entry expired since the check above: nothing was consumed, start again.
            return await sync_to_async(in_request_cycle(self.prepare))(request)
        except Exception as exc:
            try:
                return self.handle_exception(request, exc)
            except SynchronousOnlyOperation:
                return await sync_to_async(in_request_cycle(self.handle_exception))(request, exc)
        body = self.read_body(request)
        if isinstance(body, HttpResponseBase):
            return body
        if not self.message_needs_thread(body):
            try:
                return self.check_message(request, body, principal)
            except SynchronousOnlyOperation:
                pass  # checking it had no side effect before the query: again, where queries may run
        return await sync_to_async(in_request_cycle(self.check_message))(request, body, principal)

    def authenticates_in_memory(self, request: HttpRequest) -> bool:
        """Whether authentication and permissions will answer without I/O (see the class docstring)."""
        if self.permission_classes or len(self.authentication_classes) != 1:
            return False
        check = getattr(self.authentication_classes[0], "authenticates_without_io", None)
        return check is not None and bool(check(request, self))

    def message_needs_thread(self, body: bytes) -> bool:
        """Whether checking this message may query the database or the cache."""
        if mcp_scopes_settings.RATE_LIMITS:
            return True
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return False  # refused without a query
        if not isinstance(message, dict):
            return False
        method = message.get("method")
        params = message.get("params")
        if not isinstance(method, str) or not isinstance(params, dict):
            return False
        if method in LISTING_METHODS:
            return mcp_scopes_settings.LISTING_POLICY == "obtainable"
        assert self.endpoint is not None
        try:
            return self.endpoint.needs_thread(method, params)
        except Exception:
            return True  # whatever failed, let the sync path report it


async def serve(endpoint: MCPEndpoint, call: _Call) -> SDKResponse:
    """The SDK's answer: straight to its request handling (``sdk_direct``), else through its transport."""
    message = call.message if call.cleared else None
    params = context.decided_params(message.get("params")) if message is not None else None
    if message is None or params is None:
        return await _serve(endpoint, call)
    cleared = context._cleared.set((endpoint, message.get("method"), message.get("id"), params))
    try:
        return await _serve(endpoint, call)
    finally:
        context._cleared.reset(cleared)


async def _serve(endpoint: MCPEndpoint, call: _Call) -> SDKResponse:
    if sdk_direct.sdk_checked():
        message = call.message
        if message is None:
            try:
                message = json.loads(call.body)
            except (ValueError, RecursionError):
                message = None
        if isinstance(message, dict):
            headers = call.headers
            if headers is None:
                headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in call.scope["headers"]}
            manager = await endpoint.bridge.manager()
            response = await sdk_direct.answer(
                manager, endpoint.server, message, headers, call.scope, call.principal, endpoint
            )
            if response is not None:
                return response
    return await endpoint.bridge.handle(call.scope, call.body, call.principal, endpoint)


def principal_of(request: Any) -> Principal | None:
    """The principal behind an authenticated DRF request.

    A ``Principal`` from this package's authentication as is; a django-oauth-toolkit
    ``AccessToken`` (its stock ``OAuth2Authentication``) read into one.
    """
    principal = get_principal(request)
    if principal is not None:
        return principal
    auth = getattr(request, "auth", None)
    scope = getattr(auth, "scope", None)
    if auth is None or not isinstance(scope, str):
        return None
    granted = frozenset(scope.split())
    application = getattr(auth, "application", None)
    return Principal(
        user=getattr(auth, "user", None),
        granted_scopes=granted,
        application=application,
        client_id=getattr(application, "client_id", None),
        expires=getattr(auth, "expires", None),
        resource=_bound_resource(request, granted, getattr(auth, "resource", None)),
        token_id=str(getattr(auth, "pk", "") or ""),
    )


def _bound_resource(request: Any, granted: frozenset[str], resource: Any) -> str | None:
    """The rules ``MCPTokenAuthentication`` applies, for a token another class accepted.

    django-oauth-toolkit accepts registration (DCR) tokens, tokens bound to no resource and, by
    default, tokens for any URL prefix of this one; none of them may use this endpoint.
    """
    from oauth2_provider.settings import oauth2_settings

    try:
        return check_resource_binding(
            canonicalize_all(resource),
            resource_uri(_django_request(request)),
            registration_token=oauth2_settings.DCR_REGISTRATION_SCOPE in granted,
        )
    except InvalidToken as exc:
        raise drf_exceptions.AuthenticationFailed(exc.description) from exc


def asgi_scope(request: HttpRequest, body: bytes, principal: Principal) -> dict[str, Any]:
    """The ASGI scope the SDK sees: the request without credentials, the principal as ``scope["user"]``."""
    return _scope_and_headers(request, body, principal)[0]


_HEADER_NAMES: dict[str, tuple[str, bytes] | None] = {}
# META keys come from clients: the cache of their header names stays this small, in entries and in size.
_HEADER_NAMES_LIMIT = 512
_HEADER_NAME_CACHED_LENGTH = 64


def _header_name(key: str) -> tuple[str, bytes] | None:
    """The header a ``request.META`` key holds (lower case, as text and as bytes), or None for
    what the SDK does not see (credentials, the length, the server's own keys)."""
    if key in _HEADER_NAMES:
        return _HEADER_NAMES[key]
    name: str | None
    if key.startswith("HTTP_"):
        name = key[5:].replace("_", "-").lower()  # as request.headers reads them
        if name in _DROPPED_HEADERS:
            name = None
    elif key == "CONTENT_TYPE":
        name = "content-type"
    else:
        name = None  # CONTENT_LENGTH (set from the body read) and the server's own keys
    found = (name, name.encode("latin-1")) if name is not None else None
    if len(key) <= _HEADER_NAME_CACHED_LENGTH and len(_HEADER_NAMES) < _HEADER_NAMES_LIMIT:
        _HEADER_NAMES[key] = found
    return found


def _scope_and_headers(
    request: HttpRequest, body: bytes, principal: Principal
) -> tuple[dict[str, Any], dict[str, str]]:
    """``asgi_scope()``, and the same headers as text (names in lower case) for the SDK's checks."""
    headers: list[tuple[bytes, bytes]] = []
    text: dict[str, str] = {}
    for key, value in request.META.items():
        found = _header_name(key)
        if found is None:
            continue
        value = str(value)
        text[found[0]] = value
        headers.append((found[1], value.encode("latin-1")))
    length = str(len(body))
    text["content-length"] = length
    headers.append((b"content-length", length.encode("ascii")))
    effective = sorted(principal.effective_scopes)
    user = principal.user
    subject = getattr(user, "pk", None)
    token = AccessToken(
        # Not the bearer token: tool code has no business passing it on to other services.
        token=principal.token_id,
        client_id=principal.client_id or "",
        scopes=effective,
        expires_at=int(principal.expires.timestamp()) if principal.expires is not None else None,
        resource=principal.resource,
        subject=str(subject) if subject is not None else None,
    )
    server_port = request.META.get("SERVER_PORT") or "0"
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode("utf-8"),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": (request.META.get("REMOTE_ADDR") or "", 0),
        "server": (request.META.get("SERVER_NAME") or "", int(server_port) if str(server_port).isdigit() else 0),
        "user": AuthenticatedUser(token),
        "auth": AuthCredentials(effective),
    }, text


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _too_large(limit: int) -> JsonResponse:
    return jsonrpc_error(413, INVALID_REQUEST, f"The request body is larger than {limit} bytes.")


def _api_exception_response(request: HttpRequest, exc: drf_exceptions.APIException) -> HttpResponseBase:
    auth_header = getattr(exc, "auth_header", None)
    detail = str(exc.detail) if not isinstance(exc.detail, (list, dict)) else str(exc.default_detail)
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)) and not auth_header:
        failed = isinstance(exc, drf_exceptions.AuthenticationFailed)
        return unauthorized_response(
            request, error="invalid_token" if failed else None, description=detail if failed else None
        )
    unauthenticated = isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed))
    status = 401 if unauthenticated else exc.status_code
    if isinstance(exc.detail, dict) and "error" in exc.detail:
        body: dict[str, Any] = dict(exc.detail)  # already error / error_description (our exceptions)
    else:
        code = getattr(exc.detail, "code", None) or exc.default_code
        body = {"error": code, "error_description": detail}
    response = JsonResponse(body, status=status)
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait is not None:
        response["Retry-After"] = str(int(wait))
    response["Cache-Control"] = "no-store"
    return response


_NOT_HERE = (
    "This is an MCP endpoint (Model Context Protocol, Streamable HTTP): MCP clients send JSON-RPC "
    "messages to it with POST. Connect an MCP client to this URL; a browser has nothing to show here."
)


def _method_not_allowed(request: HttpRequest) -> HttpResponse:
    """405 with ``Allow``, and a sentence saying what this URL is (a browser's GET lands here)."""
    if "text/html" in request.headers.get("Accept", ""):
        body = f"<!doctype html><title>MCP endpoint</title><h1>405 Method Not Allowed</h1><p>{_NOT_HERE}</p>"
        response = HttpResponse(body, status=405, content_type="text/html; charset=utf-8")
    else:
        response = JsonResponse({"error": "method_not_allowed", "error_description": _NOT_HERE}, status=405)
    response["Allow"] = ALLOW
    return response
