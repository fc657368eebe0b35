"""The MCP endpoint in real server processes, driven by the official ``mcp`` client and raw HTTP.

gunicorn (gthread, WSGI) and uvicorn (ASGI) serve ``tests.mcp_urls``; every client test runs over
the stateless 2026-07-28 protocol and over the 2025-11-25 handshake. Authentication is the static
test stand-in from ``tests.mcp_app`` (the real token validation is tested on its own).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.auth.utils import (
    extract_field_from_www_auth,
    extract_resource_metadata_from_www_auth,
    extract_scope_from_www_auth,
)
from mcp.shared.exceptions import MCPError

from django_mcp_scopes.mcp import REQUIRED_SCOPES_META_KEY
from django_mcp_scopes.mcp.endpoint import INSUFFICIENT_SCOPE
from tests._mcp_live import (  # noqa: F401 (live_db is a fixture)
    ERAS,
    HANDSHAKE,
    META,
    MODERN,
    call,
    live_db,
    mcp_client,
    post,
    run,
    scope_count,
    start_server,
)

pytestmark = [pytest.mark.live, pytest.mark.django_db]


@pytest.fixture(scope="module", params=["gunicorn-gthread", "uvicorn"])
def server(request, live_db):  # noqa: F811
    live = start_server(request.param, live_db)
    yield live
    live.stop()


@pytest.fixture(params=sorted(ERAS))
def era(request):
    return request.param


# the official client ---------------------------------------------------------------------------------
def test_list_and_call(server, era, django_db_blocker):
    async def scenario():
        async with mcp_client(server.url, "t-read", era) as (client, _):
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            echoed = await client.call_tool("echo", {"text": "hello"})
            counted = await client.call_tool("count_scopes", {})
            counted_async = await client.call_tool("count_scopes_async", {})
            who = await client.call_tool("whoami", {})
            return tools, echoed, counted, counted_async, who

    tools, echoed, counted, counted_async, who = run(scenario())
    assert {"echo", "count_scopes", "count_scopes_async", "whoami"} <= set(tools)
    assert tools["count_scopes"].meta[REQUIRED_SCOPES_META_KEY] == ["entries:read"]
    assert echoed.content[0].text == "hello"
    # The ORM works from a sync tool (worker thread) and an async tool, under WSGI and ASGI.
    expected = scope_count(django_db_blocker)
    assert expected >= 3
    assert counted.structured_content == {"result": expected}
    assert counted_async.structured_content == {"result": expected}
    who_data = json.loads(who.content[0].text)
    assert who_data == {
        "client_id": "test-client",
        "scopes": ["entries:read"],
        "sdk_client_id": "test-client",
        "sdk_scopes": ["entries:read"],
    }


def test_filtered_listings(server, era):
    async def scenario(token):
        async with mcp_client(server.url, token, era) as (client, _):
            return (
                {tool.name for tool in (await client.list_tools()).tools},
                {str(resource.uri) for resource in (await client.list_resources()).resources},
                {template.uri_template for template in (await client.list_resource_templates()).resource_templates},
                {prompt.name for prompt in (await client.list_prompts()).prompts},
            )

    tools, resources, templates, prompts = run(scenario("t-none"))
    assert tools == {"echo", "whoami"}
    assert resources == {"notes://public"}
    assert templates == set()
    assert prompts == {"greet"}

    tools, resources, templates, prompts = run(scenario("t-write"))  # entries:write implies entries:read
    assert tools == {"echo", "whoami", "count_scopes", "count_scopes_async", "create_entry"}
    assert templates == {"notes://private/{note_id}"}
    assert prompts == {"greet", "summarize"}

    tools, *_ = run(scenario("t-admin"))
    assert tools == {"echo", "whoami", "moderate"}


def _challenge(responses: list[httpx2.Response]) -> httpx2.Response:
    denied = [response for response in responses if response.status_code == 403]
    assert len(denied) == 1
    return denied[0]


@pytest.mark.parametrize(
    ("token", "tool", "arguments", "challenged"),
    [
        ("t-read", "create_entry", {"title": "x"}, "entries:write"),
        ("t-write", "create_entry", {"title": "x", "public": True}, "entries:publish entries:write"),
        ("t-read", "moderate", {"entry": 1}, "admin"),
        ("t-none", "count_scopes", {}, "entries:read"),
    ],
)
def test_denied_call_is_a_403_challenge(server, era, token, tool, arguments, challenged):
    async def scenario():
        async with mcp_client(server.url, token, era) as (client, responses):
            with pytest.raises(MCPError) as raised:
                await client.call_tool(tool, arguments)
            return raised.value, responses

    error, responses = run(scenario())
    assert error.error.code == INSUFFICIENT_SCOPE
    assert error.error.data["required_scopes"] == challenged.split()
    denied = _challenge(responses)
    assert extract_field_from_www_auth(denied, "error") == "insufficient_scope"
    assert extract_scope_from_www_auth(denied) == challenged
    assert extract_resource_metadata_from_www_auth(denied) == (server.url + "/.well-known/oauth-protected-resource/mcp")


@pytest.mark.parametrize(
    ("token", "tool", "arguments", "text"),
    [
        ("t-write", "create_entry", {"title": "x"}, "created x"),
        ("t-publish", "create_entry", {"title": "x", "public": True}, "created x (public)"),
        ("t-admin", "moderate", {"entry": 3}, "moderated 3"),
        ("t-publish", "moderate", {"entry": 4}, "moderated 4"),
    ],
)
def test_allowed_call(server, era, token, tool, arguments, text):
    async def scenario():
        async with mcp_client(server.url, token, era) as (client, _):
            return await client.call_tool(tool, arguments)

    assert run(scenario()).content[0].text == text


def test_resources_and_prompts(server, era):
    async def scenario(token):
        async with mcp_client(server.url, token, era) as (client, responses):
            public = await client.read_resource("notes://public")
            outcomes: dict[str, Any] = {"public": public.contents[0].text}
            for label, call in {
                "private": lambda: client.read_resource("notes://private/7"),
                "prompt": lambda: client.get_prompt("summarize", {"topic": "cats"}),
                "unknown_resource": lambda: client.read_resource("notes://nothing/here"),
                "unknown_prompt": lambda: client.get_prompt("nope", {}),
            }.items():
                try:
                    outcomes[label] = await call()
                except MCPError as exc:
                    outcomes[label] = exc.error
            return outcomes, [response.status_code for response in responses]

    outcomes, statuses = run(scenario("t-read"))
    assert outcomes["public"] == "public note"
    assert outcomes["private"].contents[0].text == "private note 7"
    assert "cats" in outcomes["prompt"].messages[0].content.text
    assert outcomes["unknown_resource"].code != INSUFFICIENT_SCOPE
    assert outcomes["unknown_prompt"].code != INSUFFICIENT_SCOPE
    assert 500 not in statuses

    outcomes, statuses = run(scenario("t-none"))
    assert outcomes["private"].code == INSUFFICIENT_SCOPE
    assert outcomes["prompt"].code == INSUFFICIENT_SCOPE
    assert statuses.count(403) == 2
    assert 500 not in statuses


def test_tool_arguments_failing_the_schema(server, era):
    async def scenario():
        async with mcp_client(server.url, "t-read", era) as (client, responses):
            try:
                result = await client.call_tool("count_scopes", {"prefix": ["not", "a", "string"]})
            except MCPError as exc:
                return exc.error, responses
            return result, responses

    outcome, responses = run(scenario())
    assert all(response.status_code < 500 for response in responses)
    assert getattr(outcome, "is_error", True)


# raw HTTP: what any client may send ----------------------------------------------------------------------
def rpc_error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


@pytest.mark.parametrize("era", ["modern", "handshake"])
def test_raw_call_and_listing_cache_scope(server, era):
    response = post(server, call("echo", {"text": "raw"}, era), era=era)
    assert response.status_code == 200
    assert response.json()["result"]["content"][0]["text"] == "raw"
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META} if era == "modern" else {}}
    result = post(server, listing, era=era).json()["result"]
    if era == "modern":
        assert result["cacheScope"] == "private"
    assert "create_entry" not in {tool["name"] for tool in result["tools"]}


def test_server_discover_and_initialize(server):
    discover = post(server, {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}})
    assert discover.status_code == 200
    assert MODERN in discover.json()["result"]["supportedVersions"]
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    answered = post(server, initialize, era="none")
    assert answered.status_code == 200
    assert answered.json()["result"]["protocolVersion"] == "2025-03-26"
    assert "mcp-session-id" not in answered.headers


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, -32700),
        (b"\xff\xfe", 400, -32700),
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], 400, -32600),
        ("[]", 400, -32600),
        ('"just a string"', 400, -32600),
        ({"jsonrpc": "2.0", "id": 1}, 400, -32600),
        ({"jsonrpc": "2.0", "id": 1, "method": 7}, 400, -32600),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ["x"]}, 400, -32602),
    ],
)
def test_malformed_bodies(server, body, status, code):
    response = post(server, body, era="handshake")
    assert response.status_code == status
    assert rpc_error(response)["code"] == code


@pytest.mark.parametrize("era", ["modern", "handshake"])
def test_mcp_name_disagreeing_with_the_body(server, era):
    response = post(server, call("count_scopes", {}, era), era=era, Mcp_Name="echo")
    assert response.status_code == 400
    assert rpc_error(response)["code"] == -32020
    response = post(server, call("echo", {"text": "x"}, era), era=era, Mcp_Method="tools/list")
    assert response.status_code == 400
    assert rpc_error(response)["code"] == -32020


def test_unknown_protocol_version(server):
    response = post(server, call("echo", {"text": "x"}, "none"), era="none", MCP_Protocol_Version="1999-01-01")
    assert response.status_code == 400
    assert rpc_error(response)["code"] == -32022
    body = call("echo", {"text": "x"}, "none")
    body["params"]["_meta"] = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    response = post(server, body, era="none", MCP_Protocol_Version="2099-01-01", Mcp_Method="tools/call")
    assert response.status_code == 400


@pytest.mark.parametrize("era", ["modern", "handshake"])
def test_unknown_tool_and_resource_are_not_forbidden(server, era):
    response = post(server, call("no_such_tool", {}, era), era=era, token="t-none")
    assert response.status_code in (200, 400, 404)
    payload = response.json()
    assert "error" in payload or payload["result"]["isError"] is True
    params: dict[str, Any] = {"uri": "notes://matches/nothing"}
    if era == "modern":
        params["_meta"] = META
    response = post(server, {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": params}, era=era)
    assert response.status_code in (200, 400, 404)
    # SEP-2164: -32602 from 2026-07-28; earlier revisions say -32002 (issue 11).
    assert rpc_error(response)["code"] == (-32602 if era == "modern" else -32002)


def test_body_too_large(server):
    padding = "x" * (64 * 1024)
    response = post(server, call("echo", {"text": padding}), era="modern")
    assert response.status_code == 413
    assert rpc_error(response)["code"] == -32600


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
def test_other_methods_are_405_at_once(server, method):
    response = httpx.request(
        method,
        server.url + "/mcp",
        headers={"Accept": "text/event-stream", "Authorization": "Bearer t-read"},
        timeout=5,
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"


def test_subscriptions_listen_answers_at_once(server):
    body = {"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {"_meta": META}}
    response = post(server, body, era="modern", Accept="application/json, text/event-stream")
    assert response.status_code == 404
    assert rpc_error(response)["code"] == -32601


def test_notification_is_accepted(server):
    response = post(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, era="handshake")
    assert response.status_code == 202


def test_wrong_content_type(server):
    response = post(server, call("echo", {"text": "x"}), Content_Type="text/plain")
    assert response.status_code == 415


def test_authentication_challenges(server):
    missing = post(server, call("echo", {"text": "x"}), token=None)
    assert missing.status_code == 401
    challenge = missing.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{server.url}/.well-known/oauth-protected-resource/mcp"' in challenge
    unknown = post(server, call("echo", {"text": "x"}), token="nope")
    assert unknown.status_code == 401
    assert 'error="invalid_token"' in unknown.headers["www-authenticate"]


def test_host_must_be_allowed(server):
    response = post(server, call("echo", {"text": "x"}), Host="evil.example")
    assert response.status_code == 400


def test_origin(server):
    denied = post(server, call("echo", {"text": "x"}), Origin="https://evil.example")
    assert denied.status_code == 403
    assert "access-control-allow-origin" not in denied.headers
    allowed = post(server, call("echo", {"text": "x"}), Origin="https://allowed.example")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://allowed.example"
    assert "WWW-Authenticate" in allowed.headers["access-control-expose-headers"]
    same = post(server, call("echo", {"text": "x"}), Origin=server.url)
    assert same.status_code == 200
    challenged = post(server, call("echo", {"text": "x"}), token=None, Origin="https://allowed.example")
    assert challenged.status_code == 401
    assert challenged.headers["access-control-allow-origin"] == "https://allowed.example"


def test_cors_preflight(server):
    response = httpx.options(
        server.url + "/mcp",
        headers={
            "Origin": "https://allowed.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version, mcp-param-region",
        },
        timeout=5,
    )
    assert response.status_code == 204
    allowed = {name.strip().lower() for name in response.headers["access-control-allow-headers"].split(",")}
    expected = {"authorization", "content-type", "mcp-method", "mcp-name", "mcp-protocol-version", "last-event-id"}
    assert expected <= allowed
    assert "mcp-param-region" in allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    exposed = response.headers["access-control-expose-headers"]
    for name in ("WWW-Authenticate", "Mcp-Session-Id", "MCP-Protocol-Version"):
        assert name in exposed
    refused = httpx.options(
        server.url + "/mcp",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=5,
    )
    assert refused.status_code == 403


def test_method_level_defaults(server):
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
    url = server.url + "/strict/mcp"
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/list",
    }
    denied = httpx.post(url, json=listing, headers={**headers, "Authorization": "Bearer t-none"}, timeout=10)
    assert denied.status_code == 403
    assert 'scope="entries:read"' in denied.headers["www-authenticate"]
    assert "oauth-protected-resource/strict/mcp" in denied.headers["www-authenticate"]
    allowed = httpx.post(url, json=listing, headers={**headers, "Authorization": "Bearer t-read"}, timeout=10)
    assert allowed.status_code == 200


# real tokens: the endpoint's default authentication (django-oauth-toolkit, audience-bound) --------------
@pytest.fixture(scope="module")
def dot_tokens(server, django_db_blocker):
    """Committed AccessToken rows for the /dot/mcp endpoint of ``server`` (and one for another resource)."""
    from tests.enforcement_support import make_token

    endpoint = server.url + "/dot"
    with django_db_blocker.unblock():
        tokens = {
            "read": make_token("entries:read", server=endpoint),
            "write": make_token("entries:write", server=endpoint),
            "elsewhere": make_token("entries:write", resource=[server.url + "/mcp"]),
        }
    yield {label: token for label, (token, _) in tokens.items()}
    with django_db_blocker.unblock():
        for _, row in tokens.values():
            application, user = row.application, row.user
            row.delete()
            application.user.delete()
            application.delete()
            user.delete()


def test_real_tokens_through_the_default_authentication(server, era, dot_tokens):
    async def scenario(token):
        async with mcp_client(server.url + "/dot", token, era) as (client, responses):
            names = {tool.name for tool in (await client.list_tools()).tools}
            who = json.loads((await client.call_tool("whoami", {})).content[0].text)
            try:
                await client.call_tool("create_entry", {"title": "x"})
                denied = None
            except MCPError as exc:
                denied = exc.error
            return names, who, denied, responses

    names, who, denied, responses = run(scenario(dot_tokens["read"]))
    assert "count_scopes" in names
    assert "create_entry" not in names
    assert who["scopes"] == who["sdk_scopes"] == ["entries:read"]
    assert who["client_id"]
    assert denied is not None and denied.code == INSUFFICIENT_SCOPE
    challenge = _challenge(responses)
    assert extract_scope_from_www_auth(challenge) == "entries:write"
    assert extract_resource_metadata_from_www_auth(challenge) == (
        server.url + "/.well-known/oauth-protected-resource/dot/mcp"
    )

    names, who, denied, _ = run(scenario(dot_tokens["write"]))
    assert "create_entry" in names
    assert who["scopes"] == ["entries:read", "entries:write"]
    assert denied is None


def test_real_token_challenges(server, dot_tokens):
    url = server.url + "/dot/mcp"
    body = call("echo", {"text": "x"})
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "echo",
    }
    missing = httpx.post(url, json=body, headers=headers, timeout=10)
    assert missing.status_code == 401
    assert (
        f'resource_metadata="{server.url}/.well-known/oauth-protected-resource/dot/mcp"'
        in (missing.headers["www-authenticate"])
    )
    elsewhere = httpx.post(
        url, json=body, headers={**headers, "Authorization": f"Bearer {dot_tokens['elsewhere']}"}, timeout=10
    )
    assert elsewhere.status_code == 401
    assert 'error="invalid_token"' in elsewhere.headers["www-authenticate"]
    assert elsewhere.json()["error"] == "invalid_token"
    answered = httpx.post(
        url, json=body, headers={**headers, "Authorization": f"Bearer {dot_tokens['read']}"}, timeout=10
    )
    assert answered.status_code == 200
    assert answered.json()["result"]["content"][0]["text"] == "x"
