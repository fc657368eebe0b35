"""The endpoint under every deployment it promises: gunicorn sync and gthread workers with
``--preload`` (the event-loop thread is started before the fork, so workers must build their
own), several workers, uvicorn with lifespan and workers, and ``runserver``."""

from __future__ import annotations

import asyncio

import pytest

from tests._mcp_live import ERAS, call, live_db, mcp_client, post, start_server  # noqa: F401

pytestmark = [pytest.mark.live, pytest.mark.django_db]


@pytest.fixture(
    scope="module",
    params=["gunicorn-sync-preload", "gunicorn-gthread-preload", "uvicorn-lifespan-workers", "runserver"],
)
def deployed(request, live_db):  # noqa: F811
    live = start_server(request.param, live_db, extra_env={"MCP_TEST_WARM_LOOP": "1"})
    yield live
    live.stop()


@pytest.mark.parametrize("era", ["modern", "handshake"])
def test_many_requests_any_worker(deployed, era):
    for request_id in range(12):
        echoed = post(deployed, call("echo", {"text": str(request_id)}, era, request_id), era=era)
        assert echoed.status_code == 200, deployed.log()
        assert echoed.json()["result"]["content"][0]["text"] == str(request_id)
        counted = post(deployed, call("count_scopes", {}, era, request_id), era=era)
        assert counted.status_code == 200, deployed.log()
        assert counted.json()["result"]["structuredContent"]["result"] >= 3
        denied = post(deployed, call("create_entry", {"title": "x"}, era, request_id), era=era)
        assert denied.status_code == 403


@pytest.mark.parametrize("era", sorted(ERAS))
def test_official_client(deployed, era):
    async def scenario():
        async with mcp_client(deployed.url, "t-write", era) as (client, _):
            names = {tool.name for tool in (await client.list_tools()).tools}
            created = await client.call_tool("create_entry", {"title": "deployed"})
            return names, created

    names, created = asyncio.run(scenario())
    assert "create_entry" in names
    assert created.content[0].text == "created deployed"
