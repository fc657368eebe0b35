"""Load the demo data idempotently and print how to connect.

Creates the journal's scopes (declared in ``example_project/journal/scopes.py``) that are missing,
with their descriptions, baseline flag and implications; a scope that already exists is left as it
is (an administrator may have edited it). Creates the demo user ``demo`` (password ``demo``) and,
unless ``--no-admin``, a superuser ``admin`` (password ``admin``) for the admin site, if missing.
Creates a public client ``mcp-inspector`` for the MCP Inspector's CLI, if missing (see
``docs/example.md``: the Inspector steps up only with a client id it was given).
Everything happens in one transaction: a failure leaves nothing half-done.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError, CommandParser
from django.db import transaction

from django_mcp_scopes.declarations import declared_scopes
from django_mcp_scopes.models import Scope
from django_mcp_scopes.registry import scope_registry
from example_project.journal.scopes import JOURNAL_SCOPES, declare_journal_scopes

DEMO_USERS = [("demo", "demo", False), ("admin", "admin", True)]

INSPECTOR_CLIENT_ID = "mcp-inspector"
# The Inspector's default callback. A loopback IP redirect matches on any port (RFC 8252 section 7.3,
# as django-oauth-toolkit implements it), so --callback-url may pick another port of 127.0.0.1.
INSPECTOR_REDIRECT_URIS = "http://127.0.0.1:6276/oauth/callback"


class Command(BaseCommand):
    help = "Create the journal's scopes and the demo users (demo/demo, admin/admin) if they are missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", default="8000", help="Port the server will listen on (for the printed URLs).")
        parser.add_argument("--host", default="127.0.0.1", help="Host the server will listen on.")
        parser.add_argument("--no-admin", action="store_true", help="Do not create the admin/admin superuser.")

    def handle(self, *args: Any, **options: Any) -> None:
        port = str(options["port"])
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise CommandError(f"--port must be a number from 1 to 65535; got {port!r}.")
        declare_journal_scopes()
        declared = declared_scopes()
        with transaction.atomic():
            created = self._create_scopes({name: declared[name] for name in JOURNAL_SCOPES})
            users = [u for u in DEMO_USERS if not (options["no_admin"] and u[2])]
            new_users = self._create_users(users)
            inspector_created = self._create_inspector_client()
        if created:
            scope_registry.invalidate()
        self.stdout.write(
            f"Scopes: {len(created)} created, {len(JOURNAL_SCOPES) - len(created)} already present. "
            f"Users created: {', '.join(new_users) or 'none'}. "
            f"MCP Inspector client: {'created' if inspector_created else 'already present'}."
        )
        self._print_instructions(options["host"], port, with_admin=not options["no_admin"])

    def _create_scopes(self, declarations: dict[str, Any]) -> list[str]:
        existing = {scope.name: scope for scope in Scope.objects.filter(name__in=declarations)}
        created = {
            name: Scope.objects.create(
                name=name, description=declaration.description, is_advertised=declaration.advertised
            )
            for name, declaration in declarations.items()
            if name not in existing
        }
        by_name = {**existing, **created}
        for name, scope in created.items():
            implied = [by_name[child] for child in declarations[name].implies if child in by_name]
            if implied:
                scope.implies.add(*implied)
        return sorted(created)

    def _create_users(self, users: list[tuple[str, str, bool]]) -> list[str]:
        user_model = get_user_model()
        created = []
        for username, password, is_admin in users:
            if user_model.objects.filter(username=username).exists():
                continue
            if is_admin:
                user_model.objects.create_superuser(username, password=password)
            else:
                user_model.objects.create_user(username, password=password)
            created.append(username)
        return created

    def _create_inspector_client(self) -> bool:
        """A public client with PKCE and a loopback redirect: what the Inspector would register itself."""
        from oauth2_provider.models import get_application_model

        application_model = get_application_model()
        _application, created = application_model.objects.get_or_create(
            client_id=INSPECTOR_CLIENT_ID,
            defaults={
                "name": "MCP Inspector (CLI)",
                "client_type": application_model.CLIENT_PUBLIC,
                "authorization_grant_type": application_model.GRANT_AUTHORIZATION_CODE,
                "redirect_uris": INSPECTOR_REDIRECT_URIS,
                "client_secret": "",
                "hash_client_secret": False,
            },
        )
        return created

    def _print_instructions(self, host: str, port: str, *, with_admin: bool) -> None:
        base = f"http://{host}:{port}"
        lines = [
            "",
            f"EpicMe journal MCP server: {base}/mcp  (Streamable HTTP, OAuth)",
            f"  protected-resource metadata: {base}/.well-known/oauth-protected-resource/mcp",
            f"  authorization server:        {base}/.well-known/oauth-authorization-server",
            "Sign in as demo / demo when your MCP client opens the browser.",
        ]
        if with_admin:
            lines.append(f"Admin (scopes, users, entries): {base}/admin/  as admin / admin")
        lines += [
            "Connect:",
            f"  MCP Inspector: npx @modelcontextprotocol/inspector  (Streamable HTTP, URL {base}/mcp)",
            f"  its CLI:       npx @modelcontextprotocol/inspector --cli {base}/mcp --client-id {INSPECTOR_CLIENT_ID} "
            "--method tools/list",
            f"  Claude Code:   claude mcp add --transport http journal {base}/mcp",
            f'  VS Code:       .vscode/mcp.json  {{"servers": {{"journal": {{"type": "http", "url": "{base}/mcp"}}}}}}',
            "Demo accounts are for local use only.",
            "",
        ]
        self.stdout.write("\n".join(lines))
