"""Hostile and malformed input to the example's endpoints: each answer is one a client can act on
(issue 11), never a 500, a hang or another entry's data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command
from mcp.shared.inbound import encode_header_value
from mcp_types import INVALID_PARAMS

from example_project.journal.models import Entry
from tests.enforcement_support import make_token

MCP = "/mcp"
API = "/api/entries"
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
LEGACY_RESOURCE_NOT_FOUND = -32002

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("example_project.urls")]


@pytest.fixture(autouse=True)
def demo_scopes():
    call_command("setup_demo", "--no-admin", verbosity=0, stdout=None)


def _mcp(client, token: str, method: str, params: dict[str, Any], *, version: str = MODERN, request_id: Any = 1):
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": dict(params)}
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_ACCEPT": "application/json, text/event-stream"}
    if version == MODERN:
        body["params"]["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers["HTTP_MCP_PROTOCOL_VERSION"] = MODERN
        headers["HTTP_MCP_METHOD"] = method
        name = params.get("name", params.get("uri"))
        if name is not None:
            headers["HTTP_MCP_NAME"] = encode_header_value(name)
    else:
        headers["HTTP_MCP_PROTOCOL_VERSION"] = version
    return client.post(MCP, data=json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def reader():
    token, row = make_token("entries:read tags:read", ["http://testserver/mcp"])
    return token, row


def test_deeply_nested_json_to_the_rest_endpoint_is_a_400(client):
    token, row = make_token("entries:write", ["http://testserver/api/entries"])
    nested = "[" * 100_000 + "]" * 100_000
    response = client.post(API, data=nested, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400
    assert not Entry.objects.filter(owner=row.user).exists()


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_methods_the_rest_endpoint_does_not_serve_are_405_with_allow(client, method):
    token, _ = make_token("entries:write", ["http://testserver/api/entries"])
    response = client.generic(method, API, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST", "HEAD"}
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize("version", [MODERN, LEGACY])
def test_reading_a_missing_entry_says_the_resource_was_not_found(client, reader, version):
    token, _ = reader
    response = _mcp(client, token, "resources/read", {"uri": "journal://entries/999999"}, version=version)
    assert response.status_code == (400 if version == MODERN else 200)  # the SDK's status for -32602
    error = response.json()["error"]
    # SEP-2164 moved "resource not found" to -32602 in 2026-07-28; earlier revisions say -32002.
    assert error["code"] == (INVALID_PARAMS if version == MODERN else LEGACY_RESOURCE_NOT_FOUND)
    assert error["data"]["uri"] == "journal://entries/999999"


@pytest.mark.parametrize("version", [MODERN, LEGACY])
def test_an_entry_id_in_unicode_digits_reads_nothing(client, reader, version):
    token, row = reader
    entry = Entry.objects.create(owner=row.user, title="Mine", content="secret")
    arabic_indic = "".join(chr(0x0660 + int(digit)) for digit in str(entry.pk))
    response = _mcp(client, token, "resources/read", {"uri": f"journal://entries/{arabic_indic}"}, version=version)
    assert response.status_code == (400 if version == MODERN else 200)
    payload = response.json()
    assert "result" not in payload
    assert payload["error"]["code"] == (INVALID_PARAMS if version == MODERN else LEGACY_RESOURCE_NOT_FOUND)
    assert "secret" not in response.content.decode()


@pytest.mark.parametrize(
    "arguments",
    [None, {}, {"entry_id": "not a number"}, {"entry_id": "999999"}, {"entry_id": "\u0661"}, "1", ["1"]],
    ids=["no-arguments", "missing", "not-a-number", "no-such-entry", "unicode-digit", "a-string", "a-list"],
)
@pytest.mark.parametrize("version", [MODERN, LEGACY])
def test_prompt_with_missing_or_invalid_arguments_is_invalid_params(client, reader, arguments, version):
    token, _ = reader
    params: dict[str, Any] = {"name": "suggest_tags"}
    if arguments is not None:
        params["arguments"] = arguments
    response = _mcp(client, token, "prompts/get", params, version=version)
    assert response.status_code in (200, 400)  # the SDK's modern transport answers -32602 with a 400
    assert response.json()["error"]["code"] == INVALID_PARAMS


def test_an_unknown_prompt_is_invalid_params(client, reader):
    token, _ = reader
    response = _mcp(client, token, "prompts/get", {"name": "no_such_prompt", "arguments": {}})
    assert response.json()["error"]["code"] == INVALID_PARAMS


@pytest.mark.parametrize("request_id", [1.5, 1.0, True, False, {"a": 1}, [1], None], ids=repr)
@pytest.mark.parametrize("version", [MODERN, LEGACY])
def test_a_request_whose_id_is_not_a_string_or_integer_is_answered(client, reader, request_id, version):
    token, _ = reader
    response = _mcp(client, token, "tools/list", {}, request_id=request_id, version=version)
    assert response.status_code == 400
    payload = response.json()
    assert payload["id"] is None
    assert payload["error"]["code"] == -32600
