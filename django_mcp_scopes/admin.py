"""Admin for scopes: search, filters, the hierarchy, what each scope grants, the MCP operations that
need it (and a page of every MCP endpoint with its requirements), bulk (de)activation."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.widgets import FilteredSelectMultiple, RelatedFieldWidgetWrapper
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router, transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_mcp_scopes.models import NEVER_ADVERTISED, Implication, Refusal, Scope
from django_mcp_scopes.registry import Snapshot, scope_registry
from django_mcp_scopes.scopemap import deactivation_impact, layered_layout, matrix_cell, protected_operations
from django_mcp_scopes.usage import live_token_usage

if TYPE_CHECKING:
    from django_mcp_scopes.mcp.endpoint import MCPEndpoint
    from django_mcp_scopes.requirements import ScopeRequirement


def _ancestor_pks(pk: int) -> set[int]:
    """Primary keys of every scope that reaches ``pk`` through the implications (inactive ones too)."""
    parents: dict[int, list[int]] = {}
    for from_id, to_id in Implication.objects.values_list("from_scope_id", "to_scope_id"):
        parents.setdefault(to_id, []).append(from_id)
    found: set[int] = set()
    stack = [pk]
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in found:
                found.add(parent)
                stack.append(parent)
    return found


class ScopeAdminForm(forms.ModelForm):
    # Declared here rather than generated: the admin builds no field for a many-to-many with a
    # named through model (Implication), though the form saves it like any other.
    implies = forms.ModelMultipleChoiceField(
        queryset=Scope.objects.all(),
        required=False,
        label=_("Implies"),
        help_text=_("Narrower scopes that this scope grants too."),
        widget=FilteredSelectMultiple(_("implied scopes"), is_stacked=False),
    )

    class Meta:
        model = Scope
        fields = ["name", "description", "is_active", "is_advertised", "implies"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A stray space is an invalid name, said so, rather than silently trimmed.
        self.fields["name"].strip = False  # type: ignore[attr-defined]
        implies = self.fields["implies"]
        if self.instance.pk is not None:
            # Offer neither the scope itself nor what already implies it (that would be a cycle);
            # the queryset stays whole so a forged choice still gets the cycle message from clean().
            hidden = {self.instance.pk} | _ancestor_pks(self.instance.pk)
            widget: Any = getattr(implies.widget, "widget", implies.widget)  # inside the admin's wrapper
            widget.choices = [
                (scope.pk, scope.name) for scope in Scope.objects.exclude(pk__in=hidden).only("pk", "name")
            ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        implied = cleaned.get("implies")
        # The m2m is written after the row, so the model cannot see the new implications:
        # check for a cycle here, before anything is saved.
        if implied is not None and self.instance.pk is not None:
            try:
                self.instance.check_implications(implied)
            except ValidationError as exc:
                self.add_error("implies", exc)
        return cleaned


def _refusal_counts(since: datetime) -> dict[str, int]:
    """How many recorded refusals since ``since`` named each scope as missing."""
    counts: dict[str, int] = {}
    for missing in Refusal.objects.filter(created_at__gte=since).values_list("missing_scopes", flat=True):
        for name in set(missing.split()):
            counts[name] = counts.get(name, 0) + 1
    return counts


def _names(names: Any) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "\u2014"


# MCP operations: what the endpoints of this site need, as the admin shows it ---------------------

_KIND_LABELS = {
    "tool": _("tool"),
    "resource": _("resource"),
    "resource_template": _("resource template"),
    "prompt": _("prompt"),
    "method": _("method"),
}


@dataclass(frozen=True)
class _ScopeCell:
    """One scope name in a requirement, with what the database says about it."""

    name: str
    url: str | None
    state: str  # "ok", "missing" or "inactive"

    @property
    def usable(self) -> bool:
        return self.state == "ok"


@dataclass
class _RequirementView:
    """A requirement as the admin renders it: alternatives of scopes, plus what a dynamic part may add."""

    alternatives: list[list[_ScopeCell]] = field(default_factory=list)
    dynamic: bool = False
    declared: list[_ScopeCell] = field(default_factory=list)
    declared_open: bool = False  # @open_to_any_token
    undeclared: bool = False  # no declaration at all (refused unless ALLOW_UNDECLARED_OPERATIONS)

    @property
    def undeclared_allowed(self) -> bool:
        from django_mcp_scopes.conf import mcp_scopes_settings

        return self.undeclared and mcp_scopes_settings.ALLOW_UNDECLARED_OPERATIONS

    @property
    def is_open(self) -> bool:
        """Any valid token passes the static part (and there is no dynamic part)."""
        return not self.dynamic and (not self.alternatives or any(not alt for alt in self.alternatives))

    @property
    def blocked(self) -> bool:
        """No alternative can ever be satisfied: some scope of each is missing or inactive."""
        return bool(self.alternatives) and all(
            alternative and not all(cell.usable for cell in alternative) for alternative in self.alternatives
        )

    @property
    def unusable_declared(self) -> list[_ScopeCell]:
        return [cell for cell in self.declared if not cell.usable]

    @property
    def problems(self) -> bool:
        return self.blocked or bool(self.unusable_declared) or self.undeclared


@dataclass
class _OperationRow:
    paths: list[str]
    server: str
    kind: str
    name: str
    description: str
    requirement: _RequirementView
    via: list[_ScopeCell] = field(default_factory=list)

    @property
    def kind_label(self) -> str:
        return str(_KIND_LABELS.get(self.kind, self.kind))


@dataclass
class _EndpointView:
    paths: list[str]
    server: str
    title: str
    methods: list[_OperationRow]
    operations: list[_OperationRow]

    @property
    def problem_count(self) -> int:
        return sum(1 for row in self.methods + self.operations if row.requirement.problems)


class _ScopeStates:
    """Which scope names exist in the database and are active, read in one query."""

    def __init__(self, names: Iterable[str], admin_site_name: str) -> None:
        self._rows = {
            name: (pk, active)
            for pk, name, active in Scope.objects.filter(name__in=set(names)).values_list("pk", "name", "is_active")
        }
        self._site = admin_site_name

    def cell(self, name: str) -> _ScopeCell:
        row = self._rows.get(name)
        if row is None:
            return _ScopeCell(name, None, "missing")
        url = reverse("admin:mcp_scopes_scope_change", args=[row[0]], current_app=self._site)
        return _ScopeCell(name, url, "ok" if row[1] else "inactive")

    def requirement(self, static: ScopeRequirement | None, dynamic: bool, declares: Iterable[str]) -> _RequirementView:
        alternatives = [] if static is None else [[self.cell(n) for n in names] for names in static.describe()]
        return _RequirementView(alternatives, dynamic, [self.cell(name) for name in sorted(declares)])


def _site_endpoints() -> tuple[dict[int, list[str]], list[MCPEndpoint]]:
    """Paths of every endpoint this site's URLconf mounts, and the endpoints created but not mounted."""
    from django_mcp_scopes.mcp.endpoint import mounted_endpoints, registered_endpoints

    paths: dict[int, list[str]] = {}
    for route, endpoint in mounted_endpoints():
        paths.setdefault(id(endpoint), []).append(route)
    unmounted = [endpoint for endpoint in registered_endpoints() if id(endpoint) not in paths]
    return paths, unmounted


def _endpoint_names(endpoint: MCPEndpoint) -> set[str]:
    from django_mcp_scopes.mcp.operations import needed_scopes

    return needed_scopes(endpoint)


def _endpoint_rows(endpoint: MCPEndpoint, paths: list[str], states: _ScopeStates) -> _EndpointView:
    from django_mcp_scopes.mcp.endpoint import operation_description
    from django_mcp_scopes.mcp.operations import declared_operations

    server = endpoint.server
    methods = [
        _OperationRow(paths, server.name, "method", method, "", states.requirement(requirement, False, ()))
        for method, requirement in sorted(endpoint.method_scopes.items())
    ]
    operations = []
    for operation in declared_operations(server):
        scopes = operation.scopes
        if scopes is None:
            requirement = _RequirementView(undeclared=True)
        elif scopes.any_token:
            requirement = _RequirementView(declared_open=True)
        else:
            requirement = states.requirement(scopes.static, scopes.dynamic is not None, scopes.declares)
        description = operation_description(server, operation.kind, operation.name)
        operations.append(_OperationRow(paths, server.name, operation.kind, operation.name, description, requirement))
    title = getattr(server, "title", None) or ""
    return _EndpointView(paths, server.name, str(title), methods, operations)


def _requiring(scope: str, paths: dict[int, list[str]]) -> list[tuple[MCPEndpoint, str, str]]:
    """``operations_requiring(scope)`` on the endpoints this site mounts."""
    from django_mcp_scopes.mcp.endpoint import operations_requiring

    return [found for found in operations_requiring(scope) if id(found[0]) in paths]


@admin.register(Scope)
class ScopeAdmin(admin.ModelAdmin):
    form = ScopeAdminForm
    list_display = [
        "name",
        "is_active",
        "is_advertised",
        "direct_implications",
        "short_description",
        "mcp_operation_count",
        "updated_at",
    ]
    list_filter = ["is_active", "is_advertised"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    readonly_fields = [
        "effective_scopes",
        "granted_by",
        "mcp_operations",
        "live_tokens",
        "recent_refusals",
        "impact_link",
        "created_at",
        "updated_at",
    ]
    # get_fieldsets(), not ``fieldsets``: the admin's checks refuse a many-to-many with a named
    # through model in ``fieldsets`` even when the form declares the field itself.
    scope_fieldsets = [
        (None, {"fields": ["name", "description", "is_active", "is_advertised"]}),
        (_("Hierarchy"), {"fields": ["implies", "effective_scopes", "granted_by"]}),
        (_("MCP operations"), {"fields": ["mcp_operations"]}),
        (_("Usage"), {"fields": ["live_tokens", "recent_refusals", "impact_link"]}),
        (_("History"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    actions = ["activate", "deactivate", "advertise", "withdraw", "delete_selected"]
    delete_confirmation_template = "admin/mcp_scopes/scope/delete_confirmation.html"
    delete_selected_confirmation_template = "admin/mcp_scopes/scope/delete_selected_confirmation.html"
    change_list_template = "admin/mcp_scopes/scope/change_list.html"

    def get_fieldsets(self, request: HttpRequest, obj: Scope | None = None) -> Any:
        return self.scope_fieldsets

    def get_form(self, request: HttpRequest, obj: Scope | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        # What the admin does for filter_horizontal: the wrapper keeps the label beside the two
        # boxes and offers "+" (add a scope) to those who may add one.
        field = copy.deepcopy(form.base_fields["implies"])
        field.widget = RelatedFieldWidgetWrapper(
            field.widget,
            Scope._meta.get_field("implies").remote_field,  # type: ignore[arg-type]
            self.admin_site,
            can_add_related=self.has_add_permission(request),
            can_change_related=False,
            can_delete_related=False,
            can_view_related=False,
        )
        form.base_fields["implies"] = field
        return form

    def get_queryset(self, request: HttpRequest) -> QuerySet[Scope]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("implies", queryset=Scope.objects.only("name").order_by("name")))
        )

    # columns and read-only fields -----------------------------------------------------------
    @admin.display(description=_("implies"))
    def direct_implications(self, obj: Scope) -> str:
        return _names(scope.name for scope in obj.implies.all())

    @admin.display(description=_("description"))
    def short_description(self, obj: Scope) -> str:
        text = obj.description.strip().splitlines()[0] if obj.description.strip() else ""
        return text if len(text) <= 80 else text[:79] + "\u2026"

    @admin.display(description=_("effective scopes"))
    def effective_scopes(self, obj: Scope) -> str:
        """Everything a token holding this scope gets (itself included), active scopes only."""
        if obj.pk is None:
            return "\u2014"
        if not obj.is_active:
            return str(_("None: an inactive scope grants nothing."))
        graph = Scope.objects.graph()
        return _names(graph.closures.get(obj.name, frozenset({obj.name})))

    @admin.display(description=_("granted by"))
    def granted_by(self, obj: Scope) -> str:
        """Active scopes that grant this one through the hierarchy (directly or not)."""
        if obj.pk is None:
            return "\u2014"
        if not obj.is_active:
            return str(_("Nothing: an inactive scope is granted by no scope."))
        return _names(Scope.objects.graph().implied_by.get(obj.name, ()))

    @admin.display(description=_("MCP operations"))
    def mcp_operation_count(self, obj: Scope) -> int:
        """Operations of this site's endpoints that name the scope (in memory: no query per row)."""
        paths, _unmounted = _site_endpoints()
        return len(_requiring(obj.name, paths))

    @admin.display(description=_("MCP operations"))
    def mcp_operations(self, obj: Scope) -> SafeString | str:
        """Operations that name this scope, and those it satisfies through the scopes it implies."""
        if obj.pk is None:
            return "\u2014"
        paths, _unmounted = _site_endpoints()
        from django_mcp_scopes.mcp.endpoint import registered_endpoints

        endpoints = [endpoint for endpoint in registered_endpoints() if id(endpoint) in paths]
        implied: list[str] = []
        if obj.is_active:
            closure = Scope.objects.graph().closures.get(obj.name, frozenset({obj.name}))
            implied = sorted(closure - {obj.name})
        names: set[str] = {obj.name, *implied}
        for endpoint in endpoints:
            names |= _endpoint_names(endpoint)
        states = _ScopeStates(names, self.admin_site.name)
        rows: dict[tuple[int, str, str], _OperationRow] = {}
        for endpoint in endpoints:
            view = _endpoint_rows(endpoint, paths[id(endpoint)], states)
            for row in view.methods + view.operations:
                rows[(id(endpoint), row.kind, row.name)] = row
        direct = [rows[(id(e), kind, name)] for e, kind, name in _requiring(obj.name, paths)]
        seen = {(row.server, row.kind, row.name, tuple(row.paths)) for row in direct}
        through: dict[tuple[str, str, str, tuple[str, ...]], _OperationRow] = {}
        for name in implied:
            for endpoint, kind, operation in _requiring(name, paths):
                row = rows[(id(endpoint), kind, operation)]
                key = (row.server, row.kind, row.name, tuple(row.paths))
                if key in seen:
                    continue
                if key not in through:
                    through[key] = replace(row, via=[])
                through[key].via.append(states.cell(name))
        context = {
            "scope": obj,
            "direct": direct,
            "through": list(through.values()),
            "implied": [states.cell(name) for name in implied],
            "has_endpoints": bool(endpoints),
            "endpoints_url": reverse("admin:mcp_scopes_scope_endpoints", current_app=self.admin_site.name),
        }
        return mark_safe(render_to_string("admin/mcp_scopes/scope/mcp_operations.html", context))  # noqa: S308

    @admin.display(description=_("live tokens"))
    def live_tokens(self, obj: Scope) -> SafeString | str:
        """Live django-oauth-toolkit tokens holding the scope, directly or through the hierarchy, by client."""
        if obj.pk is None:
            return "\u2014"
        usage = live_token_usage()
        context = {"available": usage is not None, "usage": (usage or {}).get(obj.name), "scope": obj}
        return mark_safe(render_to_string("admin/mcp_scopes/scope/_usage.html", context))  # noqa: S308

    @admin.display(description=_("refusals (24 hours)"))
    def recent_refusals(self, obj: Scope) -> SafeString | str:
        """Recorded refusals in the last 24 hours that named this scope as missing."""
        if obj.pk is None:
            return "\u2014"
        count = _refusal_counts(timezone.now() - timedelta(hours=24)).get(obj.name, 0)
        url = reverse("admin:mcp_scopes_refusal_changelist", current_app=self.admin_site.name)
        return format_html(
            '{} <a href="{}?{}">{}</a>',
            count,
            url,
            urlencode({"q": obj.name}),
            _("see the refusals"),
        )

    @admin.display(description=_("if deactivated"))
    def impact_link(self, obj: Scope) -> SafeString | str:
        if obj.pk is None:
            return "\u2014"
        url = reverse("admin:mcp_scopes_scope_impact", args=[obj.pk], current_app=self.admin_site.name)
        return format_html('<a href="{}" id="scope-impact-link">{}</a>', url, _("What breaks if I deactivate it?"))

    # the endpoints page, the scope map, the impact page ----------------------------------------
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("endpoints/", wrap(self.endpoints_view), name="mcp_scopes_scope_endpoints"),
            path("map/", wrap(self.map_view), name="mcp_scopes_scope_map"),
            path("<path:object_id>/impact/", wrap(self.impact_view), name="mcp_scopes_scope_impact"),
            *super().get_urls(),
        ]

    def _page(self, request: HttpRequest, template: str, title: str, **context: Any) -> TemplateResponse:
        request.current_app = self.admin_site.name
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **context}
        return TemplateResponse(request, template, context)

    def map_view(self, request: HttpRequest) -> TemplateResponse:
        """The hierarchy as a picture, what each scope grants, and every protected operation."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = list(Scope.objects.order_by("name").values("pk", "name", "description", "is_active", "is_advertised"))
        edges = list(Implication.objects.values_list("from_scope__name", "to_scope__name"))
        graph = Snapshot.build("admin", rows, edges)
        operations = protected_operations()
        known = {row["name"] for row in rows}
        referenced = set().union(*(operation.names for operation in operations)) if operations else set()
        missing = sorted(referenced - known)
        usage = live_token_usage(graph)
        refusals = _refusal_counts(timezone.now() - timedelta(hours=24))
        direct: dict[str, list[str]] = {}
        for parent, child in edges:
            direct.setdefault(parent, []).append(child)
        site = self.admin_site.name
        scopes = []
        for row in rows:
            name = row["name"]
            scopes.append(
                {
                    **row,
                    "change_url": reverse("admin:mcp_scopes_scope_change", args=[row["pk"]], current_app=site),
                    "impact_url": reverse("admin:mcp_scopes_scope_impact", args=[row["pk"]], current_app=site),
                    "implies": sorted(direct.get(name, ())),
                    "grants": sorted(graph.closures.get(name, frozenset()) - {name}),
                    "granted_by": sorted(graph.implied_by.get(name, ())),
                    "operations": [op for op in operations if name in op.names],
                    "through": [
                        op
                        for op in operations
                        if name not in op.names and graph.closures.get(name, frozenset()) & op.names
                    ],
                    "usage": (usage or {}).get(name),
                    "refusals": refusals.get(name, 0),
                }
            )
        columns = [
            {"name": row["name"], "active": row["is_active"], "advertised": row["is_advertised"]} for row in rows
        ]
        columns += [{"name": name, "missing": True} for name in missing]
        matrix = [
            {"operation": op, "cells": [matrix_cell(column["name"], op, graph) for column in columns]}
            for op in operations
        ]
        layout = layered_layout(rows, edges)
        for node in layout.nodes:
            node.url = next(s["impact_url"] for s in scopes if s["name"] == node.name)  # type: ignore[attr-defined]
        return self._page(
            request,
            "admin/mcp_scopes/scope/map.html",
            str(_("Scope map")),
            layout=layout,
            scopes=scopes,
            columns=columns,
            matrix=matrix,
            missing=missing,
            usage_available=usage is not None,
        )

    def impact_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """What deactivating one scope would break: operations, holders, and what other scopes stop granting."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        scope = self.get_object(request, object_id)
        if scope is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined,no-any-return]
        rows = list(Scope.objects.values("name", "description", "is_active", "is_advertised"))
        edges = list(Implication.objects.values_list("from_scope__name", "to_scope__name"))
        impact = deactivation_impact(scope.name, protected_operations(), rows, edges)
        usage = live_token_usage(Snapshot.build("admin", rows, edges))
        holders = {name for _operation, names in impact.lost_by_holders for name in names}
        holders |= {name for name, _gone in impact.lost_grants}
        return self._page(
            request,
            "admin/mcp_scopes/scope/impact.html",
            str(_("What breaks if %(name)s is deactivated") % {"name": scope.name}),
            scope=scope,
            impact=impact,
            usage_available=usage is not None,
            usage=(usage or {}).get(scope.name),
            holder_usage=[(name, (usage or {}).get(name)) for name in sorted(holders | {scope.name})],
            map_url=reverse("admin:mcp_scopes_scope_map", current_app=self.admin_site.name),
        )

    def endpoints_view(self, request: HttpRequest) -> TemplateResponse:
        """Every MCP endpoint, its operations and what each needs, with the scopes the database lacks."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        paths, unmounted = _site_endpoints()
        from django_mcp_scopes.mcp.endpoint import registered_endpoints

        mounted = [endpoint for endpoint in registered_endpoints() if id(endpoint) in paths]
        names: set[str] = set()
        for endpoint in mounted + unmounted:
            names |= _endpoint_names(endpoint)
        states = _ScopeStates(names, self.admin_site.name)
        endpoints = [_endpoint_rows(endpoint, paths[id(endpoint)], states) for endpoint in mounted]
        others = [_endpoint_rows(endpoint, [], states) for endpoint in unmounted]
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("MCP endpoints and the scopes their operations need"),
            "endpoints": endpoints,
            "unmounted": others,
            # Only what the site serves: an endpoint it does not mount is out of reach anyway.
            "problem_count": sum(view.problem_count for view in endpoints),
        }
        return TemplateResponse(request, "admin/mcp_scopes/scope/endpoints.html", context)

    # bulk actions -------------------------------------------------------------------------------
    def _bulk_update(self, request: HttpRequest, queryset: QuerySet[Scope], field: str, value: bool, done: str) -> None:
        """Set one flag with a single UPDATE; history per changed scope; registry invalidated."""
        # One transaction: the rows, the scope version every process watches, and the history
        # commit together, or nothing does and the admin reports the error.
        with transaction.atomic(using=router.db_for_write(Scope)):
            changed = list(queryset.exclude(**{field: value}).order_by("name"))
            if changed:
                Scope.objects.filter(pk__in=[scope.pk for scope in changed]).update(**{field: value})
                label = str(Scope._meta.get_field(field).verbose_name)  # type: ignore[union-attr]
                for scope in changed:
                    setattr(scope, field, value)
                    self.log_change(request, scope, [{"changed": {"fields": [label.capitalize()]}}])
        self.message_user(
            request,
            ngettext("%(count)d scope %(done)s: %(names)s.", "%(count)d scopes %(done)s: %(names)s.", len(changed))
            % {"count": len(changed), "done": done, "names": _names(s.name for s in changed)},
            messages.SUCCESS if changed else messages.INFO,
        )

    @admin.action(description=_("Activate selected scopes"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Scope]) -> None:
        self._bulk_update(request, queryset, "is_active", True, str(_("activated")))

    @admin.action(description=_("Deactivate selected scopes (they grant nothing at once)"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Scope]) -> None:
        self._bulk_update(request, queryset, "is_active", False, str(_("deactivated")))

    @admin.action(description=_("Advertise selected scopes (add to the baseline)"), permissions=["change"])
    def advertise(self, request: HttpRequest, queryset: QuerySet[Scope]) -> None:
        refused = sorted(queryset.filter(name__in=NEVER_ADVERTISED).values_list("name", flat=True))
        if refused:
            self.message_user(
                request,
                _("Left unchanged: %(names)s can never be advertised.") % {"names": ", ".join(refused)},
                messages.WARNING,
            )
        self._bulk_update(
            request, queryset.exclude(name__in=NEVER_ADVERTISED), "is_advertised", True, str(_("advertised"))
        )

    @admin.action(description=_("Withdraw selected scopes from the baseline"), permissions=["change"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Scope]) -> None:
        self._bulk_update(request, queryset, "is_advertised", False, str(_("withdrawn from the baseline")))

    # deletion: say what stops granting what ----------------------------------------------------
    @staticmethod
    def _deletion_notes(scopes: QuerySet[Scope]) -> list[str]:
        """One line per deleted scope that other (surviving) scopes imply or that implies others."""
        pks = {scope.pk for scope in scopes}
        notes = []
        for scope in scopes.prefetch_related("implied_by", "implies").order_by("name"):
            parents = sorted(parent.name for parent in scope.implied_by.all() if parent.pk not in pks)
            if parents:
                notes.append(
                    str(
                        _(
                            "%(name)s is implied by %(parents)s: those scopes will no longer grant it, "
                            "and tokens holding them lose it at once."
                        )
                    )
                    % {"name": scope.name, "parents": ", ".join(parents)}
                )
            children = sorted(child.name for child in scope.implies.all())
            if children:
                notes.append(
                    str(_("%(name)s implies %(children)s: tokens holding %(name)s lose those through it."))
                    % {"name": scope.name, "children": ", ".join(children)}
                )
        return notes

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        try:
            pk = Scope._meta.pk.to_python(object_id)  # type: ignore[union-attr]
        except ValidationError:
            pk = None
        if pk is not None:
            extra_context["implication_notes"] = self._deletion_notes(Scope.objects.filter(pk=pk))
        return super().delete_view(request, object_id, extra_context)

    @admin.action(description=_("Delete selected scopes"), permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Scope]) -> HttpResponse | None:
        notes = self._deletion_notes(queryset) if not request.POST.get("post") else []
        response = django_delete_selected(self, request, queryset)
        if isinstance(response, TemplateResponse) and response.context_data is not None:
            response.context_data["implication_notes"] = notes
        return response

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Scope]) -> None:
        with transaction.atomic(using=router.db_for_write(Scope)):
            super().delete_queryset(request, queryset)
            scope_registry.invalidate()


@admin.register(Refusal)
class RefusalAdmin(admin.ModelAdmin):
    """Recent refusals, read-only: written by ``django_mcp_scopes.refusals``, pruned there too."""

    list_display = ["created_at", "kind", "reason", "operation", "endpoint", "client_id", "missing_scopes"]
    list_filter = ["kind", "created_at"]
    search_fields = ["operation", "endpoint", "client_id", "missing_scopes", "reason"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Refusal | None = None) -> bool:
        return False
