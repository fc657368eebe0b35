from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import django
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from django_mcp_scopes.registry import Snapshot
from django_mcp_scopes.validators import SCOPE_NAME_MAX_LENGTH, validate_scope_name

NEVER_ADVERTISED = frozenset({"offline_access"})

# Django 5.1 renamed CheckConstraint(check=...) to condition=...; the migration uses the same switch.
_CHECK_KWARG = "condition" if django.VERSION >= (5, 1) else "check"


class ScopeQuerySet(models.QuerySet["Scope"]):
    """Bulk writes that move the scope version in the same transaction as the rows they change."""

    def update(self, **kwargs: Any) -> int:
        from django_mcp_scopes.registry import scope_registry

        with transaction.atomic(using=self.db):
            count = super().update(**kwargs)
            if count:
                scope_registry.invalidate()
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        from django_mcp_scopes.registry import scope_registry

        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                scope_registry.invalidate()
        return created

    bulk_create.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(self, objs: Any, fields: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        from django_mcp_scopes.registry import scope_registry

        with transaction.atomic(using=self.db):
            count = super().bulk_update(objs, fields, *args, **kwargs)
            if count:
                scope_registry.invalidate()
        return count

    bulk_update.alters_data = True  # type: ignore[attr-defined]


class ScopeManager(models.Manager.from_queryset(ScopeQuerySet)):  # type: ignore[misc]
    def _implication_path(self, start_pk: int, target_pk: int) -> list[str] | None:
        """Names along an implication path from start to target, or None when there is none."""
        edges: dict[int, list[int]] = {}
        for from_id, to_id in Implication.objects.values_list("from_scope_id", "to_scope_id"):
            edges.setdefault(from_id, []).append(to_id)
        parents: dict[int, int | None] = {start_pk: None}
        queue = [start_pk]
        while queue:
            current = queue.pop(0)
            if current == target_pk:
                ids = []
                node: int | None = current
                while node is not None:
                    ids.append(node)
                    node = parents[node]
                names = dict(self.filter(pk__in=ids).values_list("pk", "name"))
                return [names[pk] for pk in reversed(ids)]
            for child in edges.get(current, ()):
                if child not in parents:
                    parents[child] = current
                    queue.append(child)
        return None

    def graph(self) -> Snapshot:
        """The hierarchy as the registry sees it (active scopes only), read from the database now."""
        rows = list(self.values("name", "description", "is_active", "is_advertised"))
        edges = list(Implication.objects.values_list("from_scope__name", "to_scope__name"))
        return Snapshot.build("db", rows, edges)


class Scope(models.Model):
    """An OAuth scope this server understands, with what it means and what it implies."""

    name = models.CharField(
        _("name"),
        max_length=SCOPE_NAME_MAX_LENGTH,
        unique=True,
        validators=[validate_scope_name],
        help_text=_("The scope-token clients request, e.g. entries:read. Case-sensitive."),
    )
    description = models.TextField(
        _("description"),
        blank=True,
        help_text=_("What a person granting this scope agrees to; shown on the consent page."),
    )
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("An inactive scope grants nothing, at once, on every server."),
    )
    is_advertised = models.BooleanField(
        _("advertised"),
        default=False,
        help_text=_("Part of the baseline: published in scopes_supported and asked for in the 401 challenge."),
    )
    implies = models.ManyToManyField(
        "self",
        symmetrical=False,
        through="Implication",
        through_fields=("from_scope", "to_scope"),
        blank=True,
        related_name="implied_by",
        verbose_name=_("implies"),
        help_text=_("Narrower scopes that this scope grants too."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScopeManager()

    class Meta:
        verbose_name = _("scope")
        verbose_name_plural = _("scopes")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="mcp_scopes_scope_name_ci_unique",
                violation_error_message=_(
                    "A scope with this name in another letter case already exists; "
                    "scope names must differ by more than case."
                ),
            ),
            models.CheckConstraint(
                **{_CHECK_KWARG: ~models.Q(name__in=sorted(NEVER_ADVERTISED), is_advertised=True)},  # type: ignore[arg-type]
                name="mcp_scopes_scope_offline_access_not_advertised",
                violation_error_message=_("offline_access can never be advertised."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # One transaction for the row and the scope version its post_save signal moves: a save
        # whose announcement fails is not saved either (Django commits a plain save on its own).
        with transaction.atomic(using=kwargs.get("using") or router.db_for_write(Scope, instance=self)):
            super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if self.name in NEVER_ADVERTISED and self.is_advertised:
            raise ValidationError({"is_advertised": _("%(name)s can never be advertised.") % {"name": self.name}})

    def check_implications(self, implied: Iterable[Scope]) -> None:
        """Raise ValidationError if implying ``implied`` would create a cycle."""
        implied = list(implied)
        if any(scope.pk == self.pk and self.pk is not None for scope in implied):
            raise ValidationError(_("A scope cannot imply itself."), code="scope_cycle")
        if self.pk is None:
            return
        for scope in implied:
            path = Scope.objects._implication_path(scope.pk, self.pk)
            if path:
                chain = " \u2192 ".join([self.name, *path])
                raise ValidationError(
                    _("This would create a cycle: %(chain)s. Remove one of these implications."),
                    code="scope_cycle",
                    params={"chain": chain},
                )


class Implication(models.Model):
    """One edge of the hierarchy: ``from_scope`` grants ``to_scope`` too.

    The table is the one Django created for the ``implies`` field before this model had a name
    (migration 0003 only names it), so the delete pages read "implication", not Django's
    generated "From_scope-to_scope relationship".
    """

    from_scope = models.ForeignKey(Scope, on_delete=models.CASCADE, related_name="+", verbose_name=_("broader scope"))
    to_scope = models.ForeignKey(Scope, on_delete=models.CASCADE, related_name="+", verbose_name=_("implied scope"))

    class Meta:
        db_table = "mcp_scopes_scope_implies"
        verbose_name = _("implication")
        verbose_name_plural = _("implications")
        unique_together = [("from_scope", "to_scope")]

    def __str__(self) -> str:
        return f"{self.from_scope} \u2192 {self.to_scope}"


class Refusal(models.Model):
    """One refused request, kept for the admin (``django_mcp_scopes.refusals``); never a token.

    Written in batches after the response has gone out, pruned to ``MCP_SCOPES["REFUSAL_LOG_MAX"]``
    rows. ``client_id`` is the OAuth client's public identifier; no user, address or token.
    """

    INVALID_REQUEST = "invalid_request"
    INVALID_TOKEN = "invalid_token"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    INACTIVE_SCOPE = "inactive_scope"
    RATE_LIMITED = "rate_limited"
    KIND_CHOICES = [
        (INVALID_REQUEST, _("malformed credentials (401/400)")),
        (INVALID_TOKEN, _("invalid token (401)")),
        (INSUFFICIENT_SCOPE, _("insufficient scope (403)")),
        (INACTIVE_SCOPE, _("scope held but inactive (403)")),
        (RATE_LIMITED, _("rate limited (429)")),
    ]

    created_at = models.DateTimeField(_("time"), db_index=True)
    kind = models.CharField(_("kind"), max_length=32, choices=KIND_CHOICES)
    reason = models.CharField(
        _("reason"), max_length=64, blank=True, help_text=_("The refusal's code, e.g. expired or wrong_resource.")
    )
    operation = models.CharField(
        _("operation"), max_length=255, blank=True, help_text=_('"tools/call add_entry" or "POST /api/entries".')
    )
    endpoint = models.CharField(_("endpoint"), max_length=255, blank=True, help_text=_("The request's path."))
    client_id = models.CharField(_("client id"), max_length=255, blank=True)
    missing_scopes = models.CharField(
        _("scopes missing"), max_length=1000, blank=True, help_text=_("Space-separated, as in the challenge.")
    )

    class Meta:
        verbose_name = _("refusal")
        verbose_name_plural = _("refusals")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        what = self.operation or self.endpoint or "-"
        return f"{self.get_kind_display()}: {what}"  # type: ignore[attr-defined]


class Epochs(models.Model):
    """Counters the database owns, so that no cache can roll an authorization decision back.

    One row. ``scopes`` moves with every committed scope change, in the same transaction as the
    change; each process compares it with the version of its in-memory snapshot. ``tokens`` moves
    when a revoked token could not be dropped from the shared cache (the cache was down): every
    cache entry written under an older value is then worthless. See ``django_mcp_scopes.epochs``.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    scopes = models.BigIntegerField(_("scope version"), default=0)
    tokens = models.BigIntegerField(_("token cache epoch"), default=0)

    class Meta:
        verbose_name = _("epochs")
        verbose_name_plural = _("epochs")
        constraints = [models.CheckConstraint(**{_CHECK_KWARG: models.Q(id=1)}, name="mcp_scopes_epochs_single_row")]  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"scopes {self.scopes}, tokens {self.tokens}"
