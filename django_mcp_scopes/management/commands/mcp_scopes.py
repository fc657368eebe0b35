"""``manage.py mcp_scopes sync|list|show``: the scopes declared in code and those in the database.

``sync`` creates the declared scopes missing from the database, with their description,
advertised flag and implications. A scope that already exists is never changed (an admin may
have edited its description, flags or implications on purpose); only newly created scopes get
their declared implication edges. ``--prune`` deletes database scopes nobody declares, after a
confirmation (or ``--yes``); ``--dry-run`` prints what would change and writes nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.module_loading import autodiscover_modules

from django_mcp_scopes.declarations import DeclaredScope, declared_scopes
from django_mcp_scopes.models import Scope
from django_mcp_scopes.registry import scope_registry

# Each installed app may hold a module of this name that calls declare_scope() at import time.
DECLARATIONS_MODULE = "mcp_scopes"


def _flag(value: bool) -> str:
    return "yes" if value else "no"


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
