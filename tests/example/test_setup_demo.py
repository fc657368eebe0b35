from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from oauth2_provider.models import Application

from django_mcp_scopes.models import Scope
from django_mcp_scopes.registry import scope_registry

pytestmark = pytest.mark.django_db


def setup_demo(*args):
    out = StringIO()
    call_command("setup_demo", *args, stdout=out)
    return out.getvalue()


def test_creates_scopes_hierarchy_baseline_and_users():
    out = setup_demo("--port", "8123")
    assert "Scopes: 5 created, 0 already present. Users created: demo, admin. MCP Inspector client: created." in out
    assert "--cli http://127.0.0.1:8123/mcp --client-id mcp-inspector" in out
    assert "http://127.0.0.1:8123/mcp" in out
    assert "claude mcp add --transport http journal http://127.0.0.1:8123/mcp" in out
    assert scope_registry.baseline() == ["entries:read", "tags:read", "user:read"]
    assert scope_registry.expand(["entries:write"]) == {"entries:write", "entries:read"}
    assert scope_registry.expand(["tags:write"]) == {"tags:write", "tags:read"}
    assert scope_registry.expand(["user:read"]) == {"user:read"}
    for scope in Scope.objects.all():
        assert scope.is_active and len(scope.description) > 15, scope
    demo = get_user_model().objects.get(username="demo")
    assert demo.check_password("demo") and not demo.is_staff
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")
    inspector = Application.objects.get(client_id="mcp-inspector")
    assert inspector.client_type == Application.CLIENT_PUBLIC
    assert inspector.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert inspector.redirect_uri_allowed("http://127.0.0.1:51234/oauth/callback")
    assert not inspector.redirect_uri_allowed("http://evil.example:6276/oauth/callback")


def test_is_idempotent_and_keeps_what_an_admin_changed():
    setup_demo()
    scope = Scope.objects.get(name="entries:write")
    scope.description = "Edited by an admin"
    scope.is_active = False
    scope.save()
    Scope.objects.get(name="tags:write").implies.clear()
    demo = get_user_model().objects.get(username="demo")
    demo.set_password("changed")
    demo.save()
    out = setup_demo()
    assert "Scopes: 0 created, 5 already present. Users created: none. MCP Inspector client: already present." in out
    assert Scope.objects.count() == 5
    scope.refresh_from_db()
    assert scope.description == "Edited by an admin" and not scope.is_active
    assert not Scope.objects.get(name="tags:write").implies.exists()
    assert get_user_model().objects.get(username="demo").check_password("changed")


def test_recreates_a_deleted_scope():
    setup_demo()
    Scope.objects.filter(name="tags:write").delete()
    assert "Scopes: 1 created, 4 already present." in setup_demo()
    assert scope_registry.expand(["tags:write"]) == {"tags:write", "tags:read"}


def test_no_admin():
    assert "Users created: demo." in setup_demo("--no-admin")
    assert not get_user_model().objects.filter(username="admin").exists()


@pytest.mark.parametrize("port", ["0", "abc", "70000", "-1"])
def test_bad_port_is_refused_and_writes_nothing(port):
    with pytest.raises(CommandError, match="--port"):
        setup_demo("--port", port)
    assert not Scope.objects.exists()
    assert not get_user_model().objects.exists()


def test_check_deploy_with_production_settings_lists_no_dot_warning(tmp_path):
    import os
    import subprocess
    import sys

    from tests.live import ROOT

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_BASE_URL": "https://journal.example.com",
        "DJANGO_SECRET_KEY": "x" * 64,
        "EXAMPLE_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "oauth2_provider.W" not in output, output
    assert "oauth2_provider.E" not in output, output
