"""Least privilege by default (issue 11): an MCP operation or method default that declares nothing is
refused at start-up and by ``manage.py check``; ``@open_to_any_token`` / ``ANY_VALID_TOKEN`` open one
on purpose; ``ALLOW_UNDECLARED_OPERATIONS`` restores the old behaviour, and the deploy check warns."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings
from mcp.server.mcpserver import MCPServer

from django_mcp_scopes import declarations
from django_mcp_scopes.mcp import ANY_VALID_TOKEN, open_to_any_token, requires_scopes
from django_mcp_scopes.mcp.endpoint import MCPEndpoint, UndeclaredOperation
from django_mcp_scopes.mcp.operations import undeclared_operations
from django_mcp_scopes.principal import Principal
from tests.mcp_app import LISTINGS_OPEN, ensure_scopes

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


@pytest.fixture(autouse=True)
def _forget_declarations():
    """@requires_scopes declares its scopes globally; other tests expect the registry untouched."""
    before = set(declarations.declared_scopes())
    yield
    for name in set(declarations.declared_scopes()) - before:
        declarations._forget(name)


def _server_with_every_kind_undeclared() -> MCPServer:
    server = MCPServer("undeclared", subscriptions=False)

    @server.tool()
    def a_tool() -> str:
        return "x"

    @server.resource("notes://fixed")
    def a_resource() -> str:
        return "x"

    @server.resource("notes://items/{item}")
    def a_template(item: str) -> str:
        return item

    @server.prompt()
    def a_prompt(topic: str) -> str:
        return topic

    return server


def test_start_up_refuses_every_undeclared_operation_by_name():
    server = _server_with_every_kind_undeclared()
    with pytest.raises(UndeclaredOperation) as raised:
        MCPEndpoint(server)
    message = str(raised.value)
    for name in (
        "tool a_tool",
        "resource notes://fixed",
        "resource template notes://items/{item}",
        "prompt a_prompt",
        "method tools/list",
        "method prompts/list",
        "method resources/list",
        "method resources/templates/list",
    ):
        assert name in message
    assert "@open_to_any_token" in message


def test_the_start_up_error_lists_the_operations_and_every_way_out():
    """A person reads it: the operations as a list, then each way to declare them, then the setting."""
    with pytest.raises(UndeclaredOperation) as raised:
        MCPEndpoint(_server_with_every_kind_undeclared())
    message = str(raised.value)
    listed = message.split("declare no scope requirement: ", 1)[1].split(". ", 1)[0].split(", ")
    assert "tool a_tool" in listed and "prompt a_prompt" in listed and "method tools/list" in listed
    assert "Declare what each needs with @requires_scopes(...)" in message
    assert "method defaults in method_scopes (ANY_VALID_TOKEN" in message
    assert 'MCP_SCOPES["ALLOW_UNDECLARED_OPERATIONS"] = True restores' in message
    assert isinstance(raised.value, ImproperlyConfigured)


def test_explicit_declarations_satisfy_start_up():
    server = MCPServer("declared", subscriptions=False)

    @server.tool()
    @open_to_any_token
    def open_tool() -> str:
        return "x"

    @server.tool()
    @requires_scopes("entries:read")
    def scoped_tool() -> str:
        return "x"

    assert undeclared_operations(server) == [
        "method tools/list",
        "method prompts/list",
        "method resources/list",
        "method resources/templates/list",
    ]
    endpoint = MCPEndpoint(server, LISTINGS_OPEN)
    assert undeclared_operations(endpoint) == []


def test_completion_needs_a_declared_default_when_the_server_completes():
    server = MCPServer("completes", subscriptions=False)

    @server.completion()
    async def complete(ref, argument, context):
        return None

    with pytest.raises(UndeclaredOperation, match="method completion/complete"):
        MCPEndpoint(server, LISTINGS_OPEN)
    MCPEndpoint(server, {**LISTINGS_OPEN, "completion/complete": ANY_VALID_TOKEN})


def test_requires_scopes_with_nothing_points_at_open_to_any_token():
    with pytest.raises(ImproperlyConfigured, match="open_to_any_token"):
        requires_scopes()


def test_the_setting_restores_undeclared_means_any_valid_token():
    server = _server_with_every_kind_undeclared()
    with override_settings(MCP_SCOPES={"ALLOW_UNDECLARED_OPERATIONS": True}):
        endpoint = MCPEndpoint(server)
        nobody = Principal(user=None, granted_scopes=frozenset())
        assert endpoint.decide("tools/call", {"name": "a_tool"}, nobody).allows(nobody)


@pytest.mark.django_db(transaction=True)
def test_an_operation_registered_after_start_up_without_a_declaration_is_refused(settings):
    """Registered after the endpoint started (the start-up check could not see it): closed to all."""
    from django.urls import clear_url_caches

    settings.ROOT_URLCONF = "tests.check_urlconfs.late_undeclared"
    clear_url_caches()
    ensure_scopes()
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "added_later", "_meta": META}}
    response = Client().post(
        "/mcp",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer t-admin",
        HTTP_ACCEPT="application/json, text/event-stream",
        HTTP_MCP_PROTOCOL_VERSION=MODERN,
        HTTP_MCP_METHOD="tools/call",
        HTTP_MCP_NAME="added_later",
    )
    assert response.status_code == 500
    assert response.json()["id"] == 7
    assert "declares no scope requirement" in response.json()["error"]["message"]


def _check(deploy: bool = False) -> tuple[bool, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("check", deploy=deploy, tags=["mcp_scopes"], stdout=out, stderr=err, fail_level="WARNING")
    except SystemCheckError as exc:
        return True, str(exc)
    return False, out.getvalue() + err.getvalue()


def test_manage_py_check_names_the_undeclared_operation():
    with override_settings(ROOT_URLCONF="tests.check_urlconfs.late_undeclared"):
        failed, output = _check()
    assert failed
    assert "django_mcp_scopes.E201" in output
    assert "tool added_later" in output


def test_deploy_check_warns_when_undeclared_operations_are_allowed():
    with override_settings(MCP_SCOPES={"ALLOW_UNDECLARED_OPERATIONS": True}):
        _, output = _check(deploy=True)
    assert "django_mcp_scopes.W201" in output
    with override_settings(
        MCP_SCOPES={"ALLOW_UNDECLARED_OPERATIONS": True}, ROOT_URLCONF="tests.check_urlconfs.late_undeclared"
    ):
        _, output = _check()
    assert "django_mcp_scopes.E201" not in output


def test_example_declares_every_operation():
    from example_project.journal.mcp import server

    assert [name for name in undeclared_operations(server) if not name.startswith("method ")] == []
    from django.urls import get_resolver

    from django_mcp_scopes.mcp.endpoint import mounted_endpoints

    endpoints = mounted_endpoints("example_project.urls")
    assert endpoints and all(undeclared_operations(endpoint) == [] for _, endpoint in endpoints)
    assert get_resolver("example_project.urls")
