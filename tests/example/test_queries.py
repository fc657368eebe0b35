"""Database queries per request of the example's ``/mcp`` (issue 12): counted, never timed.

Counted in every thread: the endpoint hands the MCP exchange to its event-loop thread and the SDK
runs a sync tool in a worker thread, where ``CaptureQueriesContext`` (one connection, one thread)
would see nothing. The speed goals live in ``benchmarks/``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.backends import utils
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken

from tests.enforcement_support import make_application

MODERN = "2026-07-28"
_META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


@contextmanager
def queries_in_every_thread() -> Iterator[list[str]]:
    """The SQL run through Django while inside, whichever thread ran it (but the periodic scope check)."""
    statements: list[str] = []
    lock = threading.Lock()
    original = utils.CursorWrapper._execute_with_wrappers

    def counted(cursor: Any, sql: Any, *args: Any, **kwargs: Any) -> Any:
        # The scope-version check runs once per process every REGISTRY_REFRESH_SECONDS, in whichever
        # request comes due (docs/faults.md): not a per-request query.
        if "mcp_scopes_epochs" not in str(sql):
            with lock:
                statements.append(str(sql))
        return original(cursor, sql, *args, **kwargs)

    utils.CursorWrapper._execute_with_wrappers = counted  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        utils.CursorWrapper._execute_with_wrappers = original  # type: ignore[method-assign]


@pytest.fixture
def demo_token(db: None) -> Iterator[str]:
    call_command("setup_demo", "--no-admin", verbosity=0, stdout=None)
    token = "queries-test-token"
    AccessToken.objects.create(
        user=get_user_model().objects.get(username="demo"), application=make_application(), token=token,
        scope="user:read entries:read", expires=timezone.now() + timedelta(hours=1),
        resource=["http://testserver/mcp"],
    )  # fmt: skip
    return token


def _call(client: Client, token: str, method: str, name: str | None = None) -> str:
    params: dict[str, Any] = {"_meta": _META}
    extra = {}
    if name is not None:
        params.update(name=name, arguments={})
        extra["HTTP_MCP_NAME"] = name
    response = client.post(
        "/mcp", data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_ACCEPT="application/json, text/event-stream", HTTP_MCP_PROTOCOL_VERSION=MODERN,
        HTTP_MCP_METHOD=method, **extra,
    )  # fmt: skip
    text = response.content.decode()
    assert response.status_code == 200, text
    assert '"error"' not in text and '"isError":true' not in text, text
    return text


def _warm_up_the_process(client: Client) -> None:
    """A first request with another token: what a process does once is not what a token costs."""
    other = "queries-warm-up-token"
    AccessToken.objects.create(
        user=get_user_model().objects.get(username="demo"), application=make_application("warm-up"), token=other,
        scope="user:read", expires=timezone.now() + timedelta(hours=1), resource=["http://testserver/mcp"],
    )  # fmt: skip
    _call(client, other, "tools/list")


def _queries(token: str, method: str, name: str | None = None) -> tuple[list[str], list[str]]:
    """The queries of the token's first request (cold) and of the three after it (warm)."""
    client = Client()
    _warm_up_the_process(client)
    with queries_in_every_thread() as cold:
        _call(client, token, method, name)
    with queries_in_every_thread() as warm:
        for _ in range(3):
            _call(client, token, method, name)
    return cold, warm


@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("method", "name"), [("tools/list", None), ("tools/call", "whoami")])
def test_a_warm_token_is_not_looked_up_again(demo_token, method, name):
    cold, warm = _queries(demo_token, method, name)
    assert sum("oauth2_provider_accesstoken" in sql for sql in cold) == 1, cold
    assert not any("oauth2_provider_accesstoken" in sql for sql in warm), warm


@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db(transaction=True)
def test_a_listing_costs_no_query_when_the_token_is_warm(demo_token):
    _, warm = _queries(demo_token, "tools/list")
    assert warm == [], warm


@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db(transaction=True)
def test_a_listing_costs_one_query_when_the_token_is_cold(demo_token):
    cold, _ = _queries(demo_token, "tools/list")
    assert len(cold) == 1, cold


@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db(transaction=True)
def test_whoami_costs_no_query_when_the_token_is_warm(demo_token):
    _, warm = _queries(demo_token, "tools/call", "whoami")
    assert warm == [], warm
