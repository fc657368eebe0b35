"""The scope map: every protected operation of this site, what each scope grants, and what a
deactivation would break. Read by the admin's scope map pages; no request path uses it.

Protected operations come from two places:
- every mounted MCP endpoint (``mounted_endpoints``): its tools, resources, resource templates,
  prompts and method defaults;
- every other view the URLconf resolves to that the package protects: DRF views whose
  ``permission_classes`` hold this package's permissions (composed with ``&``, ``|``, ``~`` too),
  class-based views with ``ScopesRequiredMixin`` / ``TokenRequiredMixin`` and function views
  with ``@scopes_required`` / ``@require_token``, one row per HTTP method the view serves.

What a requirement needs is its static part. A dynamic part (``get_required_scopes()``, a
dynamic MCP requirement) is shown as such, with the scopes it declares it may ask for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import URLResolver, get_resolver, get_urlconf

from django_mcp_scopes.registry import Snapshot
from django_mcp_scopes.requirements import ScopeRequirement

_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass
class ProtectedOperation:
    """One operation a token must be allowed to use, with its requirement in plain terms."""

    source: str  # "MCP", "DRF" or "Django"
    endpoint: str  # the URL pattern, "/mcp", "/api/entries"
    method: str  # HTTP method ("POST" for every MCP operation, "*" when the view takes any)
    kind: str  # tool, resource, resource template, prompt, MCP method, view
    name: str  # the tool's name, "tools/list", the view's class or function name
    alternatives: list[frozenset[str]] = field(default_factory=list)  # any one suffices; [] no scope
    dynamic: bool = False  # more may be asked for depending on the request
    declares: frozenset[str] = frozenset()  # names a dynamic part declares it may ask for
    formula: str = ""  # how the requirement was written (composed DRF permissions)
    problem: str = ""  # why it could not be read, when it could not

    @property
    def names(self) -> frozenset[str]:
        found: set[str] = set(self.declares)
        for alternative in self.alternatives:
            found |= alternative
        return frozenset(found)

    @property
    def any_token(self) -> bool:
        """Any valid token passes the static part."""
        return any(not alternative for alternative in self.alternatives) or (
            not self.alternatives and not self.dynamic and not self.problem
        )

    @property
    def key(self) -> str:
        return f"{self.source} {self.method} {self.endpoint} {self.kind} {self.name}"

    def describe(self) -> str:
        """``"a and b, or c"``; what the static part needs."""
        if self.problem:
            return self.problem
        if self.any_token and not self.dynamic:
            return "any valid token"
        parts = [" and ".join(sorted(alternative)) for alternative in self.alternatives if alternative]
        text = ", or ".join(parts)
        if self.dynamic:
            more = f" (may ask for {', '.join(sorted(self.declares))})" if self.declares else ""
            text = f"{text}; more depending on the request{more}" if text else f"depends on the request{more}"
        return text


# MCP endpoints --------------------------------------------------------------------------------

_MCP_KINDS = {
    "tool": "tool",
    "resource": "resource",
    "resource_template": "resource template",
    "prompt": "prompt",
}


def _alternatives(requirement: ScopeRequirement | None) -> list[frozenset[str]]:
    return [] if requirement is None else [frozenset(alternative) for alternative in requirement.alternatives]


def mcp_operations(urlconf: str | None = None) -> list[ProtectedOperation]:
    from django_mcp_scopes.mcp.endpoint import mounted_endpoints
    from django_mcp_scopes.mcp.operations import declared_operations

    found: list[ProtectedOperation] = []
    for route, endpoint in mounted_endpoints(urlconf):
        for method, requirement in sorted(endpoint.method_scopes.items()):
            found.append(ProtectedOperation("MCP", route, "POST", "MCP method", method, _alternatives(requirement)))
        for operation in declared_operations(endpoint.server):
            kind = _MCP_KINDS.get(operation.kind, operation.kind)
            scopes = operation.scopes
            if scopes is None:
                found.append(
                    ProtectedOperation("MCP", route, "POST", kind, operation.name, problem="declares no requirement")
                )
                continue
            row = ProtectedOperation(
                "MCP",
                route,
                "POST",
                kind,
                operation.name,
                [frozenset()] if scopes.any_token else _alternatives(scopes.static),
                dynamic=scopes.dynamic is not None,
                declares=scopes.declares,
            )
            found.append(row)
    return found


# Views ----------------------------------------------------------------------------------------


def _route(pattern: Any) -> str:
    from django_mcp_scopes.mcp.endpoint import _route as endpoint_route

    return endpoint_route(pattern)


def _served_methods(view_class: type, allowed: Iterable[str] | None = None) -> list[str]:
    names = [name.upper() for name in getattr(view_class, "http_method_names", ())]
    methods = [m for m in _HTTP_METHODS if m in names and callable(getattr(view_class, m.lower(), None))]
    if allowed is not None:
        allowed = {m.upper() for m in allowed}
        methods = [m for m in methods if m in allowed]
    return methods


def _permission_name(permission: Any) -> str:
    return getattr(permission, "__name__", type(permission).__name__)


def _evaluate(permission: Any, view: Any, method: str) -> tuple[ScopeRequirement | None, str, bool, bool]:
    """``(requirement, formula, dynamic, ours)`` of one (possibly composed) DRF permission.

    ``requirement`` None: no scope condition can be stated (another permission, a negation).
    """
    from rest_framework.permissions import OperandHolder, SingleOperandHolder

    from django_mcp_scopes.permissions import HasScopes, HasValidToken, _ScopePermission

    if isinstance(permission, OperandHolder):
        left = _evaluate(permission.op1_class, view, method)
        right = _evaluate(permission.op2_class, view, method)
        operator = getattr(permission.operator_class, "__name__", "")
        formula = f"({left[1]} {'&' if operator == 'AND' else '|'} {right[1]})"
        dynamic = left[2] or right[2]
        ours = left[3] or right[3]
        if operator == "AND":
            if left[0] is None or right[0] is None:
                return left[0] or right[0], formula, dynamic, ours
            return left[0] & right[0], formula, dynamic, ours
        if left[0] is None or right[0] is None:
            return None, formula, dynamic, ours
        return left[0] | right[0], formula, dynamic, ours
    if isinstance(permission, SingleOperandHolder):
        inner = _evaluate(permission.op1_class, view, method)
        negated = " or ".join(" and ".join(sorted(alt)) for alt in inner[0].alternatives) if inner[0] else ""
        return None, f"~{inner[1]}" + (f"[{negated}]" if negated else ""), inner[2], inner[3]
    name = _permission_name(permission)
    if not (isinstance(permission, type) and issubclass(permission, _ScopePermission)):
        return None, name, False, False
    if issubclass(permission, HasValidToken):
        return ScopeRequirement((frozenset(),)), name, False, True
    if issubclass(permission, HasScopes) and callable(getattr(view, "get_required_scopes", None)):
        return None, f"{name}(get_required_scopes)", True, True
    requirement = permission().get_requirement(SimpleNamespace(method=method), view)
    if requirement is None:
        return ScopeRequirement(()), f"{name}: refused for {method}", False, True
    return requirement, name, False, True


def _drf_rows(route: str, callback: Any, view_class: type) -> list[ProtectedOperation]:
    permissions = list(getattr(view_class, "permission_classes", ()) or ())
    actions = getattr(callback, "actions", None)
    methods = _served_methods(view_class) if not actions else [m.upper() for m in actions if m.upper() != "OPTIONS"]
    rows = []
    name = view_class.__name__
    for method in methods:
        view = view_class()
        if actions:
            view.action = actions.get(method.lower())  # type: ignore[attr-defined]
        requirement: ScopeRequirement | None = None
        formulas, dynamic, ours, problem = [], False, False, ""
        try:
            # DRF requires every listed permission: the list is one AND.
            for permission in permissions:
                found, formula, is_dynamic, is_ours = _evaluate(permission, view, method)
                formulas.append(formula)
                dynamic, ours = dynamic or is_dynamic, ours or is_ours
                if found is not None:
                    requirement = found if requirement is None else requirement & found
        except (ImproperlyConfigured, Exception) as exc:  # a misdeclared view still gets a row
            problem = f"cannot be read: {exc}"
            ours = True
        if not ours:
            continue
        alternatives = _alternatives(requirement)
        if requirement is not None and not requirement.alternatives:
            problem = problem or "refused for every token (the view declares nothing for this method)"
        rows.append(
            ProtectedOperation(
                "DRF", route, method, "view", name, alternatives, dynamic, formula=" & ".join(formulas), problem=problem
            )
        )
    return rows


def _django_rows(route: str, callback: Any) -> list[ProtectedOperation]:
    from django_mcp_scopes.authentication import TokenRequiredMixin
    from django_mcp_scopes.permissions import ScopesRequiredMixin, as_requirement

    view_class = getattr(callback, "view_class", None)
    if view_class is not None and issubclass(view_class, TokenRequiredMixin):
        rows = []
        for method in _served_methods(view_class):
            row = ProtectedOperation("Django", route, method, "view", view_class.__name__)
            if issubclass(view_class, ScopesRequiredMixin):
                if view_class.get_required_scopes is not ScopesRequiredMixin.get_required_scopes:
                    row.dynamic = True
                    row.formula = "get_required_scopes()"
                else:
                    try:
                        view = view_class()
                        view.request = SimpleNamespace(method=method)  # type: ignore[attr-defined]
                        declared = view.get_required_scopes()
                        if declared is None:
                            row.problem = f"{method} is not listed in required_scopes_by_method (405)"
                        else:
                            row.alternatives = _alternatives(as_requirement(declared))
                    except Exception as exc:
                        row.problem = f"cannot be read: {exc}"
            rows.append(row)
        return rows
    required = getattr(callback, "mcp_required_scopes", None)
    if isinstance(required, ScopeRequirement):
        name = getattr(callback, "__name__", "view")
        return [ProtectedOperation("Django", route, "*", "view", name, _alternatives(required))]
    if getattr(callback, "mcp_scopes_protected", False) is True and view_class is None:
        name = getattr(callback, "__name__", "view")
        return [ProtectedOperation("Django", route, "*", "view", name, [frozenset()])]
    return []


def view_operations(urlconf: str | None = None) -> list[ProtectedOperation]:
    """Every DRF and Django view of the URLconf that this package protects, one row per method."""
    from django.urls import URLPattern

    found: list[ProtectedOperation] = []
    seen: set[tuple[int, str]] = set()

    def walk(patterns: Any, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + _route(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
                continue
            if not isinstance(pattern, URLPattern):
                continue
            callback = pattern.callback
            if getattr(pattern, "mcp_endpoint", None) is not None or getattr(callback, "mcp_endpoint", None):
                continue  # an MCP endpoint: its operations are listed one by one
            target = getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback
            if (id(target), route) in seen:
                continue
            seen.add((id(target), route))
            view_class = getattr(callback, "cls", None)
            if view_class is not None and hasattr(view_class, "permission_classes"):
                found.extend(_drf_rows(route, callback, view_class))
            else:
                found.extend(_django_rows(route, callback))

    walk(get_resolver(urlconf or get_urlconf()).url_patterns, "/")
    return found


def protected_operations(urlconf: str | None = None) -> list[ProtectedOperation]:
    """MCP operations first (by endpoint, in declaration order), then views in URLconf order."""
    return mcp_operations(urlconf) + view_operations(urlconf)


# What each scope grants, and what a deactivation breaks -------------------------------------


@dataclass
class Impact:
    """What deactivating one scope would do to the protected operations and the hierarchy."""

    name: str
    already_inactive: bool
    refused_to_everyone: list[ProtectedOperation]
    lost_by_holders: list[tuple[ProtectedOperation, list[str]]]  # (operation, scopes whose holders lose it)
    may_need: list[ProtectedOperation]  # dynamic requirements that declare the scope
    lost_grants: list[tuple[str, list[str]]]  # (active scope, what it would no longer grant)


def _usable(alternative: frozenset[str], graph: Snapshot) -> bool:
    return all(name in graph.scopes for name in alternative)


def _grants(scope: str, alternatives: list[frozenset[str]], graph: Snapshot) -> bool:
    """Whether a token holding only ``scope`` passes the static requirement."""
    closure = graph.closures.get(scope)
    if closure is None:
        return False
    return any(alternative and alternative <= closure for alternative in alternatives)


def deactivation_impact(
    name: str,
    operations: list[ProtectedOperation],
    rows: list[Mapping[str, Any]],
    edges: list[tuple[str, str]],
) -> Impact:
    """Compare the hierarchy now with the same hierarchy with ``name`` inactive."""
    before = Snapshot.build("before", rows, edges)
    after_rows = [{**row, "is_active": False} if row["name"] == name else row for row in rows]
    after = Snapshot.build("after", after_rows, edges)
    everyone: list[ProtectedOperation] = []
    holders: list[tuple[ProtectedOperation, list[str]]] = []
    may_need: list[ProtectedOperation] = []
    for operation in operations:
        if operation.problem:
            continue
        if operation.dynamic and name in operation.declares:
            may_need.append(operation)
        alternatives = [alternative for alternative in operation.alternatives if alternative]
        if not alternatives or operation.any_token:
            continue
        usable_before = any(_usable(alternative, before) for alternative in alternatives)
        usable_after = any(_usable(alternative, after) for alternative in alternatives)
        if usable_before and not usable_after:
            everyone.append(operation)
            continue
        losing = sorted(
            scope
            for scope in before.scopes
            if _grants(scope, alternatives, before) and not _grants(scope, alternatives, after)
        )
        if losing:
            holders.append((operation, losing))
    lost = []
    for scope in sorted(before.scopes):
        if scope == name:
            continue
        gone = sorted(before.closures[scope] - after.closures.get(scope, frozenset()))
        if gone:
            lost.append((scope, gone))
    return Impact(name, name not in before.scopes, everyone, holders, may_need, lost)


def matrix_cell(scope: str, operation: ProtectedOperation, graph: Snapshot) -> str:
    """``"needs"`` (the operation names the scope), ``"grants"`` (an active scope that implies one
    it names), or ``""``."""
    if scope in operation.names:
        return "needs"
    closure = graph.closures.get(scope)
    if closure is not None and closure & operation.names:
        return "grants"
    return ""


# The hierarchy as a picture -------------------------------------------------------------------

NODE_HEIGHT = 40
LAYER_GAP = 56
NODE_GAP = 20
MARGIN = 12
CHAR_WIDTH = 7.4


@dataclass
class Node:
    name: str
    active: bool
    advertised: bool
    x: float = 0
    y: float = 0
    width: float = 0
    layer: int = 0

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def bottom(self) -> float:
        return self.y + NODE_HEIGHT

    @property
    def status_class(self) -> str:
        return "inactive" if not self.active else ("baseline" if self.advertised else "stepup")

    @property
    def status(self) -> str:
        if not self.active:
            return "inactive"
        return "baseline" if self.advertised else "step-up only"


@dataclass
class Edge:
    parent: Node
    child: Node

    @property
    def dashed(self) -> bool:
        return not (self.parent.active and self.child.active)


@dataclass
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float


def layered_layout(rows: Iterable[Mapping[str, Any]], edges: Iterable[tuple[str, str]]) -> Layout:
    """Broader scopes above the narrower ones they imply: each scope one layer below its lowest
    parent (longest path from a root), ordered in its layer by the mean position of its parents."""
    nodes = {row["name"]: Node(row["name"], bool(row["is_active"]), bool(row["is_advertised"])) for row in rows}
    parents: dict[str, list[str]] = {name: [] for name in nodes}
    pairs = [(parent, child) for parent, child in edges if parent in nodes and child in nodes and parent != child]
    for parent, child in pairs:
        parents[child].append(parent)

    depth: dict[str, int] = {}

    def layer_of(name: str, visiting: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        above = [p for p in parents[name] if p not in visiting]  # a cycle (raw SQL) cannot loop here
        value = 1 + max((layer_of(p, visiting | {name}) for p in above), default=-1)
        depth[name] = value
        return value

    for name in sorted(nodes):
        nodes[name].layer = layer_of(name, frozenset())
    layers: dict[int, list[Node]] = {}
    for node in nodes.values():
        layers.setdefault(node.layer, []).append(node)
    position: dict[str, float] = {}
    widest = 0.0
    for index in sorted(layers):
        members = layers[index]

        def barycenter(node: Node) -> tuple[float, str]:
            placed = [position[p] for p in parents[node.name] if p in position]
            return (sum(placed) / len(placed) if placed else -1.0, node.name)

        members.sort(key=barycenter)
        x = float(MARGIN)
        for node in members:
            node.width = max(len(node.name), len("step-up only")) * CHAR_WIDTH + 20
            node.x = x
            node.y = MARGIN + index * (NODE_HEIGHT + LAYER_GAP)
            x += node.width + NODE_GAP
        for order, node in enumerate(members):
            position[node.name] = float(order)
        widest = max(widest, x - NODE_GAP + MARGIN)
    for members in layers.values():  # centre each layer under the widest
        span = members[-1].x + members[-1].width - members[0].x
        shift = (widest - 2 * MARGIN - span) / 2
        for node in members:
            node.x += shift
    height = MARGIN * 2 + (max(layers, default=-1) + 1) * (NODE_HEIGHT + LAYER_GAP) - LAYER_GAP if nodes else 0
    ordered = sorted(nodes.values(), key=lambda node: (node.layer, node.x))
    return Layout(ordered, [Edge(nodes[p], nodes[c]) for p, c in sorted(pairs)], max(widest, 0.0), max(height, 0))
