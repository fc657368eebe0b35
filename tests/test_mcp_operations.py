"""Declaring per-operation scopes, what an endpoint needs, and the SDK-side backstop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from mcp.client.client import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from django_mcp_scopes import declarations
from django_mcp_scopes.declarations import declared_scopes
from django_mcp_scopes.mcp import MCPView, endpoint_scopes, mcp_path, requires_scopes
from django_mcp_scopes.mcp.endpoint import INSUFFICIENT_SCOPE, MCPEndpoint
from django_mcp_scopes.mcp.operations import declared_operations, needed_scopes, scopes_of
from django_mcp_scopes.principal import Principal
from django_mcp_scopes.requirements import ScopeRequirement
from tests.live import ROOT
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, ensure_scopes, server


@pytest.fixture(autouse=True)
def _forget_declarations():
    """The declaration registry is global: forget what each test declares."""
    before = set(declared_scopes())
    yield
    for name in set(declared_scopes()) - before:
        declarations._forget(name)


@pytest.mark.parametrize(
    "declaration",
    [
        lambda: requires_scopes(any_of=[[]]),
        lambda: requires_scopes(any_of=[["admin"], []]),
        lambda: requires_scopes(ScopeRequirement((frozenset(),))),
        lambda: requires_scopes(ScopeRequirement.any_of(["admin"]) | ScopeRequirement((frozenset(),))),
    ],
)
def test_a_declared_requirement_that_any_token_meets_is_refused(declaration):
    # "leave the decorator off for an operation any valid token may use": a decorator whose
    # requirement is met by every token is a mistake, not an open door.
    with pytest.raises(ImproperlyConfigured):
        declaration()


def test_package_imports_without_django_settings():
    result = subprocess.run(
        [sys.executable, "-c", "import django_mcp_scopes.mcp as m; print(m.__all__[0])"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_all_of_and_declaration():
    @requires_scopes("journal:read", "journal:list")
    def tool() -> None: ...

    declared = scopes_of(tool)
    assert declared is not None
    assert declared.static == ScopeRequirement.all_of("journal:read", "journal:list")
    assert {"journal:read", "journal:list"} <= set(declared_scopes())


def test_space_separated_string_and_requirement_object():
    @requires_scopes("a:1 a:2", ScopeRequirement.any_of(["b"], ["c"]))
    def tool() -> None: ...

    declared = scopes_of(tool)
    assert declared is not None
    assert declared.static is not None
    assert declared.static.describe() == [["a:1", "a:2", "b"], ["a:1", "a:2", "c"]]


def test_alternatives():
    @requires_scopes(any_of=[["admin"], ["entries:write", "entries:publish"]])
    def tool() -> None: ...

    declared = scopes_of(tool)
    assert declared is not None
    assert declared.static is not None
    assert declared.static.is_satisfied_by({"admin"})
    assert declared.static.is_satisfied_by({"entries:write", "entries:publish"})
    assert not declared.static.is_satisfied_by({"entries:write"})


def test_dynamic_requirement_combines_with_static():
    @requires_scopes("w", when=lambda arguments, principal: "p" if arguments.get("public") else None, declares=["p"])
    def tool() -> None: ...

    declared = scopes_of(tool)
    assert declared is not None
    principal = Principal(user=None, granted_scopes=frozenset())
    assert declared.resolve({}, principal) == ScopeRequirement.all_of("w")
    assert declared.resolve({"public": True}, principal) == ScopeRequirement.all_of("w", "p")
    assert declared.names == {"w", "p"}
    assert "p" in declared_scopes()


def test_dynamic_only_positional():
    @requires_scopes(lambda arguments, principal: [["x"], ["y"]])
    def tool() -> None: ...

    declared = scopes_of(tool)
    assert declared is not None
    assert declared.static is None
    assert declared.resolve({}, Principal(user=None, granted_scopes=frozenset())) == ScopeRequirement.any_of(
        ["x"], ["y"]
    )


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        (("has space\\",), {}),
        (('quote"',), {}),
        ((lambda a, p: None, lambda a, p: None), {}),
        ((42,), {}),
    ],
)
def test_bad_declarations(args, kwargs):
    with pytest.raises(ImproperlyConfigured):
        requires_scopes(*args, **kwargs)


def test_declared_operations_of_the_test_server():
    operations = {(operation.kind, operation.name): operation for operation in declared_operations(server)}
    assert operations[("tool", "echo")].scopes.any_token
    assert operations[("tool", "count_scopes")].scopes.static == ScopeRequirement.all_of("entries:read")
    assert operations[("resource_template", "notes://private/{note_id}")].scopes is not None
    assert operations[("resource", "notes://public")].scopes.any_token
    assert not operations[("prompt", "summarize")].scopes.any_token
    assert operations[("prompt", "summarize")].scopes is not None


def test_needed_scopes_include_dynamic_declarations():
    assert needed_scopes(server) == {"entries:read", "entries:write", "entries:publish", "admin"}


@pytest.mark.django_db
def test_endpoint_scopes_are_the_advertised_ones_the_endpoint_needs():
    ensure_scopes()
    # entries:publish is needed (declared by a dynamic requirement) but not advertised.
    assert endpoint_scopes(server) == {"entries:read", "entries:write", "admin"}
    (pattern,) = mcp_path("x", server, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication])
    assert endpoint_scopes(pattern) == {"entries:read", "entries:write", "admin"}
    view = MCPView.as_view(
        server=server,
        authentication_classes=[StaticTokenAuthentication],
        method_scopes={**LISTINGS_OPEN, "tools/list": "other:scope"},
    )
    assert "other:scope" in needed_scopes(view)
    with pytest.raises(TypeError):
        endpoint_scopes(object())


def test_endpoint_refuses_subscriptions_and_missing_authentication():
    with pytest.raises(ImproperlyConfigured, match="subscriptions=False"):
        MCPEndpoint(MCPServer("with-subscriptions"))
    with pytest.raises(ImproperlyConfigured, match="authentication_classes"):
        MCPView.as_view(server=server, authentication_classes=[])
    with pytest.raises(ImproperlyConfigured, match="MCPServer"):
        MCPEndpoint(object())  # type: ignore[arg-type]


def test_method_scopes_are_validated():
    with pytest.raises(ImproperlyConfigured):
        MCPEndpoint(server, {"tools/list": 'bad"scope'})
    with pytest.raises(ImproperlyConfigured):
        MCPEndpoint(server, ["tools/list"])  # type: ignore[arg-type]


def test_backstop_keeps_scoped_operations_closed_outside_the_endpoint():
    """Served any other way (here: the SDK's in-process client), no principal means no scoped operation."""

    async def scenario():
        async with Client(server, mode="legacy") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            echoed = await client.call_tool("echo", {"text": "x"})
            with pytest.raises(MCPError) as raised:
                await client.call_tool("count_scopes", {})
            return names, echoed, raised.value

    names, echoed, error = asyncio.run(scenario())
    assert names == {"echo", "whoami"}
    assert echoed.content[0].text == "x"
    assert error.error.code == INSUFFICIENT_SCOPE


def test_sync_functions_close_stale_connections_around_each_call():
    from django_mcp_scopes.mcp.database import _MARK, handle_connections

    def sync_tool() -> int:
        return 1

    async def async_tool() -> int:
        return 1

    wrapped = handle_connections(sync_tool)
    assert getattr(wrapped, _MARK)
    assert asyncio.iscoroutinefunction(wrapped)  # the SDK awaits it instead of hopping to a thread
    assert asyncio.run(wrapped()) == 1
    assert handle_connections(wrapped) is wrapped
    assert handle_connections(async_tool) is async_tool
    # An endpoint wraps its server's sync functions, and keeps their scope declarations.
    MCPEndpoint(server, LISTINGS_OPEN)
    count_scopes = server._tool_manager.get_tool("count_scopes")
    assert getattr(count_scopes.fn, _MARK)
    assert count_scopes.is_async  # the Tool calls the wrapper as the coroutine function it is
    assert scopes_of(count_scopes.fn) is not None
    assert not getattr(server._tool_manager.get_tool("count_scopes_async").fn, _MARK, False)


def _where_it_ran() -> tuple[int, bool, object, bool]:
    """The thread, whether a loop was marked running there, the connection used, and whether the ORM ran."""
    from django.db import connections

    from django_mcp_scopes.models import Scope

    Scope.objects.count()  # raises SynchronousOnlyOperation where Django sees an event loop
    return threading.get_ident(), asyncio.events._get_running_loop() is not None, connections["default"], True


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("inline", [True, False])
def test_sync_calls_run_in_the_wsgi_request_thread(settings, inline):
    """Under WSGI the pooled loop serves one request in its own thread: a sync call runs right
    there (no thread hop), with the ORM usable; with the setting off, in a worker thread that
    closes its connection after the call. On any other loop (ASGI), always in a worker thread."""
    from django_mcp_scopes.mcp.bridge import run_in_request_thread
    from django_mcp_scopes.mcp.database import handle_connections

    settings.MCP_SCOPES = {**settings.MCP_SCOPES, "SYNC_CALLS_IN_REQUEST_THREAD": inline}
    wrapped = handle_connections(_where_it_ran)
    thread, loop_marked, used, orm_ran = run_in_request_thread(wrapped())
    assert orm_ran and not loop_marked
    assert (thread == threading.get_ident()) is inline
    if not inline:
        assert used.connection is None  # closed by close_old_connections() in the worker thread

    async def on_another_loop():
        return await wrapped()

    thread, loop_marked, used, orm_ran = asyncio.run(on_another_loop())  # an ASGI server's loop
    assert orm_ran and not loop_marked
    assert thread != threading.get_ident()
    assert used.connection is None


def test_a_failing_sync_call_leaves_the_request_loop_running():
    """The loop is marked running again after the call, whatever the call raised."""
    from django_mcp_scopes.mcp.bridge import run_in_request_thread
    from django_mcp_scopes.mcp.database import handle_connections

    def fails() -> None:
        raise ValueError("tool failed")

    async def call_then_check() -> bool:
        with pytest.raises(ValueError, match="tool failed"):
            await handle_connections(fails)()
        await asyncio.sleep(0)  # the loop still works
        return asyncio.get_running_loop() is not None

    assert run_in_request_thread(call_then_check())


def test_operations_requiring_a_scope():
    from django_mcp_scopes.mcp.endpoint import operations_requiring, registered_endpoints

    endpoint = MCPEndpoint(server, {**LISTINGS_OPEN, "prompts/list": "entries:read"})
    assert endpoint in registered_endpoints()
    found = {(kind, name) for owner, kind, name in operations_requiring("entries:read") if owner is endpoint}
    assert found == {
        ("tool", "count_scopes"),
        ("tool", "count_scopes_async"),
        ("resource_template", "notes://private/{note_id}"),
        ("prompt", "summarize"),
        ("method", "prompts/list"),
    }
    publish = {(kind, name) for owner, kind, name in operations_requiring("entries:publish") if owner is endpoint}
    assert publish == {("tool", "create_entry"), ("tool", "moderate")}


def test_sdk_body_limit_follows_the_setting(settings):
    from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

    from django_mcp_scopes.mcp.bridge import SDKBridge

    settings.MCP_SCOPES = {"MAX_BODY_BYTES": 3 * DEFAULT_MAX_REQUEST_BODY_SIZE}
    assert SDKBridge(server)._new_manager().max_request_body_size == 3 * DEFAULT_MAX_REQUEST_BODY_SIZE
    settings.MCP_SCOPES = {"MAX_BODY_BYTES": 1024}
    assert SDKBridge(server)._new_manager().max_request_body_size == DEFAULT_MAX_REQUEST_BODY_SIZE


def test_a_tools_module_may_be_imported_before_django_is_set_up():
    code = (
        "from django_mcp_scopes.mcp import requires_scopes\n"
        "@requires_scopes('early:scope')\n"
        "def tool(): pass\n"
        "import django, os\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'\n"
        "django.setup()\n"
        "from mcp.server.mcpserver import MCPServer\n"
        "from django_mcp_scopes.declarations import declared_scopes\n"
        "from django_mcp_scopes.mcp.endpoint import MCPEndpoint\n"
        "from django_mcp_scopes.mcp.operations import LISTING_METHODS\n"
        "from django_mcp_scopes.mcp import ANY_VALID_TOKEN\n"
        "MCPEndpoint(MCPServer('early', subscriptions=False), dict.fromkeys(LISTING_METHODS, ANY_VALID_TOKEN))\n"
        "print('early:scope' in declared_scopes())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_completion_for_a_resource_template_reference_follows_the_template():
    # completion/complete names a template by its uri_template; a template with a query
    # expression does not match its own text, and must not read as "no operation, no scope".
    from django_mcp_scopes.mcp.context import RequestPrincipal

    local = MCPServer("completion-refs", subscriptions=False)

    @local.resource("search://entries{?term}")
    @requires_scopes("entries:read")
    def search(term: str = "") -> str:
        return term

    @local.resource("entries://{entry_id}")
    @requires_scopes("entries:read")
    def entry(entry_id: str) -> str:
        return entry_id

    endpoint = MCPEndpoint(local, LISTINGS_OPEN)
    nobody = RequestPrincipal(user=None, granted_scopes=frozenset(), pinned_effective_scopes=frozenset())
    reader = RequestPrincipal(
        user=None, granted_scopes=frozenset({"entries:read"}), pinned_effective_scopes=frozenset({"entries:read"})
    )
    for uri in ("search://entries{?term}", "entries://{entry_id}"):
        params = {"ref": {"type": "ref/resource", "uri": uri}, "argument": {"name": "term", "value": "a"}}
        decision = endpoint.decide("completion/complete", params, nobody)
        assert decision.operation is not None, uri
        assert not decision.allows(nobody)
        assert endpoint.decide("completion/complete", params, reader).allows(reader)


def test_listing_everything_is_still_private_when_meta_depends_on_the_token(settings):
    # LISTING_POLICY "all" lists every tool, but the requiredScopes _meta names the alternative
    # closest to each caller's scopes: a server-wide "public" cache hint must not share it.
    from django_mcp_scopes.mcp.context import RequestPrincipal

    settings.MCP_SCOPES = {"LISTING_POLICY": "all"}
    local = MCPServer("listing-cache", subscriptions=False)

    @local.tool()
    @requires_scopes(any_of=[["admin"], ["entries:write", "entries:publish"]])
    def moderate(entry: int) -> str:
        return str(entry)

    endpoint = MCPEndpoint(local, LISTINGS_OPEN)
    writer = RequestPrincipal(
        user=None,
        granted_scopes=frozenset({"entries:write", "entries:publish"}),
        pinned_effective_scopes=frozenset({"entries:write", "entries:publish"}),
    )
    result = {"tools": [{"name": "moderate", "inputSchema": {}}], "cacheScope": "public"}
    endpoint.filter_listing("tools/list", result, writer, "2026-07-28")
    assert result["tools"][0]["_meta"]["io.github.django-mcp-scopes/requiredScopes"] == [
        "entries:publish",
        "entries:write",
    ]
    assert result["cacheScope"] == "private"
