"""One MCP endpoint: a server, its method defaults, and the scope decisions made for each call.

The same decisions are made twice: by the view from the parsed JSON-RPC body before the SDK
dispatches (so a refusal can be an HTTP 403 with a challenge), and by a middleware inside the SDK
for what it actually dispatches (the backstop: it refuses, as a JSON-RPC error, anything the view
did not clear, and filters listings to what the token may use).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.mcp import context
from django_mcp_scopes.mcp.bridge import SDKBridge
from django_mcp_scopes.mcp.database import handle_server_connections, registration_count
from django_mcp_scopes.mcp.listing import listing_scopes
from django_mcp_scopes.mcp.operations import (
    ALTERNATIVE_SCOPES_META_KEY,
    LISTING_METHODS,
    NAMED_METHODS,
    REQUIRED_SCOPES_META_KEY,
    Operation,
    coerce_method_scopes,
    declared_operations,
    find_operation,
    flush_declarations,
    listed_operation,
    needed_scopes,
    referenced_operation,
    undeclared_operations,
)
from django_mcp_scopes.requirements import ScopeRequirement

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from django_mcp_scopes.principal import Principal

logger = logging.getLogger("django_mcp_scopes.mcp")

INSUFFICIENT_SCOPE = -32003
"""JSON-RPC error code (implementation-defined server error range) of an insufficient-scope refusal."""

LEGACY_RESOURCE_NOT_FOUND = -32002
"""JSON-RPC error code of "resource not found" before 2026-07-28 (that revision uses -32602, SEP-2164)."""

_COMPLETION_REFS = {"ref/prompt": ("prompts/get", "name"), "ref/resource": ("resources/read", "uri")}


@dataclass(frozen=True)
class Decision:
    """What a call needs; ``requirement`` is ``None`` when a valid token is enough."""

    requirement: ScopeRequirement | None
    operation: Operation | None = None

    def allows(self, principal: Principal | None) -> bool:
        if principal is None:
            # Without a caller nothing scoped is open, whatever a dynamic requirement would say.
            scopes = self.operation.scopes if self.operation is not None else None
            scoped = scopes is not None and not scopes.any_token
            return not scoped and (self.requirement is None or self.requirement.is_empty)
        if self.requirement is None or self.requirement.is_empty:
            return True
        return self.requirement.is_satisfied_by(principal.effective_scopes)


@dataclass(eq=False)
class MCPEndpoint:
    """An ``MCPServer`` served by Django, with per-method default requirements."""

    server: MCPServer[Any]
    method_scopes: dict[str, ScopeRequirement] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from mcp.server.mcpserver import MCPServer

        if not isinstance(self.server, MCPServer):
            raise ImproperlyConfigured(f"An MCP endpoint serves an mcp.server.mcpserver.MCPServer, not {self.server!r}")
        if self.server._lowlevel_server.get_request_handler("subscriptions/listen") is not None:
            raise ImproperlyConfigured(
                f"MCPServer {self.server.name!r} serves subscriptions/listen, an endless stream that a stateless "
                "JSON endpoint cannot hold open. Create it with MCPServer(..., subscriptions=False)."
            )
        self.method_scopes = coerce_method_scopes(self.method_scopes)
        _refuse_undeclared(self)
        flush_declarations()
        self.bridge = _bridge_for(self.server)
        install_backstop(self.server)
        handle_server_connections(self.server)
        _endpoints.add(self)

    def needed_scopes(self) -> frozenset[str]:
        """Every scope the operations (static and declared) and method defaults name. No database query."""
        return frozenset(needed_scopes(self))

    def decide(self, method: str, params: Mapping[str, Any], principal: Principal | None) -> Decision:
        """What ``method`` with ``params`` needs. Raises whatever a dynamic requirement raises."""
        requirement = self.method_scopes.get(method)
        operation = None
        named_method = method
        if method == "completion/complete":
            ref = params.get("ref")
            if isinstance(ref, Mapping) and ref.get("type") in _COMPLETION_REFS:
                named_method, key = _COMPLETION_REFS[str(ref.get("type"))]
                params = {key: ref.get(key)}
                operation = referenced_operation(self.server, named_method, params)
        elif named_method in NAMED_METHODS:
            operation = find_operation(self.server, named_method, params)
        if operation is not None and operation.scopes is None and not mcp_scopes_settings.ALLOW_UNDECLARED_OPERATIONS:
            # Registered after the endpoint started, without a declaration: closed to everyone.
            raise UndeclaredOperation(f"The MCP {operation.kind} {operation.name!r} declares no scope requirement.")
        if operation is not None and operation.scopes is not None:
            if principal is None:
                arguments: Mapping[str, Any] = {}
                operation_requirement = operation.scopes.static
            else:
                arguments = _arguments(named_method, params, operation)
                operation_requirement = operation.resolve(arguments, principal)
            if operation_requirement is not None:
                requirement = operation_requirement if requirement is None else requirement & operation_requirement
        return Decision(requirement, operation)

    def needs_thread(self, method: str, params: Mapping[str, Any]) -> bool:
        """Whether ``decide(method, params, ...)`` runs a dynamic requirement (code that may query)."""
        operation = None
        if method == "completion/complete":
            ref = params.get("ref")
            if isinstance(ref, Mapping) and ref.get("type") in _COMPLETION_REFS:
                named_method, key = _COMPLETION_REFS[str(ref.get("type"))]
                operation = referenced_operation(self.server, named_method, {key: ref.get(key)})
        elif method in NAMED_METHODS:
            operation = find_operation(self.server, method, params)
        return operation is not None and operation.scopes is not None and operation.scopes.dynamic is not None

    def filter_listing(self, method: str, result: dict[str, Any], principal: Principal | None, version: str) -> None:
        """Keep what ``MCP_SCOPES["LISTING_POLICY"]`` shows ``principal`` in a listing result (wire
        form), and annotate what stays with the scopes it needs (``django_mcp_scopes.mcp.listing``)."""
        key, kind = LISTING_METHODS[method]
        items = result.get(key)
        if not isinstance(items, list):
            return
        policy = mcp_scopes_settings.LISTING_POLICY
        reachable = listing_scopes(policy, principal)
        effective = principal.effective_scopes if principal is not None else frozenset()
        kept = []
        annotated = False
        for item in items:
            if not isinstance(item, dict):
                continue
            operation = listed_operation(self.server, kind, item)
            static = operation.scopes.static if operation is not None and operation.scopes is not None else None
            if static is not None and not static.is_empty:
                if reachable is not None and not static.is_satisfied_by(reachable):
                    continue
                meta = dict(item.get("_meta") or {})
                meta[REQUIRED_SCOPES_META_KEY] = static.challenge_scopes(effective)
                if len(static.alternatives) > 1:
                    meta[ALTERNATIVE_SCOPES_META_KEY] = static.describe()
                item = {**item, "_meta": meta}
                annotated = True
            kept.append(item)
        result[key] = kept
        if (annotated or reachable is not None) and version in MODERN_PROTOCOL_VERSIONS:
            # What is listed (or the scopes its _meta names) depends on the token: no shared cache
            # may serve it to another caller.
            result["cacheScope"] = "private"


class UndeclaredOperation(ImproperlyConfigured):
    """An operation declares no requirement while ``ALLOW_UNDECLARED_OPERATIONS`` is off."""


def _refuse_undeclared(endpoint: MCPEndpoint) -> None:
    if mcp_scopes_settings.ALLOW_UNDECLARED_OPERATIONS:
        return
    missing = undeclared_operations(endpoint)
    if missing:
        raise UndeclaredOperation(undeclared_message(endpoint.server.name, missing))


def undeclared_message(server_name: str, missing: list[str]) -> str:
    return (
        f"MCP server {server_name!r} has operations that declare no scope requirement: {', '.join(missing)}. "
        "Declare what each needs with @requires_scopes(...), or @open_to_any_token for any valid token; "
        'give method defaults in method_scopes (ANY_VALID_TOKEN for any valid token). MCP_SCOPES["'
        'ALLOW_UNDECLARED_OPERATIONS"] = True restores the old "undeclared means open" behaviour.'
    )


_endpoints: weakref.WeakSet[MCPEndpoint] = weakref.WeakSet()


def registered_endpoints() -> list[MCPEndpoint]:
    """Every endpoint this process created (URLconfs create them), for the admin and diagnostics."""
    return sorted(_endpoints, key=lambda endpoint: endpoint.server.name)


def operations_requiring(scope: str) -> list[tuple[MCPEndpoint, str, str]]:
    """``(endpoint, kind, name)`` of every operation and method default that names ``scope``.

    ``kind`` is ``tool``, ``resource``, ``resource_template``, ``prompt`` or ``method`` (a
    method-level default such as ``tools/list``). Scopes a dynamic requirement ``declares`` count.
    """
    found: list[tuple[MCPEndpoint, str, str]] = []
    for endpoint in registered_endpoints():
        for operation in declared_operations(endpoint.server):
            if operation.scopes is not None and scope in operation.scopes.names:
                found.append((endpoint, operation.kind, operation.name))
        for method, requirement in sorted(endpoint.method_scopes.items()):
            if scope in requirement.names:
                found.append((endpoint, "method", method))
    return found


def mounted_endpoints(urlconf: str | None = None) -> list[tuple[str, MCPEndpoint]]:
    """``(path, endpoint)`` of every MCP endpoint a URLconf serves, in URLconf order.

    ``urlconf`` defaults to the one of the current request (``ROOT_URLCONF`` outside a request).
    An endpoint mounted at several paths appears once per path. No database query.
    """
    from django.urls import get_resolver, get_urlconf

    found: list[tuple[str, MCPEndpoint]] = []
    _collect_endpoints(get_resolver(urlconf or get_urlconf()).url_patterns, "/", found)
    return found


def _collect_endpoints(patterns: Any, prefix: str, found: list[tuple[str, MCPEndpoint]]) -> None:
    from django.urls import URLResolver

    for pattern in patterns:
        route = prefix + _route(pattern.pattern)
        if isinstance(pattern, URLResolver):
            _collect_endpoints(pattern.url_patterns, route, found)
            continue
        endpoint = getattr(pattern, "mcp_endpoint", None) or getattr(pattern.callback, "mcp_endpoint", None)
        if isinstance(endpoint, MCPEndpoint):
            found.append((route, endpoint))


def _route(pattern: Any) -> str:
    # A path() route as written; a re_path() regex without its anchors.
    from django.urls.resolvers import RegexPattern

    text = str(pattern)
    if isinstance(pattern, RegexPattern):
        text = text.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
    return text


def operation_description(server: MCPServer[Any], kind: str, name: str) -> str:
    """The description a tool, resource, resource template or prompt was registered with ("" if none)."""
    item: Any
    if kind == "tool":
        item = server._tool_manager.get_tool(name)
    elif kind == "prompt":
        item = server._prompt_manager.get_prompt(name)
    elif kind == "resource":
        item = server._resource_manager._resources.get(name)
    elif kind == "resource_template":
        item = server._resource_manager._templates.get(name)
    else:
        item = None
    description = getattr(item, "description", None)
    return description if isinstance(description, str) else ""


def _arguments(method: str, params: Mapping[str, Any], operation: Operation) -> Mapping[str, Any]:
    if method == "resources/read":
        return {"uri": params.get("uri"), **operation.template_arguments}
    arguments = params.get("arguments")
    return arguments if isinstance(arguments, Mapping) else {}


def _bridge_for(server: Any) -> SDKBridge:
    # One bridge per server, however many views or URL patterns serve it.
    bridge = getattr(server, "_django_mcp_scopes_bridge", None)
    if bridge is None:
        bridge = SDKBridge(server)
        server._django_mcp_scopes_bridge = bridge
    return bridge


class _Backstop:
    """SDK middleware: refuses what the view did not clear, filters listings by the caller's scopes."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._registrations = -1

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        count = registration_count(self.server)
        if count != self._registrations:
            # Something was registered since the endpoint started: its sync functions too.
            handle_server_connections(self.server)
            self._registrations = count
        endpoint: MCPEndpoint | None = context._endpoint.get()
        principal = context.get_principal()
        method = ctx.method
        if endpoint is None or endpoint.server is not self.server:
            # Served some other way (the SDK's own app, stdio): scoped operations stay closed.
            endpoint = MCPEndpoint.__new__(MCPEndpoint)
            endpoint.server = self.server
            endpoint.method_scopes = {}
        cleared = context._cleared.get()
        decided_by_view = (
            cleared is not None
            and cleared[0] is endpoint
            and cleared[1] == method
            and cleared[2] == ctx.request_id
            and cleared[3] == context.decided_params(ctx.params)
        )
        if ctx.request_id is not None and not decided_by_view:
            # Not the request the endpoint's view has just decided and allowed: decide it here.
            params = ctx.params if isinstance(ctx.params, Mapping) else {}
            try:
                decision = endpoint.decide(method, params, principal)
            except Exception:
                logger.exception("The scope requirement of %s could not be evaluated", method)
                raise MCPError(code=INSUFFICIENT_SCOPE, message="Insufficient scope") from None
            if not decision.allows(principal):
                logger.warning("MCP backstop refused %s: the request did not pass the endpoint's scope check", method)
                data: dict[str, Any] = {"error": "insufficient_scope"}
                if decision.requirement is not None and not decision.requirement.is_empty:
                    data["required_scopes"] = decision.requirement.challenge_scopes()
                raise MCPError(code=INSUFFICIENT_SCOPE, message="Insufficient scope", data=data)
        if method == "prompts/get":
            _check_prompt_arguments(self.server, ctx.params)
        try:
            result = await call_next(ctx)
        except MCPError as exc:
            raise _for_protocol_version(exc, method, ctx.protocol_version) from None
        except ValueError as exc:
            if method == "prompts/get" and isinstance(exc.__cause__, ValidationError):
                raise MCPError(code=INVALID_PARAMS, message=f"Invalid arguments: {exc}") from None
            raise
        if method in LISTING_METHODS and isinstance(result, dict):
            endpoint.filter_listing(method, result, principal, ctx.protocol_version)
        return result


def _check_prompt_arguments(server: Any, params: Any) -> None:
    """The SDK reports an unknown prompt or a missing argument as a bare ValueError (code 0); the spec
    says -32602."""
    params = params if isinstance(params, Mapping) else {}
    name = params.get("name")
    prompt = server._prompt_manager.get_prompt(name) if isinstance(name, str) else None
    if prompt is None:
        raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name!r}.")
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, Mapping):
        raise MCPError(code=INVALID_PARAMS, message="The prompt's arguments must be an object.")
    missing = sorted(argument.name for argument in prompt.arguments or () if argument.required)
    missing = [argument for argument in missing if argument not in arguments]
    if missing:
        raise MCPError(code=INVALID_PARAMS, message=f"Missing required arguments: {', '.join(missing)}.")


def _for_protocol_version(exc: MCPError, method: str, version: str | None) -> MCPError:
    """A resource the SDK did not find (-32602 with the URI, SEP-2164) as the client's revision names it."""
    data = exc.error.data
    not_found = method == "resources/read" and exc.error.code == INVALID_PARAMS and isinstance(data, Mapping)
    if not_found and "uri" in data and version not in MODERN_PROTOCOL_VERSIONS:
        return MCPError(code=LEGACY_RESOURCE_NOT_FOUND, message=exc.error.message, data=data)
    return exc


def install_backstop(server: Any) -> None:
    """Add the backstop to ``server``'s middleware once (innermost, so it sees the final method)."""
    middleware = server._lowlevel_server.middleware
    if not any(isinstance(item, _Backstop) for item in middleware):
        middleware.append(_Backstop(server))
