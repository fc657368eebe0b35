"""The official ``mcp`` client through the whole flow against a minimal project (tests/oauth_project)
that is its own authorization server with ``django_mcp_scopes.oauth`` only: one settings helper and
one URL include, no templates, login page or OAuth code of its own.

Under runserver, gunicorn (WSGI) and uvicorn (ASGI): the 401, discovery, registration, PKCE with
``resource``, the baseline token, the 403 and step-up, the refresh (and a replay of the rotated
refresh token), revocation; then PKCE without ``resource``, by hand.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.example.live import Browser
from tests.example.test_authorization_server import OAuthClient
from tests.example.test_end_to_end import Session, run, structured
from tests.oauth_support import MinimalServer

pytestmark = pytest.mark.live

BASELINE = "notes:read"


@pytest.fixture(scope="module", params=["runserver", "wsgi", "asgi"])
def server(request):
    with MinimalServer(request.param, DCR_PER_IP_PER_HOUR="1000") as running:
        yield running


def _mcp_status(server: MinimalServer, token: str) -> int:
    response = httpx.post(
        server.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}},
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25",
        },
    )
    return response.status_code


def test_the_whole_flow_with_the_official_client(server):
    session = Session(server, Browser("demo", "demo"))
    metadata = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server").json()

    async def flow() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with session.connect() as client:
            assert session.storage.tokens is not None
            seen["first_scope"] = session.storage.tokens.scope
            seen["me"] = structured(await client.call_tool("whoami", {}))
            seen["note"] = structured(await client.call_tool("write_note", {"text": "hello"}))
            seen["stepped_up_scope"] = session.storage.tokens.scope

            # Refresh: the client sees its access token as expired, and so does the server.
            seen["old_refresh"] = session.storage.tokens.refresh_token
            seen["old_access"] = session.storage.tokens.access_token
            session.provider.context.token_expiry_time = time.time() - 1
            server.manage(
                "shell",
                "-c",
                "from django.utils import timezone; from datetime import timedelta; "
                "from oauth2_provider.models import AccessToken; "
                "AccessToken.objects.exclude(scope='oauth2_provider:registration')"
                ".update(expires=timezone.now() - timedelta(seconds=1))",
            )
            seen["after_refresh"] = structured(await client.call_tool("whoami", {}))
            seen["new_access"] = session.storage.tokens.access_token
            seen["new_refresh"] = session.storage.tokens.refresh_token
        return seen

    seen = run(flow())
    session.browser.close()

    first = next(e for e in session.exchanges if e[1] == "/mcp")
    assert first[2] == 401 and f'scope="{BASELINE}"' in first[3]
    paths = [path for _m, path, _s, _c in session.exchanges]
    assert "/.well-known/oauth-protected-resource/mcp" in paths
    assert "/.well-known/oauth-authorization-server" in paths
    assert session.statuses("/o/register/") == [201]
    for url in session.authorization_urls:
        query = parse_qs(urlsplit(url).query)
        assert query["code_challenge_method"] == ["S256"]
        assert query["resource"] == [server.mcp_url]
    assert seen["first_scope"] == BASELINE
    assert seen["me"]["username"] == "demo"
    forbidden = [e for e in session.exchanges if e[1] == "/mcp" and e[2] == 403]
    assert len(forbidden) == 1 and 'scope="notes:write"' in forbidden[0][3]
    assert seen["note"] == {"saved": "hello"}
    assert "notes:write" in seen["stepped_up_scope"].split()
    assert seen["new_access"] != seen["old_access"] and seen["after_refresh"]["username"] == "demo"
    assert session.statuses("/o/token/") == [200, 200, 200]
    client_id = session.storage.client_info.client_id

    # The rotated refresh token replayed: refused, and the whole family is revoked.
    replay = httpx.post(
        metadata["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": seen["old_refresh"], "client_id": client_id},
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert _mcp_status(server, seen["new_access"]) == 401

    # Revocation (RFC 7009) with a fresh token from a new flow.
    oauth = OAuthClient(server, metadata)
    assert oauth.register().status_code == 201
    browser = Browser("demo", "demo")
    tokens = oauth.token(oauth.code_for(browser, scope=BASELINE)).json()
    browser.close()
    assert _mcp_status(server, tokens["access_token"]) == 200
    revoked = httpx.post(
        metadata["revocation_endpoint"], data={"token": tokens["access_token"], "client_id": oauth.client_id}
    )
    assert revoked.status_code == 200
    assert _mcp_status(server, tokens["access_token"]) == 401


def test_pkce_without_resource_binds_the_token_to_the_mcp_endpoint(server):
    metadata = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == server.base_url
    prm = httpx.get(f"{server.base_url}/.well-known/oauth-protected-resource/mcp").json()
    assert prm["authorization_servers"] == [metadata["issuer"]]
    oauth = OAuthClient(server, metadata)
    assert oauth.register().status_code == 201
    browser = Browser("demo", "demo")
    response = browser.authorize(oauth.authorization_url(BASELINE, resource=None))
    browser.close()
    assert response.status_code == 302
    params = {key: values[0] for key, values in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert params["iss"] == metadata["issuer"]
    token = oauth.token(params["code"], resource=None)
    assert token.status_code == 200, token.text
    assert _mcp_status(server, token.json()["access_token"]) == 200
    # The packaged login page was the one used (the project has none).
    assert any("/o/login/" in str(page.url) for page in browser.pages)
