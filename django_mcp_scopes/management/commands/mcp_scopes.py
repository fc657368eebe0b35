"""``manage.py mcp_scopes sync|list|show|usage|refusals``: the scopes declared in code and those in
the database, who holds them, who was refused.

``usage`` counts live django-oauth-toolkit tokens per scope (directly, and through the hierarchy)
and per client. ``refusals`` prints the recorded refusals (``django_mcp_scopes.refusals``), newest
first, ``--since`` a duration (``90s``, ``15m``, ``1h``, ``2d``, ``1w``) or an ISO 8601 time.

``sync`` creates the declared scopes missing from the database, with their description,
advertised flag and implications. A scope that already exists is never changed (an admin may
have edited its description, flags or implications on purpose); only newly created scopes get
their declared implication edges. ``--prune`` deletes database scopes nobody declares, after a
confirmation (or ``--yes``); ``--dry-run`` prints what would change and writes nothing.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import autodiscover_modules

from django_mcp_scopes.declarations import DeclaredScope, declared_scopes
from django_mcp_scopes.models import Refusal, Scope
from django_mcp_scopes.registry import scope_registry

# Each installed app may hold a module of this name that calls declare_scope() at import time.
DECLARATIONS_MODULE = "mcp_scopes"


def _flag(value: bool) -> str:
    return "yes" if value else "no"


_DURATION = re.compile(r"(\d{1,9})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_LIMIT = 10_000


def since_argument(value: str) -> datetime:
    """``--since``: a duration back from now (``15m``, ``2d``) or an ISO 8601 time."""
    text = value.strip()
    match = _DURATION.fullmatch(text)
    if match:
        try:
            return timezone.now() - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except OverflowError:
            raise argparse.ArgumentTypeError(f"{value!r} reaches back too far.") from None
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither a duration (90s, 15m, 1h, 2d, 1w) nor an ISO 8601 time (2026-11-30T09:00)."
        )
    if settings.USE_TZ and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    elif not settings.USE_TZ and timezone.is_aware(moment):
        moment = timezone.make_naive(moment)
    return moment


def limit_argument(value: str) -> int:
    """``--limit``: a whole number from 1 to MAX_LIMIT."""
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to {MAX_LIMIT}.")
    return number


def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def _printable(value: Any) -> str:
    """One cell: control characters and non-ASCII escaped, so recorded text cannot drive a terminal."""
    return str(value).encode("unicode_escape").decode("ascii") or "-"


def _names(names: Any) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "-"


class Command(BaseCommand):
    help = "Synchronise, list and inspect OAuth scopes (declared in code and stored in the database)."

    def add_arguments(self, parser: CommandParser) -> None:
        # Django's -v belongs to the main parser, before the subcommand; accept it after too
        # (`mcp_scopes sync -v 2`, as the docs write it).
        verbosity = CommandParser(add_help=False)
        verbosity.add_argument(
            "-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=argparse.SUPPRESS, help="Verbosity level."
        )
        sub = parser.add_subparsers(dest="subcommand", title="subcommands", required=True, parser_class=CommandParser)
        sync = sub.add_parser(
            "sync",
            parents=[verbosity],
            help="Create declared scopes missing from the database; never change existing ones.",
        )
        sync.add_argument("--dry-run", action="store_true", help="Show what would change; write nothing.")
        sync.add_argument("--prune", action="store_true", help="Also delete database scopes nobody declares.")
        sync.add_argument("--yes", action="store_true", help="Delete without asking (with --prune).")
        sync.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Never ask; refuse to delete unless --yes is given.",
        )
        sub.add_parser("list", parents=[verbosity], help="List every scope in the database.")
        show = sub.add_parser(
            "show", parents=[verbosity], help="Describe one scope, its implications and what implies it."
        )
        show.add_argument("name", help="The exact scope name.")
        usage = sub.add_parser(
            "usage",
            parents=[verbosity],
            help="Live django-oauth-toolkit tokens per scope (directly and through the hierarchy), by client.",
        )
        usage.add_argument("--scope", help="Only this scope (exact name).")
        usage.add_argument(
            "--limit", type=limit_argument, default=10, help="Clients listed per scope, most tokens first (default 10)."
        )
        refused = sub.add_parser("refusals", parents=[verbosity], help="Recorded refusals, newest first.")
        refused.add_argument(
            "--since", type=since_argument, default=None, help="A duration (15m, 1h, 2d) or an ISO 8601 time."
        )
        refused.add_argument("--limit", type=limit_argument, default=50, help="At most this many (default 50).")
        refused.add_argument("--kind", choices=[kind for kind, _label in Refusal.KIND_CHOICES], help="Only this kind.")

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand = options["subcommand"]
        if subcommand == "sync":
            self.sync(
                dry_run=options["dry_run"],
                prune=options["prune"],
                yes=options["yes"],
                interactive=options["interactive"],
            )
        elif subcommand == "list":
            self.list_scopes()
        elif subcommand == "usage":
            self.usage(options["scope"], options["limit"])
        elif subcommand == "refusals":
            self.refusals(options["since"], options["limit"], options["kind"])
        else:
            self.show(options["name"])

    # sync -----------------------------------------------------------------------------------
    def sync(self, *, dry_run: bool, prune: bool, yes: bool, interactive: bool) -> None:
        autodiscover_modules(DECLARATIONS_MODULE)
        declared = declared_scopes()
        existing = {scope.name: scope for scope in Scope.objects.prefetch_related("implies")}
        missing = {name: declared[name] for name in sorted(declared) if name not in existing}
        self._check_plan(declared, existing, missing, prune=prune)
        to_prune = sorted(set(existing) - set(declared)) if prune else []
        if prune and not declared:
            raise CommandError("No scopes are declared; refusing to prune every scope in the database.")

        verb = "Would create" if dry_run else "Created"
        for name, declaration in missing.items():
            extras = []
            if declaration.advertised:
                extras.append("advertised")
            if declaration.implies:
                extras.append("implies " + ", ".join(declaration.implies))
            self._say(f"{verb} {name}" + (f" ({'; '.join(extras)})" if extras else ""))
        for name in sorted(set(declared) & set(existing)):
            differences = self._differences(declared[name], existing[name])
            if differences:
                self._say(f"Kept {name} as it is in the database: {'; '.join(differences)}.", 2)
        if to_prune:
            self._say(("Would delete " if dry_run else "To delete: ") + ", ".join(to_prune))

        if dry_run:
            self._say(f"Dry run: {len(missing)} to create, {len(to_prune)} to delete; nothing written.")
            return
        if to_prune and not yes:
            if not interactive:
                raise CommandError("Refusing to delete scopes without confirmation; pass --yes.")
            try:
                answer = input(f"Delete {len(to_prune)} scope(s) from the database? Type 'yes' to confirm: ")
            except EOFError:
                answer = ""
            if answer.strip().lower() != "yes":
                raise CommandError("Cancelled; nothing was written.")

        with transaction.atomic():
            created = {
                name: Scope.objects.create(
                    name=name, description=declaration.description, is_advertised=declaration.advertised
                )
                for name, declaration in missing.items()
            }
            by_name = {**existing, **created}
            for name, scope in created.items():
                if missing[name].implies:
                    scope.implies.add(*(by_name[child] for child in missing[name].implies))
            if to_prune:
                Scope.objects.filter(name__in=to_prune).delete()
            scope_registry.invalidate()
        self._say(
            f"{len(created)} scope(s) created, {len(to_prune)} deleted, "
            f"{len(set(declared) & set(existing))} already present."
        )

    def _check_plan(
        self,
        declared: dict[str, DeclaredScope],
        existing: dict[str, Scope],
        missing: dict[str, DeclaredScope],
        *,
        prune: bool,
    ) -> None:
        """Refuse, before any write, what the database would refuse or what would be a cycle."""
        lowered: dict[str, str] = {}
        for name in [*existing, *declared]:
            other = lowered.setdefault(name.lower(), name)
            if other != name:
                raise CommandError(
                    f"Scope {name!r} differs only in letter case from {other!r}; scope names must differ "
                    "by more than case. Rename the declaration."
                )
        for name, declaration in missing.items():
            for child in declaration.implies:
                if child not in declared and (prune or child not in existing):
                    where = "declared (--prune would delete it)" if prune else "declared nor in the database"
                    raise CommandError(
                        f"{name} implies {child!r}, which is neither {where}. "
                        f'Declare it (declare_scope("{child}", "...")) or fix the implication.'
                    )
        # Only new scopes get edges and nothing existing implies a new scope, so a cycle can only
        # run through new scopes.
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for child in missing[name].implies:
                if child == name:
                    raise CommandError(f"{name} is declared to imply itself.")
                if child in missing:
                    if state.get(child) == 1:
                        chain = " -> ".join([*path[path.index(child) :], child])
                        raise CommandError(f"The declared implications form a cycle: {chain}.")
                    if child not in state:
                        visit(child, [*path, child])
            state[name] = 2

        for name in missing:
            if name not in state:
                visit(name, [name])

    @staticmethod
    def _differences(declaration: DeclaredScope, scope: Scope) -> list[str]:
        """What the database row says differently from the declaration, in words."""
        differences = []
        if declaration.description and declaration.description != scope.description:
            differences.append(f"description {scope.description!r}, declared {declaration.description!r}")
        if declaration.advertised != scope.is_advertised:
            differences.append(f"advertised {_flag(scope.is_advertised)}, declared {_flag(declaration.advertised)}")
        if not scope.is_active:
            differences.append("inactive")
        implied = {child.name for child in scope.implies.all()}
        if set(declaration.implies) != implied:
            differences.append(f"implies {_names(implied)}, declared {_names(declaration.implies)}")
        return differences

    def _say(self, message: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)

    def execute(self, *args: Any, **options: Any) -> Any:
        self.verbosity = options.get("verbosity", 1)
        return super().execute(*args, **options)

    # list / show ----------------------------------------------------------------------------
    def list_scopes(self) -> None:
        scopes = list(Scope.objects.prefetch_related("implies").order_by("name"))
        if not scopes:
            self.stdout.write("No scopes in the database. Run `manage.py mcp_scopes sync` or add some in the admin.")
            return
        rows = [("NAME", "ACTIVE", "ADVERTISED", "IMPLIES", "DESCRIPTION")]
        for scope in scopes:
            first_line = scope.description.strip().splitlines()[0] if scope.description.strip() else ""
            rows.append(
                (
                    scope.name,
                    _flag(scope.is_active),
                    _flag(scope.is_advertised),
                    _names(child.name for child in scope.implies.all()),
                    first_line,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
            self.stdout.write("  ".join([*cells, row[4]]).rstrip())

    def show(self, name: str) -> None:
        try:
            scope = Scope.objects.prefetch_related("implies").get(name=name)
        except Scope.DoesNotExist:
            hint = ""
            near = Scope.objects.filter(name__iexact=name).values_list("name", flat=True).first()
            if near:
                hint = f" Scope names are case-sensitive: did you mean {near!r}?"
            raise CommandError(f"Unknown scope {name!r}.{hint} `manage.py mcp_scopes list` shows them all.") from None
        graph = Scope.objects.graph()
        lines = [
            f"Name:         {scope.name}",
            f"Description:  {scope.description or '-'}",
            f"Active:       {_flag(scope.is_active)}",
            f"Advertised:   {_flag(scope.is_advertised)}",
            f"Implies:      {_names(child.name for child in scope.implies.all())}",
        ]
        if scope.is_active:
            lines.append(f"Effective:    {_names(graph.closures.get(scope.name, {scope.name}))}")
            lines.append(f"Granted by:   {_names(graph.implied_by.get(scope.name, ()))}")
        else:
            lines.append("Effective:    - (inactive: grants nothing)")
            lines.append("Granted by:   - (inactive: no scope grants it)")
        self.stdout.write("\n".join(lines))

    # usage / refusals -----------------------------------------------------------------------
    def _table(self, rows: list[tuple[str, ...]]) -> None:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            self.stdout.write("  ".join([*cells, row[-1]]).rstrip())

    def usage(self, scope: str | None, limit: int) -> None:
        from django_mcp_scopes.usage import live_token_usage

        if scope is not None and not Scope.objects.filter(name=scope).exists():
            raise CommandError(f"Unknown scope {scope!r}. `manage.py mcp_scopes list` shows them all.")
        usage = live_token_usage()
        if usage is None:
            self.stdout.write("django-oauth-toolkit is not installed: there is no token table to count.")
            return
        names = [scope] if scope is not None else sorted(set(usage) | set(Scope.objects.values_list("name", flat=True)))
        if not names:
            self.stdout.write("No scopes in the database and no live token holds any scope.")
            return
        rows: list[tuple[str, ...]] = [("SCOPE", "DIRECT", "THROUGH HIERARCHY", "CLIENTS (direct+through)")]
        for name in names:
            found = usage.get(name)
            if found is None:
                rows.append((name, "0", "0", "-"))
                continue
            clients = found.by_client()
            shown = [
                f"{_printable(c.name or c.client_id or '(no client)')}={c.direct}+{c.implied}" for c in clients[:limit]
            ]
            if len(clients) > limit:
                shown.append(f"... {len(clients) - limit} more")
            rows.append((name, str(found.direct), str(found.implied), ", ".join(shown)))
        self._table(rows)

    def refusals(self, since: datetime | None, limit: int, kind: str | None) -> None:
        from django_mcp_scopes.conf import mcp_scopes_settings

        if not mcp_scopes_settings.REFUSAL_LOG:
            self.stderr.write('Refusals are not being recorded (MCP_SCOPES["REFUSAL_LOG"] is False).')
        queryset = Refusal.objects.order_by("-created_at", "-id")
        if since is not None:
            queryset = queryset.filter(created_at__gte=since)
        if kind is not None:
            queryset = queryset.filter(kind=kind)
        found = list(queryset[:limit])
        if not found:
            when = f" since {since.isoformat(timespec='seconds')}" if since is not None else ""
            self.stdout.write(f"No refusals recorded{when}.")
            return
        rows: list[tuple[str, ...]] = [("TIME", "KIND", "REASON", "CLIENT", "OPERATION", "ENDPOINT", "MISSING")]
        for refusal in found:
            rows.append(
                (
                    _local(refusal.created_at).isoformat(timespec="seconds"),
                    refusal.kind,
                    _printable(refusal.reason),
                    _printable(refusal.client_id),
                    _printable(refusal.operation),
                    _printable(refusal.endpoint),
                    _printable(refusal.missing_scopes),
                )
            )
        self._table(rows)
