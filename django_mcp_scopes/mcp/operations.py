"""Scopes per MCP operation: declared next to the tool, resource or prompt they guard.

::

    @server.tool()
    @requires_scopes("entries:write")
    def create_entry(title: str) -> str: ...

A requirement is all of the named scopes, any one of several sets (``any_of=``), or decided from
the call's arguments (``when=`` / a callable): ``requires_scopes("entries:write", when=lambda
arguments, principal: "entries:publish" if arguments.get("public") else None)`` needs
``entries:write`` always and ``entries:publish`` too for a public entry. Method-level defaults
(what ``tools/list`` or ``initialize`` needs) are given to the view (``method_scopes=``).

Least privilege: an operation that declares nothing is refused at start-up (``MCPEndpoint``, system
check ``django_mcp_scopes.E201``). One any valid token may use says so with ``@open_to_any_token``;
a method default open to any token is ``method_scopes={"tools/list": ANY_VALID_TOKEN}``.
``MCP_SCOPES["ALLOW_UNDECLARED_OPERATIONS"] = True`` restores "undeclared means any valid token".

Requirements are read when a request arrives, so the decorator works on either side of
``@server.tool()``. The SDK keeps its registries private; the lookups below are the one place that
reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from django.core.exceptions import ImproperlyConfigured

from django_mcp_scopes.requirements import ScopeRequirement, coerce_requirement

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from django_mcp_scopes.principal import Principal

__all__ = [
    "ALTERNATIVE_SCOPES_META_KEY",
    "ANY_VALID_TOKEN",
    "LISTING_METHODS",
    "REQUIRED_SCOPES_META_KEY",
    "Operation",
    "OperationScopes",
    "declared_operations",
    "endpoint_scopes",
    "find_operation",
    "open_to_any_token",
    "requires_scopes",
    "undeclared_operations",
]

REQUIRED_SCOPES_META_KEY = "io.github.django-mcp-scopes/requiredScopes"
"""``_meta`` key of a listed tool/resource/prompt: the scopes a 403 for it would name (sorted)."""

ALTERNATIVE_SCOPES_META_KEY = "io.github.django-mcp-scopes/alternativeScopes"
"""``_meta`` key present when a requirement has alternatives: every acceptable set, in order."""

_ATTRIBUTE = "__mcp_scopes__"

DynamicRequirement = Callable[[Mapping[str, Any], "Principal"], Any]
"""``(arguments, principal) -> requirement or None``; any spelling ``coerce_requirement`` reads."""

OperationKind = Literal["tool", "resource", "resource_template", "prompt"]

# Methods that name one operation in their params, and the key that holds the name.
NAMED_METHODS: Mapping[str, tuple[str, OperationKind]] = {
    "tools/call": ("name", "tool"),
    "prompts/get": ("name", "prompt"),
    "resources/read": ("uri", "resource"),
}

LISTING_METHODS: Mapping[str, tuple[str, OperationKind]] = {
    "tools/list": ("tools", "tool"),
    "prompts/list": ("prompts", "prompt"),
    "resources/list": ("resources", "resource"),
    "resources/templates/list": ("resourceTemplates", "resource_template"),
}

DECLARED_METHODS = (*LISTING_METHODS, "completion/complete")
"""Method defaults an endpoint must declare (when its server serves the method): least privilege."""

ANY_VALID_TOKEN = ScopeRequirement((frozenset(),))
"""``method_scopes`` value of a method any valid token may call, declared as such."""

LISTINGS_FOR_ANY_TOKEN: Mapping[str, ScopeRequirement] = MappingProxyType(
    dict.fromkeys(LISTING_METHODS, ANY_VALID_TOKEN)
)
"""``method_scopes`` opening the four listings to any valid token (each still shows only what the
``LISTING_POLICY`` lets that token see): ``mcp_path("mcp", server, method_scopes=LISTINGS_FOR_ANY_TOKEN)``."""

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class OperationScopes:
    """What one operation needs: a static requirement, a dynamic one, or both (all of them)."""

    static: ScopeRequirement | None = None
    dynamic: DynamicRequirement | None = None
    declares: frozenset[str] = frozenset()
    any_token: bool = False
    """Declared open to any valid token (``@open_to_any_token``)."""

    @property
    def names(self) -> frozenset[str]:
        """Every scope this operation may ask for (static ones and those the dynamic form declares)."""
        static = self.static.names if self.static is not None else frozenset()
        return static | self.declares

    def resolve(self, arguments: Mapping[str, Any], principal: Principal) -> ScopeRequirement | None:
        """The requirement for this call. ``None``: nothing beyond a valid token."""
        requirement = self.static
        if self.dynamic is not None:
            extra = self.dynamic(arguments, principal)
            if extra is not None and extra != ():
                extra_requirement = coerce_requirement(extra)
                requirement = extra_requirement if requirement is None else requirement & extra_requirement
        return requirement


def requires_scopes(
    *scopes: str | ScopeRequirement | DynamicRequirement,
    any_of: Iterable[Iterable[str]] | None = None,
    when: DynamicRequirement | None = None,
    declares: Iterable[str] = (),
) -> Callable[[_F], _F]:
    """Declare what a tool, resource (or resource template) or prompt function needs.

    - ``requires_scopes("a", "b")``: all of them (``"a b"`` and a ``ScopeRequirement`` work too);
    - ``requires_scopes(any_of=[["a"], ["b", "c"]])``: any one of the sets;
    - ``requires_scopes(when=fn)`` or ``requires_scopes(fn)``: ``fn(arguments, principal)`` returns
      a requirement for this call (or ``None``); combined (all of) with any static part.
      ``declares=`` names the scopes ``fn`` may return, so they are declared and advertised.

    Every static scope and every declared one is passed to ``declare_scope`` so
    ``manage.py mcp_scopes sync`` knows it.
    """
    static: ScopeRequirement | None = None
    dynamic = when
    names: list[str] = []
    for item in scopes:
        if isinstance(item, ScopeRequirement):
            static = item if static is None else static & item
        elif isinstance(item, str):
            names.extend(item.split())
        elif callable(item):
            if dynamic is not None:
                raise ImproperlyConfigured("requires_scopes() takes one dynamic requirement.")
            dynamic = item
        else:
            raise ImproperlyConfigured(f"requires_scopes() cannot read {item!r}.")
    if names:
        all_of = ScopeRequirement.all_of(*names)
        static = all_of if static is None else static & all_of
    if any_of is not None:
        alternatives = ScopeRequirement.any_of(*[list(alternative) for alternative in any_of])
        static = alternatives if static is None else static & alternatives
    if static is not None and static.is_empty:
        raise ImproperlyConfigured(
            f"requires_scopes() got a requirement any token meets ({static.describe()}); "
            "use @open_to_any_token for an operation any valid token may use."
        )
    if static is None and dynamic is None:
        raise ImproperlyConfigured(
            "requires_scopes() needs at least one scope, any_of= or a dynamic requirement; "
            "use @open_to_any_token for an operation any valid token may use."
        )
    declared = frozenset(coerce_requirement(list(declares)).names) if declares else frozenset()
    operation_scopes = OperationScopes(static=static, dynamic=dynamic, declares=declared)
    _declare(operation_scopes.names)

    def decorator(fn: _F) -> _F:
        setattr(fn, _ATTRIBUTE, operation_scopes)
        return fn

    return decorator


def open_to_any_token(fn: _F) -> _F:
    """Declare that any valid token may use this tool, resource (template) or prompt.

    Without a declaration an operation is refused at start-up (least privilege); this one says
    on purpose that no scope is needed. The admin's endpoint page shows it as declared open.
    """
    setattr(fn, _ATTRIBUTE, OperationScopes(any_token=True))
    return fn


_pending: set[str] = set()


def _declare(names: Iterable[str]) -> None:
    """``declare_scope()`` each name, or keep them until Django's app registry is ready."""
    from django.apps import apps

    _pending.update(names)
    if apps.ready:
        flush_declarations()


def flush_declarations() -> None:
    """Declare what was named before Django was set up (a tools module imported early)."""
    from django_mcp_scopes.declarations import declare_scope

    while _pending:
        declare_scope(_pending.pop(), source="mcp")


def scopes_of(fn: Any) -> OperationScopes | None:
    """The ``OperationScopes`` declared on a function, if any."""
    value = getattr(fn, _ATTRIBUTE, None)
    return value if isinstance(value, OperationScopes) else None


@dataclass(frozen=True)
class Operation:
    """One tool, resource, resource template or prompt of a server, with what it needs."""

    kind: OperationKind
    name: str
    scopes: OperationScopes | None
    template_arguments: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, arguments: Mapping[str, Any], principal: Principal) -> ScopeRequirement | None:
        if self.scopes is None:
            return None
        return self.scopes.resolve(arguments, principal)


def find_operation(server: MCPServer[Any], method: str, params: Mapping[str, Any]) -> Operation | None:
    """The operation a ``tools/call`` / ``prompts/get`` / ``resources/read`` names, or ``None`` if unknown.

    Raises ``LookupError`` when a resource URI matches a template but fails its path-safety policy
    (the SDK refuses such a read as unknown too).
    """
    key, kind = NAMED_METHODS[method]
    name = params.get(key)
    if not isinstance(name, str):
        return None
    if kind == "tool":
        tool = server._tool_manager.get_tool(name)
        return None if tool is None else Operation("tool", name, scopes_of(tool.fn))
    if kind == "prompt":
        prompt = server._prompt_manager.get_prompt(name)
        return None if prompt is None else Operation("prompt", name, scopes_of(prompt.fn))
    resources = server._resource_manager
    resource = resources._resources.get(name)
    if resource is not None:
        return Operation("resource", name, scopes_of(getattr(resource, "fn", None)))
    from mcp.server.mcpserver.resources.templates import ResourceSecurityError

    for template in resources._templates.values():
        try:
            extracted = template.matches(name)
        except ResourceSecurityError:
            return None
        if extracted is not None:
            return Operation("resource_template", template.uri_template, scopes_of(template.fn), extracted)
    return None


def referenced_operation(server: MCPServer[Any], method: str, params: Mapping[str, Any]) -> Operation | None:
    """The operation a ``completion/complete`` reference names (``method`` is the one it stands for).

    A ``ref/resource`` names a template by its ``uriTemplate`` text, which does not always match
    the template itself (``search://q{?term}``): look it up by that text before matching it as a URI.
    """
    if method == "resources/read":
        uri = params.get("uri")
        template = server._resource_manager._templates.get(uri) if isinstance(uri, str) else None
        if template is not None:
            return Operation("resource_template", template.uri_template, scopes_of(template.fn))
    return find_operation(server, method, params)


def declared_operations(server: MCPServer[Any]) -> list[Operation]:
    """Every tool, resource, resource template and prompt of ``server``, with its requirement."""
    operations = [Operation("tool", tool.name, scopes_of(tool.fn)) for tool in server._tool_manager.list_tools()]
    operations += [
        Operation("resource", str(resource.uri), scopes_of(getattr(resource, "fn", None)))
        for resource in server._resource_manager.list_resources()
    ]
    operations += [
        Operation("resource_template", template.uri_template, scopes_of(template.fn))
        for template in server._resource_manager.list_templates()
    ]
    operations += [
        Operation("prompt", prompt.name, scopes_of(prompt.fn)) for prompt in server._prompt_manager.list_prompts()
    ]
    return operations


def listed_operation(server: MCPServer[Any], kind: OperationKind, item: Mapping[str, Any]) -> Operation | None:
    """The operation behind one entry of a listing result (wire form)."""
    if kind == "tool":
        tool = server._tool_manager.get_tool(str(item.get("name")))
        return None if tool is None else Operation("tool", tool.name, scopes_of(tool.fn))
    if kind == "prompt":
        prompt = server._prompt_manager.get_prompt(str(item.get("name")))
        return None if prompt is None else Operation("prompt", prompt.name, scopes_of(prompt.fn))
    if kind == "resource":
        uri = str(item.get("uri"))
        resource = server._resource_manager._resources.get(uri)
        return None if resource is None else Operation("resource", uri, scopes_of(getattr(resource, "fn", None)))
    uri_template = str(item.get("uriTemplate"))
    template = server._resource_manager._templates.get(uri_template)
    return None if template is None else Operation("resource_template", uri_template, scopes_of(template.fn))


def endpoint_scopes(view_or_server: Any) -> set[str]:
    """The scopes an endpoint's protected-resource metadata advertises (``scopes_supported``).

    The advertised, active scopes that grant (themselves or through the hierarchy) at least one
    scope its operations (``declares=`` included) and method defaults need, as
    ``django_mcp_scopes.resources.scopes_supported`` computes for the endpoint's metadata document.
    Accepts an ``MCPServer``, a view made by ``MCPView.as_view()`` (or its class with ``server``
    set) or a pattern from ``mcp_path()``.
    """
    from django_mcp_scopes.resources import ProtectedResource, scopes_supported

    needed = frozenset(needed_scopes(view_or_server))
    return set(scopes_supported(ProtectedResource(scopes=lambda: needed)))


def needed_scopes(view_or_server: Any) -> set[str]:
    """Every scope named by an endpoint's operations and method defaults, advertised or not."""
    server, method_scopes = _endpoint_parts(view_or_server)
    names: set[str] = set()
    for operation in declared_operations(server):
        if operation.scopes is not None:
            names |= operation.scopes.names
    for requirement in method_scopes.values():
        names |= requirement.names
    return names


def _endpoint_parts(value: Any) -> tuple[MCPServer[Any], Mapping[str, ScopeRequirement]]:
    from mcp.server.mcpserver import MCPServer

    from django_mcp_scopes.mcp.endpoint import MCPEndpoint

    if isinstance(value, MCPServer):
        return value, {}
    if isinstance(value, MCPEndpoint):
        return value.server, value.method_scopes
    for candidate in (value, getattr(value, "callback", None), getattr(value, "view_class", None)):
        endpoint = getattr(candidate, "mcp_endpoint", None)
        if isinstance(endpoint, MCPEndpoint):
            return endpoint.server, endpoint.method_scopes
    server = getattr(value, "server", None)
    if isinstance(value, type) and isinstance(server, MCPServer):
        return server, coerce_method_scopes(getattr(value, "method_scopes", None))
    raise TypeError(f"endpoint_scopes() needs an MCPServer, an MCPView or an mcp_path() pattern; got {value!r}.")


def undeclared_operations(view_or_server: Any) -> list[str]:
    """``"tool echo"``, ``"method tools/list"``, ...: what declares no requirement, named for a person.

    Operations without ``@requires_scopes`` or ``@open_to_any_token``, and the method defaults
    (``DECLARED_METHODS`` the server serves) missing from ``method_scopes``.
    """
    server, method_scopes = _endpoint_parts(view_or_server)
    missing = [
        f"{operation.kind.replace('_', ' ')} {operation.name}"
        for operation in declared_operations(server)
        if operation.scopes is None
    ]
    lowlevel = server._lowlevel_server
    missing += [
        f"method {method}"
        for method in DECLARED_METHODS
        if method not in method_scopes and lowlevel.get_request_handler(method) is not None
    ]
    return missing


def coerce_method_scopes(value: Mapping[str, Any] | None) -> dict[str, ScopeRequirement]:
    """Read ``method_scopes={"tools/list": "entries:read", ...}``."""
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured("method_scopes must map JSON-RPC method names to scope requirements.")
    requirements = {}
    for method, requirement in value.items():
        if method in NAMED_METHODS:
            raise ImproperlyConfigured(
                f"method_scopes cannot hold {method!r}: declare what each tool, resource or prompt needs "
                "with @requires_scopes next to it."
            )
        requirements[str(method)] = coerce_requirement(requirement)
    _declare(set().union(*(requirement.names for requirement in requirements.values())))
    return requirements
