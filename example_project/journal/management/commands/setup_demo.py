"""Load the demo data (scopes, user demo/demo) idempotently and print how to connect."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandParser

from django_mcp_scopes.models import Scope

DEMO_SCOPES = [
    ("user:read", "See your username and account details", True, []),
    ("entries:read", "Read your journal entries", True, []),
    ("entries:write", "Create, change and delete your journal entries", False, ["entries:read"]),
    ("tags:read", "See the tags you use in your journal", True, []),
    ("tags:write", "Create, change and delete your tags and tag your entries", False, ["tags:read"]),
]


class Command(BaseCommand):
    help = "Create the demo scopes and the demo user (demo/demo) if they are missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, **options: Any) -> None:
        for name, description, advertised, _implies in DEMO_SCOPES:
            Scope.objects.get_or_create(
                name=name, defaults={"description": description, "is_advertised": advertised}
            )
        for name, _description, _advertised, implies in DEMO_SCOPES:
            if implies:
                Scope.objects.get(name=name).implies.add(*Scope.objects.filter(name__in=implies))
        user_model = get_user_model()
        if not user_model.objects.filter(username="demo").exists():
            user_model.objects.create_user("demo", password="demo")
        base = f"http://127.0.0.1:{options['port']}"
        self.stdout.write(
            f"\nExample MCP server: {base}/mcp\n"
            f"Protected-resource metadata: {base}/.well-known/oauth-protected-resource/mcp\n"
            f"Sign in as demo / demo.\n"
        )
