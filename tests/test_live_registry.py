"""Two real server processes sharing Redis see a scope change within REGISTRY_REFRESH_SECONDS (< 1 s)."""

import os
import subprocess
import sys
import time

import httpx
import pytest

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.models import Scope
from tests.live import ROOT, live_database_url, live_server_process, shared_redis_cache

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

pytestmark = [pytest.mark.live]


def _redis_reachable():
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def shared_redis():
    """The test process and the servers share one Redis cache under a prefix unique to this run."""
    if not _redis_reachable():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: the cross-process test needs it")
    with shared_redis_cache(REDIS_URL) as env:
        yield env


def state(base_url, *expand):
    response = httpx.get(base_url + "/_registry/", params={"expand": list(expand)}, timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.mark.redis
def test_two_servers_see_changes_within_the_refresh_interval(transactional_db, shared_redis):
    read = Scope.objects.create(name="entries:read", description="Read", is_advertised=True)
    write = Scope.objects.create(name="entries:write", description="Write")
    write.implies.add(read)
    env = {**shared_redis, "DATABASE_URL": live_database_url()}
    refresh = mcp_scopes_settings.REGISTRY_REFRESH_SECONDS
    assert refresh < 1.0

    with (
        live_server_process("tests.live_settings", env=env, server="runserver") as one,
        live_server_process("tests.live_settings", env=env, server="gunicorn") as two,
    ):
        servers = [one, two]
        first = [state(url, "entries:write") for url in servers]
        assert first[0]["pid"] != first[1]["pid"]
        for seen in first:
            assert seen["baseline"] == ["entries:read"]
            assert seen["expand"] == ["entries:read", "entries:write"]
        for url in servers:  # warm: each now holds a snapshot it trusts for `refresh` seconds
            state(url)

        def after_refresh(*expand):
            # The guarantee: a request made REGISTRY_REFRESH_SECONDS after the change sees it.
            time.sleep(refresh)
            return [state(url, *expand) for url in servers]

        # 1. A change made in this process (model save -> signal -> cache version bump).
        write.is_advertised = True
        write.save()
        for seen in after_refresh("entries:write"):
            assert seen["baseline"] == ["entries:read", "entries:write"]

        # 2. A bulk update plus invalidate() (what the admin actions do).
        Scope.objects.filter(name="entries:read").update(is_active=False)
        from django_mcp_scopes.registry import scope_registry

        scope_registry.invalidate()
        for seen in after_refresh("entries:write"):
            assert seen["baseline"] == ["entries:write"]
            assert seen["expand"] == ["entries:write"]  # the inactive scope is cut out

        # 3. A change made by another process: `manage.py shell` in a subprocess.
        code = (
            "from django_mcp_scopes.models import Scope;"
            "Scope.objects.create(name='tags:read', is_advertised=True);"
            "Scope.objects.filter(name='entries:write').delete()"
        )
        shell = subprocess.run(
            [sys.executable, "-m", "django", "shell", "-c", code],
            cwd=ROOT,
            env={
                **os.environ,
                **env,
                "DJANGO_SETTINGS_MODULE": "tests.live_settings",
                "PYTHONPATH": str(ROOT),
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert shell.returncode == 0, shell.stderr
        for seen in after_refresh():
            assert seen["baseline"] == ["tags:read"]
            assert seen["active"] == ["tags:read"]


@pytest.mark.parametrize("server", ["runserver", "gunicorn", "uvicorn"])
def test_live_server_helper_runs_each_server(transactional_db, server):
    """tests/live.py works for WSGI and ASGI servers against the test database."""
    Scope.objects.create(name="entries:read", is_advertised=True)
    env = {"DATABASE_URL": live_database_url()}
    with live_server_process("tests.live_settings", env=env, server=server) as base_url:
        assert state(base_url)["baseline"] == ["entries:read"]


def test_live_server_helper_reports_a_server_that_cannot_start():
    with (
        pytest.raises(RuntimeError, match="could not start"),
        live_server_process("tests.no_such_settings_module", server="gunicorn"),
    ):
        pass  # pragma: no cover
