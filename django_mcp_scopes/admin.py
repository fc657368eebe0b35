"""Admin for scopes: search, filters, the hierarchy, what each scope grants, bulk (de)activation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_mcp_scopes.models import NEVER_ADVERTISED, Scope
from django_mcp_scopes.registry import scope_registry


class ScopeAdminForm(forms.ModelForm):
    class Meta:
        model = Scope
        fields = ["name", "description", "is_active", "is_advertised", "implies"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A stray space is an invalid name, said so, rather than silently trimmed.
        self.fields["name"].strip = False  # type: ignore[attr-defined]

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


def _names(names: Any) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "\u2014"


@admin.register(Scope)
class ScopeAdmin(admin.ModelAdmin):
    form = ScopeAdminForm
    list_display = [
        "name",
        "is_active",
        "is_advertised",
        "direct_implications",
        "short_description",
        "updated_at",
    ]
    list_filter = ["is_active", "is_advertised"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    filter_horizontal = ["implies"]
    readonly_fields = ["effective_scopes", "granted_by", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "is_active", "is_advertised"]}),
        (_("Hierarchy"), {"fields": ["implies", "effective_scopes", "granted_by"]}),
        (_("History"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    actions = ["activate", "deactivate", "advertise", "withdraw", "delete_selected"]
    delete_confirmation_template = "admin/mcp_scopes/scope/delete_confirmation.html"
    delete_selected_confirmation_template = "admin/mcp_scopes/scope/delete_selected_confirmation.html"

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

    # bulk actions -------------------------------------------------------------------------------
    def _bulk_update(self, request: HttpRequest, queryset: QuerySet[Scope], field: str, value: bool, done: str) -> None:
        """Set one flag with a single UPDATE; history per changed scope; registry invalidated."""
        changed = list(queryset.exclude(**{field: value}).order_by("name"))
        if changed:
            Scope.objects.filter(pk__in=[scope.pk for scope in changed]).update(**{field: value})
            label = str(Scope._meta.get_field(field).verbose_name)  # type: ignore[union-attr]
            for scope in changed:
                setattr(scope, field, value)
                self.log_change(request, scope, [{"changed": {"fields": [label.capitalize()]}}])
            scope_registry.invalidate()
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
        super().delete_queryset(request, queryset)
        scope_registry.invalidate()
