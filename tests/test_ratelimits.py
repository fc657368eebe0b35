"""Rate limits per token, client and user (issue 11): MCP endpoint and DRF permissions, exact under
concurrency (threads and processes sharing Redis), and the documented behaviour with the cache down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from django_mcp_scopes import declarations
from django_mcp_scopes.principal import Principal
from django_mcp_scopes.ratelimits import RATE_LIMITED, parse_rules, rate_limiter
from tests.live import ROOT

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CLOSED_PORT = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1: a cache server really down
        "KEY_PREFIX": "tests-down",
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


@pytest.fixture(autouse=True)
def _forget_declarations():
    """The example's URLconf and setup_demo declare its scopes; other tests expect the registry untouched."""
    before = set(declarations.declared_scopes())
    yield
    for name in set(declarations.declared_scopes()) - before:
        declarations._forget(name)


def _principal(token: str = "tok", client: str = "client", user_pk: int | None = None) -> Principal:
    user = AnonymousUser() if user_pk is None else type("U", (), {"pk": user_pk, "is_authenticated": True})()
    return Principal(user=user, granted_scopes=frozenset(), client_id=client, token_id=token)


# rules ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rate", "limit", "period"),
    [("60/minute", 60, 60), ("1000/hour", 1000, 3600), ("10/30 seconds", 10, 30), ("5/day", 5, 86400)],
)
def test_rates_are_read(rate, limit, period):
    (rule,) = parse_rules([{"rate": rate, "per": "client", "operations": ["tools/list"]}])
    assert (rule.limit, rule.period, rule.per, rule.operations) == (limit, period, "client", {"tools/list"})


@pytest.mark.parametrize(
    "rules",
    [
        "60/minute",
        [{"rate": "60 per minute"}],
        [{"rate": "0/minute"}],
        [{"rate": "\u0665/minute"}],
        [{"rate": "5/fortnight"}],
        [{"rate": "5/minute", "per": "ip"}],
        [{"rate": "5/minute", "operations": "tools/list"}],
        [{"rate": "5/minute", "burst": 3}],
    ],
)
def test_bad_rules_are_refused_by_name(rules):
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMITS"):
        parse_rules(rules)


def test_sliding_window_does_not_double_the_rate_at_a_boundary():
    with override_settings(MCP_SCOPES={"RATE_LIMITS": [{"rate": "10/minute"}]}):
        principal = _principal(token=uuid.uuid4().hex)
        end_of_window = 60 * 1000 + 59.5
        assert all(rate_limiter.check(principal, ["x"], now=end_of_window) is None for _ in range(10))
        refusal = rate_limiter.check(principal, ["x"], now=end_of_window + 1)  # the next window, at once
        assert refusal is not None
        assert 1 <= refusal.retry_after <= 60
        # Retry-After is honest: one second before it a request is still refused (and counted).
        assert rate_limiter.check(principal, ["x"], now=end_of_window + 1 + refusal.retry_after - 1.5) is not None
        # Most of a minute later the previous window has faded: requests pass again.
        assert rate_limiter.check(principal, ["x"], now=end_of_window + 55) is None


def test_each_principal_and_rule_counts_apart():
    rules = [{"rate": "2/minute", "per": "token"}, {"rate": "3/minute", "per": "client"}]
    with override_settings(MCP_SCOPES={"RATE_LIMITS": rules}):
        client = uuid.uuid4().hex
        first, second = _principal("a" + client, client), _principal("b" + client, client)
        assert rate_limiter.check(first, []) is None
        assert rate_limiter.check(first, []) is None
        refusal = rate_limiter.check(first, [])
        assert refusal is not None and refusal.rule.per == "token"
        # The client's limit (3) counted all three of the first token's requests.
        refusal = rate_limiter.check(second, [])
        assert refusal is not None and refusal.rule.per == "client"
        # No user: a per-user rule does not apply (and never counts everyone as one).
        assert identity_free_user_passes()


def identity_free_user_passes() -> bool:
    with override_settings(MCP_SCOPES={"RATE_LIMITS": [{"rate": "1/minute", "per": "user"}]}):
        nobody = _principal(uuid.uuid4().hex)
        return rate_limiter.check(nobody, []) is None and rate_limiter.check(nobody, []) is None


# concurrency --------------------------------------------------------------------------------------
def test_concurrent_threads_are_counted_exactly():
    limit, threads, each = 50, 16, 10
    allowed: list[int] = []
    lock = threading.Lock()
    principal = _principal(uuid.uuid4().hex)

    def hammer() -> None:
        passed = sum(rate_limiter.check(principal, []) is None for _ in range(each))
        with lock:
            allowed.append(passed)

    with override_settings(MCP_SCOPES={"RATE_LIMITS": [{"rate": f"{limit}/hour"}]}):
        workers = [threading.Thread(target=hammer) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert sum(allowed) == limit


_CHILD = textwrap.dedent(
    """
    import os, sys
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                            "LOCATION": os.environ["RL_REDIS"], "KEY_PREFIX": os.environ["RL_PREFIX"]}},
        MCP_SCOPES={"RATE_LIMITS": [{"rate": os.environ["RL_RATE"], "per": "client"}],
                    "CACHE_KEY_PREFIX": "rl-test"},
        SECRET_KEY="x",
    )
    django.setup()
    from django_mcp_scopes.principal import Principal
    from django_mcp_scopes.ratelimits import rate_limiter

    principal = Principal(user=None, granted_scopes=frozenset(), client_id=os.environ["RL_CLIENT"], token_id="t")
    sys.stdin.readline()  # start together
    print(sum(rate_limiter.check(principal, []) is None for _ in range(int(os.environ["RL_EACH"]))))
    """
)


@pytest.mark.redis
def test_processes_sharing_redis_are_counted_exactly():
    """Four processes, one client, one shared Redis: exactly ``limit`` requests pass in all."""
    limit, processes, each = 100, 4, 60
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RL_REDIS": REDIS_URL,
        "RL_PREFIX": f"tests-rl-{uuid.uuid4().hex[:12]}",
        "RL_RATE": f"{limit}/hour",
        "RL_CLIENT": uuid.uuid4().hex,
        "RL_EACH": str(each),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    try:
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert all(child.returncode == 0 for child in children)
    assert sum(int(output.strip()) for output in outputs) == limit


# the MCP endpoint ---------------------------------------------------------------------------------
def _mcp(token: str, method: str, params: dict[str, Any], name: str | None = None):
    body = {"jsonrpc": "2.0", "id": 3, "method": method, "params": {**params, "_meta": META}}
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_ACCEPT": "application/json, text/event-stream",
        "HTTP_MCP_PROTOCOL_VERSION": MODERN,
        "HTTP_MCP_METHOD": method,
    }
    if name is not None:
        headers["HTTP_MCP_NAME"] = name
    return Client().post("/mcp", data=json.dumps(body), content_type="application/json", **headers)


@pytest.mark.urls("tests.mcp_urls")
@pytest.mark.django_db(transaction=True)
def test_mcp_endpoint_answers_429_with_retry_after_and_a_jsonrpc_error():
    from tests.mcp_app import ensure_scopes

    ensure_scopes()
    rules = [{"rate": "2/minute", "per": "token", "operations": ["tools/call echo"]}]
    with override_settings(MCP_SCOPES={"RATE_LIMITS": rules}):
        call = {"name": "echo", "arguments": {"text": "hi"}}
        assert _mcp("t-read", "tools/call", call, "echo").status_code == 200
        assert _mcp("t-read", "tools/call", call, "echo").status_code == 200
        refused = _mcp("t-read", "tools/call", call, "echo")
        assert refused.status_code == 429
        assert 1 <= int(refused["Retry-After"]) <= 120
        error = refused.json()["error"]
        assert refused.json()["id"] == 3
        assert error["code"] == RATE_LIMITED
        assert error["data"]["error"] == "rate_limited"
        assert error["data"]["per"] == "token"
        assert "Try again in" in error["message"]
        # Other operations and other tokens are not limited by this rule.
        assert _mcp("t-read", "tools/list", {}).status_code == 200
        assert _mcp("t-write", "tools/call", call, "echo").status_code == 200


@pytest.mark.urls("tests.mcp_urls")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("when_down", "status"), [("allow", 200), ("refuse", 503)])
def test_mcp_endpoint_with_the_cache_server_down(when_down, status, caplog):
    from tests.mcp_app import ensure_scopes

    ensure_scopes()
    settings = {"RATE_LIMITS": [{"rate": "1/minute"}], "RATE_LIMITS_WHEN_CACHE_DOWN": when_down}
    with override_settings(CACHES=CLOSED_PORT, MCP_SCOPES=settings):
        first = _mcp("t-read", "tools/list", {})
        second = _mcp("t-read", "tools/list", {})  # over the limit, had the cache counted
    assert first.status_code == second.status_code == status
    if status == 503:
        assert first["Retry-After"]
        assert first.json()["error"] == "temporarily_unavailable"
    assert "mcp_rate_limit_cache_unavailable" in caplog.text


# DRF ----------------------------------------------------------------------------------------------
@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db
def test_drf_permission_path_limits_per_user_and_operation(client):
    from django.core.management import call_command

    from tests.enforcement_support import make_token

    call_command("setup_demo", "--no-admin", verbosity=0, stdout=None)
    rules = [{"rate": "1/minute", "per": "user", "operations": ["GET /api/entries"]}]
    token, row = make_token("entries:write", ["http://testserver/api/entries"])
    other_token, _ = make_token("entries:write", ["http://testserver/api/entries"], user=row.user)
    with override_settings(MCP_SCOPES={"RATE_LIMITS": rules}):
        assert client.get("/api/entries", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
        refused = client.get("/api/entries", HTTP_AUTHORIZATION=f"Bearer {other_token}")  # same user
        assert refused.status_code == 429
        assert 1 <= int(refused["Retry-After"]) <= 120  # a sliding window: up to two periods
        assert refused.json()["error"] == "rate_limited"
        created = client.post(
            "/api/entries",
            {"title": "t", "content": "c"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert created.status_code == 201  # POST is another operation
