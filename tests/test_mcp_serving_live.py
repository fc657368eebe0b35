"""The fast lane in real servers: uvicorn and gunicorn gthread serving the lane over Django's
handler, driven by the official ``mcp`` client with real django-oauth-toolkit tokens.

A middleware stamps every response it sees (tests/mcp_lane.py): the unstamped ones came from the lane.
"""

from __future__ import annotations

import json

import httpx
import pytest
from mcp.client.auth.utils import extract_resource_metadata_from_www_auth, extract_scope_from_www_auth
from mcp.shared.exceptions import MCPError

from django_mcp_scopes.mcp.endpoint import INSUFFICIENT_SCOPE
from tests._mcp_live import ERAS, call, live_db, mcp_client, run  # noqa: F401 (live_db is a fixture)
from tests.live import LiveServer
from tests.mcp_lane import STAMP
from tests.test_mcp_live import dot_tokens  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.live, pytest.mark.django_db]

SERVERS = {
    "gunicorn-gthread": {
        "server": "gunicorn", "app": "tests.mcp_lane_wsgi:application", "worker_class": "gthread", "threads": 4,
    },
    "uvicorn": {"server": "uvicorn", "app": "tests.mcp_lane_asgi:application", "lifespan": "auto"},
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request, live_db):  # noqa: F811
    live = LiveServer(
        "tests.settings_mcp_lane", env={"DATABASE_URL": live_db}, ready_path="/mcp", **SERVERS[request.param]
    ).start()
    live.name = request.param
    yield live
    live.stop()


def _stamped(response) -> bool:
    return response.headers.get(STAMP) == "1"


@pytest.mark.parametrize("era", sorted(ERAS))
def test_official_client_session_with_a_step_up(server, era, dot_tokens):  # noqa: F811
    async def scenario(token):
        async with mcp_client(server.url + "/dot", token, era) as (client, responses):
            names = {tool.name for tool in (await client.list_tools()).tools}
            who = json.loads((await client.call_tool("whoami", {})).content[0].text)
            echoed = [(await client.call_tool("echo", {"text": str(n)})).content[0].text for n in range(3)]
            try:
                await client.call_tool("moderate", {"entry": 1})
                denied = None
            except MCPError as exc:
                denied = exc.error
            return names, who, echoed, denied, responses

    names, who, echoed, denied, responses = run(scenario(dot_tokens["read"]))
    assert "count_scopes" in names and "create_entry" not in names
    assert who["scopes"] == ["entries:read"]
    assert echoed == ["0", "1", "2"]
    assert denied is not None and denied.code == INSUFFICIENT_SCOPE
    challenge = next(response for response in responses if response.status_code == 403)
    assert extract_scope_from_www_auth(challenge) == "admin"
    assert extract_resource_metadata_from_www_auth(challenge) == (
        server.url + "/.well-known/oauth-protected-resource/dot/mcp"
    )
    posts = [response for response in responses if response.request.method == "POST"]
    assert [response for response in posts if response.status_code == 200 and not _stamped(response)], (
        "no call took the lane",
        server.log(),
    )
    assert not _stamped(challenge)  # a warm token's 403 on the lane
    if server.name == "gunicorn-gthread":
        assert not any(_stamped(response) for response in posts)  # every MCP POST, cold or warm

    # The step-up: a token with the scope the challenge named (here entries:write for create_entry).
    async def create(token):
        async with mcp_client(server.url + "/dot", token, era) as (client, _):
            return (await client.call_tool("create_entry", {"title": "lane"})).content[0].text

    assert run(create(dot_tokens["write"])) == "created lane"


def test_other_requests_still_go_through_django(server):
    plain = httpx.get(server.url + "/mcp", timeout=10)
    assert plain.status_code == 405 and _stamped(plain)
    metadata = httpx.get(server.url + "/.well-known/oauth-protected-resource/dot/mcp", timeout=10)
    assert metadata.status_code == 200 and _stamped(metadata)
    # A call with a static test token (not an in-memory authentication: checked in the view's
    # thread hop under ASGI): on the lane too, under both servers.
    answered = httpx.post(
        server.url + "/mcp",
        json=call("echo", {"text": "x"}),
        headers={"Authorization": "Bearer t-read", "Accept": "application/json, text/event-stream",
                 "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"},
        timeout=10,
    )  # fmt: skip
    assert answered.status_code == 200
    assert not _stamped(answered)
