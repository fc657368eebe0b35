"""Helpers shared by the enforcement tests: real DOT rows, scopes, a live server process."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from django_mcp_scopes.models import Scope
from tests.live import LiveServer, live_database_url

SERVER = "http://testserver"


def make_scopes() -> dict[str, Scope]:
    """notes:read, notes:write (implies notes:read), notes:delete, admin (implies write and delete)."""
    read = Scope.objects.create(name="notes:read", description="Read notes", is_advertised=True)
    write = Scope.objects.create(name="notes:write", description="Write notes")
    delete = Scope.objects.create(name="notes:delete", description="Delete notes")
    admin = Scope.objects.create(name="admin", description="Everything")
    write.implies.add(read)
    admin.implies.add(write, delete)
    return {"notes:read": read, "notes:write": write, "notes:delete": delete, "admin": admin}


def make_application(name: str = "client") -> Application:
    user = get_user_model().objects.create_user(username=f"owner-{secrets.token_hex(4)}")
    return Application.objects.create(
        name=name,
        user=user,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://client.example/cb",
        client_secret="s3cret",
        hash_client_secret=False,
    )


def make_token(
    scope: str = "notes:read",
    resource: list[str] | None = None,
    *,
    application: Application | None = None,
    user=None,
    expires_in: float = 3600,
    server: str = SERVER,
) -> tuple[str, AccessToken]:
    """A real AccessToken row; resource defaults to the /mcp endpoint of ``server``."""
    application = application or make_application()
    if user is None:
        user = get_user_model().objects.create_user(username=f"user-{secrets.token_hex(4)}")
    token = secrets.token_urlsafe(32)
    row = AccessToken.objects.create(
        user=user,
        application=application,
        token=token,
        scope=scope,
        expires=timezone.now() + timedelta(seconds=expires_in),
        resource=[f"{server}/mcp"] if resource is None else resource,
    )
    return token, row


def start_enforcement_server(env: dict[str, str] | None = None) -> LiveServer:
    """gunicorn (1 sync worker) with ``tests.enforcement_settings`` on the test database, answering."""
    return LiveServer(
        "tests.enforcement_settings",
        server="gunicorn",
        app="django.core.wsgi:get_wsgi_application()",
        env={"DATABASE_URL": live_database_url(), **(env or {})},
        ready_path="/api/unprotected",
        ready_status=200,
        extra_args=["--log-level", "warning"],
    ).start()
