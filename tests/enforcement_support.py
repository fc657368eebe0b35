"""Helpers shared by the enforcement tests: real DOT rows, scopes, a live server process."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from django_mcp_scopes.models import Scope

ROOT = Path(__file__).resolve().parent.parent
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


def live_database_url() -> str:
    """The URL of the database the tests use (the test database), for server processes."""
    from django.db import connection

    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A real server process (gunicorn, 1 worker) on a free loopback port, running this worktree."""

    def __init__(self, settings: str = "tests.enforcement_settings", env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = dict(os.environ)
        environment.update(
            {
                "DJANGO_SETTINGS_MODULE": settings,
                "PYTHONPATH": str(ROOT),
                "DATABASE_URL": live_database_url(),
            }
        )
        environment.update(env or {})
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--log-level",
                "warning",
                "django.core.wsgi:get_wsgi_application()",
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 30) -> LiveServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"server exited: {output}")
            try:
                urllib.request.urlopen(self.url + "/api/unprotected", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> str:
        self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output.decode(errors="replace") if output else ""
