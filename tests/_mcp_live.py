"""Shared pieces of the live MCP endpoint tests: the server variants the endpoint promises to work
under, the test database for server processes, the official client, raw JSON-RPC over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from django_mcp_scopes.models import Scope
from tests.live import LiveServer, live_database_url
from tests.mcp_app import ensure_scopes, remove_scopes

MODERN = "2026-07-28"
HANDSHAKE = "2025-11-25"
ERAS = {"modern": "auto", "handshake": "legacy"}
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}

_WSGI, _ASGI = "tests.mcp_wsgi:application", "tests.mcp_asgi:application"
# name -> how tests.live.LiveServer runs it: every variant the endpoint promises to work under.
SERVERS: dict[str, dict[str, Any]] = {
    "gunicorn-gthread": {"server": "gunicorn", "app": _WSGI, "worker_class": "gthread", "threads": 4},
    "gunicorn-sync-preload": {"server": "gunicorn", "app": _WSGI, "workers": 2, "preload": True},
    "gunicorn-gthread-preload": {
        "server": "gunicorn", "app": _WSGI, "worker_class": "gthread", "threads": 2, "workers": 2, "preload": True,
    },
    "uvicorn": {"server": "uvicorn", "app": _ASGI},
    "uvicorn-lifespan-workers": {"server": "uvicorn", "app": _ASGI, "lifespan": "auto", "workers": 2},
    "runserver": {"server": "runserver"},
}  # fmt: skip


def start_server(name: str, database_url: str, extra_env: dict[str, str] | None = None) -> LiveServer:
    """Start the named server variant with ``tests.settings_mcp`` and wait until /mcp answers."""
    env = {"DATABASE_URL": database_url, **(extra_env or {})}
    return LiveServer("tests.settings_mcp", env=env, ready_path="/mcp", **SERVERS[name]).start()


@pytest.fixture(scope="module")
def live_db(django_db_setup, django_db_blocker):
    """The test database's URL, with the scopes of ``tests.mcp_app`` committed for the server processes."""
    with django_db_blocker.unblock():
        ensure_scopes()
        url = live_database_url()
    yield url
    with django_db_blocker.unblock():
        # Committed outside any test transaction: leave the database as other tests expect it.
        remove_scopes()


@asynccontextmanager
async def mcp_client(url: str, token: str, era: str) -> AsyncIterator[tuple[Client, list[httpx2.Response]]]:
    """The official client over Streamable HTTP, with every HTTP response it received."""
    responses: list[httpx2.Response] = []

    async def keep(response: httpx2.Response) -> None:
        responses.append(response)

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, event_hooks={"response": [keep]}, timeout=30) as http:
        transport = streamable_http_client(url + "/mcp", http_client=http)
        async with Client(transport, mode=ERAS[era], cache=None) as client:
            yield client, responses


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def scope_count(django_db_blocker, prefix: str = "entries") -> int:
    with django_db_blocker.unblock():
        return Scope.objects.filter(name__startswith=prefix).count()


def post(server, body: Any, *, token: str | None = "t-read", era: str = "modern", **headers: str) -> httpx.Response:
    sent = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if era == "modern":
        sent["MCP-Protocol-Version"] = MODERN
        if isinstance(body, dict) and isinstance(body.get("method"), str):
            sent["Mcp-Method"] = body["method"]
            params = body.get("params") or {}
            name = params.get("name", params.get("uri")) if isinstance(params, dict) else None
            if isinstance(name, str):
                sent["Mcp-Name"] = name
    elif era == "handshake":
        sent["MCP-Protocol-Version"] = HANDSHAKE
    if token:
        sent["Authorization"] = f"Bearer {token}"
    sent.update({key.replace("_", "-"): value for key, value in headers.items()})
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(server.url + "/mcp", content=content, headers=sent, timeout=10)


def call(name: str, arguments: dict[str, Any], era: str = "modern", request_id: int = 1) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if era == "modern":
        params["_meta"] = META
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
