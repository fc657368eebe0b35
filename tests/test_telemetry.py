"""OpenTelemetry (MCP_SCOPES["OPENTELEMETRY"]): spans and refusal counters through the real SDK.

The SDK's global tracer and meter providers can be set once per process: the first test that needs
them installs an in-memory exporter and reader, and a processor that keeps spans only while a test
records (the mcp SDK's own spans go to the same global provider).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import AsyncClient, Client
from django.urls import path
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rest_framework.authentication import BaseAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from django_mcp_scopes import telemetry
from django_mcp_scopes.authentication import MCPTokenAuthentication
from django_mcp_scopes.checks import check_opentelemetry
from django_mcp_scopes.mcp import mcp_path
from django_mcp_scopes.permissions import HasScopes
from tests.enforcement_support import make_token
from tests.mcp_app import LISTINGS_OPEN, ensure_scopes, server

MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


class EntriesView(APIView):
    authentication_classes = [MCPTokenAuthentication]
    permission_classes = [HasScopes]
    required_scopes = ["entries:write"]
    mcp_resource_path = "/mcp"

    def get(self, request):
        return Response({"ok": True})


class Broken(BaseAuthentication):
    def authenticate(self, request):
        raise RuntimeError("a bug in a project's authentication class")


urlpatterns = [
    *mcp_path("mcp", server, method_scopes=LISTINGS_OPEN),
    *mcp_path("broken", server, method_scopes=LISTINGS_OPEN, authentication_classes=[Broken]),
    path("api/entries", EntriesView.as_view()),
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]


class _WhileRecording(SimpleSpanProcessor):
    recording = False

    def on_end(self, span):
        if self.recording:
            super().on_end(span)


class Recorder:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.processor = _WhileRecording(self.exporter)
        self.reader = InMemoryMetricReader()
        provider = TracerProvider()
        provider.add_span_processor(self.processor)
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))

    def spans(self, name_prefix: str = "mcp_scopes") -> list[Any]:
        return [span for span in self.exporter.get_finished_spans() if span.name.startswith(name_prefix)]

    def refusals(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == telemetry.REFUSALS_COUNTER:
                        for point in metric.data.data_points:
                            counts[point.attributes[telemetry.REASON]] = point.value
        return counts

    def metric_attribute_values(self) -> list[str]:
        values = []
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        values += [str(value) for value in point.attributes.values()]
        return values


_recorder: Recorder | None = None


@pytest.fixture
def otel(settings):
    global _recorder
    if _recorder is None:
        _recorder = Recorder()
    settings.MCP_SCOPES = {"OPENTELEMETRY": True}
    _recorder.exporter.clear()
    _recorder.processor.recording = True
    yield _recorder
    _recorder.processor.recording = False
    _recorder.exporter.clear()


@pytest.fixture(autouse=True)
def _scopes():
    ensure_scopes()


def rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**(params or {}), "_meta": META}}


def call(body: dict[str, Any], token: str | None, *, client: Client | None = None, url: str = "/mcp"):
    extra = {
        "HTTP_MCP_PROTOCOL_VERSION": MODERN,
        "HTTP_ACCEPT": "application/json, text/event-stream",
        "HTTP_MCP_METHOD": body["method"],
    }
    if "name" in body["params"]:
        extra["HTTP_MCP_NAME"] = body["params"]["name"]
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return (client or Client()).post(url, data=json.dumps(body), content_type="application/json", **extra)


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    return rpc("tools/call", {"name": name, "arguments": arguments})


def only(spans: list[Any], name: str) -> Any:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, [span.name for span in spans]
    return matching[0]


def test_an_allowed_tool_call_has_an_operation_span_with_the_authentication_inside(otel):
    token, row = make_token("entries:read")
    response = call(tool("count_scopes"), token)
    assert response.status_code == 200, response.content
    spans = otel.spans()
    operation = only(spans, "mcp_scopes.mcp tools/call count_scopes")
    authentication = only(spans, telemetry.AUTHENTICATE_SPAN)
    assert dict(operation.attributes) == {
        "mcp.method.name": "tools/call",
        "mcp_scopes.operation": "count_scopes",
        "mcp_scopes.client_id": row.application.client_id,
        "mcp_scopes.outcome": "allowed",
        "http.response.status_code": 200,
    }
    assert authentication.parent.span_id == operation.context.span_id
    assert authentication.attributes["mcp_scopes.outcome"] == "allowed"
    assert authentication.attributes["mcp_scopes.client_id"] == row.application.client_id
    assert authentication.attributes["mcp_scopes.token_source"] == "local"


def test_insufficient_scope_is_the_outcome_and_is_counted(otel):
    token, _ = make_token("entries:read")
    before = otel.refusals().get("insufficient_scope", 0)
    response = call(tool("create_entry", title="t"), token)
    assert response.status_code == 403
    operation = only(otel.spans(), "mcp_scopes.mcp tools/call create_entry")
    assert operation.attributes["mcp_scopes.outcome"] == "insufficient_scope"
    assert operation.attributes["http.response.status_code"] == 403
    assert otel.refusals()["insufficient_scope"] == before + 1


@pytest.mark.parametrize(
    ("header_token", "reason"),
    [("not-a-token-we-issued", "unknown_token"), ("two words", "malformed_token")],
)
def test_a_refused_token_names_its_reason_on_both_spans(otel, header_token, reason):
    before = otel.refusals().get(reason, 0)
    response = call(rpc("tools/list"), header_token)
    assert response.status_code == 401
    spans = otel.spans()
    assert only(spans, telemetry.AUTHENTICATE_SPAN).attributes["mcp_scopes.outcome"] == reason
    operation = only(spans, "mcp_scopes.mcp")  # refused before the body was read: no method
    assert operation.attributes["mcp_scopes.outcome"] == reason
    assert "mcp_scopes.client_id" not in operation.attributes
    assert otel.refusals()[reason] == before + 1


def test_no_credentials_is_an_outcome_but_not_a_refusal(otel):
    before = otel.refusals()
    assert call(rpc("tools/list"), None).status_code == 401
    spans = otel.spans()
    assert only(spans, telemetry.AUTHENTICATE_SPAN).attributes["mcp_scopes.outcome"] == "no_credentials"
    assert only(spans, "mcp_scopes.mcp").attributes["mcp_scopes.outcome"] == "no_credentials"
    assert otel.refusals() == before


def test_rate_limited(otel, settings):
    settings.MCP_SCOPES = {"OPENTELEMETRY": True, "RATE_LIMITS": [{"rate": "1/minute", "per": "token"}]}
    token, _ = make_token("entries:read")
    before = otel.refusals().get("rate_limited", 0)
    assert call(rpc("tools/list"), token).status_code == 200
    assert call(rpc("tools/list"), token).status_code == 429
    outcomes = [span.attributes["mcp_scopes.outcome"] for span in otel.spans("mcp_scopes.mcp")]
    assert outcomes == ["allowed", "rate_limited"]
    assert otel.refusals()["rate_limited"] == before + 1


def test_a_client_chosen_method_never_names_a_span(otel):
    token, _ = make_token("entries:read")
    response = call(rpc("x/" + "a" * 200), token)
    assert response.status_code in (200, 400, 404)
    operation = only(otel.spans(), "mcp_scopes.mcp other")
    assert operation.attributes["mcp.method.name"] == "other"


def test_an_unknown_tool_is_not_named(otel):
    token, _ = make_token("entries:read")
    call(tool("no_such_tool_" + "b" * 50), token)
    operation = only(otel.spans(), "mcp_scopes.mcp tools/call")
    assert "mcp_scopes.operation" not in operation.attributes


def test_drf_views_get_the_authentication_span_and_the_counter(otel):
    token, _ = make_token("entries:read")
    before = otel.refusals().get("insufficient_scope", 0)
    response = Client().get("/api/entries", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    authentication = only(otel.spans(), telemetry.AUTHENTICATE_SPAN)
    assert authentication.attributes["mcp_scopes.outcome"] == "allowed"
    assert otel.refusals()["insufficient_scope"] == before + 1


def test_the_asgi_endpoint_records_the_same_spans(otel):
    token, _ = make_token("entries:read")

    async def scenario():
        return await AsyncClient().post(
            "/mcp",
            data=json.dumps(tool("create_entry", title="t")),
            content_type="application/json",
            headers={
                "Authorization": f"Bearer {token}",
                "MCP-Protocol-Version": MODERN,
                "Mcp-Method": "tools/call",
                "Mcp-Name": "create_entry",
            },
        )

    response = asyncio.run(scenario())
    assert response.status_code == 403
    spans = otel.spans()
    operation = only(spans, "mcp_scopes.mcp tools/call create_entry")
    assert operation.attributes["mcp_scopes.outcome"] == "insufficient_scope"
    assert only(spans, telemetry.AUTHENTICATE_SPAN).parent.span_id == operation.context.span_id


def test_an_exception_out_of_the_view_is_an_error_outcome_and_propagates(otel):
    client = Client(raise_request_exception=False)
    response = call(rpc("tools/list"), "any", client=client, url="/broken")
    assert response.status_code == 500  # Django's answer: the exception went through the span
    operation = only(otel.spans(), "mcp_scopes.mcp")
    assert operation.attributes["mcp_scopes.outcome"] == "error"
    assert operation.status.status_code.name == "ERROR"


def test_under_asgi_the_sdk_spans_are_children_of_the_request_span(otel):
    token, _ = make_token("entries:read")

    async def scenario():
        return await AsyncClient().post(
            "/mcp",
            data=json.dumps(tool("count_scopes")),
            content_type="application/json",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": MODERN,
                "Mcp-Method": "tools/call",
                "Mcp-Name": "count_scopes",
            },
        )

    assert asyncio.run(scenario()).status_code == 200
    spans = otel.exporter.get_finished_spans()
    operation = only(otel.spans(), "mcp_scopes.mcp tools/call count_scopes")
    sdk = [span for span in spans if span.name == "tools/call count_scopes"]
    assert sdk, [span.name for span in spans]
    assert sdk[0].context.trace_id == operation.context.trace_id


def test_no_token_and_no_personal_data_in_any_span_or_metric(otel):
    token, row = make_token("entries:read")
    row.user.email = "alice@example.com"
    row.user.first_name = "Alice"
    row.user.save()
    forged = "forged-" + "z" * 40
    call(tool("count_scopes"), token)
    call(tool("create_entry", title="secret title"), token)
    call(tool("whoami"), token)
    call(rpc("tools/list"), forged)
    call(rpc("tools/list"), token + "x")
    Client().get("/api/entries", HTTP_AUTHORIZATION=f"Bearer {token}")
    spans = otel.exporter.get_finished_spans()  # the mcp SDK's spans too
    assert len(otel.spans()) >= 10
    recorded = [span.name for span in spans]
    for span in spans:
        recorded += [str(key) for key in span.attributes] + [str(value) for value in span.attributes.values()]
        recorded += [str(event.attributes) for event in span.events]
    recorded += otel.metric_attribute_values()
    text = "\n".join(recorded)
    for secret in (token, forged, token + "x", token[:12], row.token_checksum, row.user.username, "alice", "Alice"):
        if secret:
            assert secret not in text


def test_off_by_default_no_span_no_instrument_and_no_import_of_opentelemetry(monkeypatch):
    """With the setting off, no module of this package imports opentelemetry, even on requests."""
    telemetry.reset()
    importers = []
    real_import = builtins.__import__

    def watching_import(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__", "")
        if name.startswith("opentelemetry") and importer.startswith("django_mcp_scopes"):
            importers.append(importer)
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", watching_import)
    token, _ = make_token("entries:read")
    assert call(tool("count_scopes"), token).status_code == 200
    assert call(tool("create_entry", title="t"), token).status_code == 403
    assert call(rpc("tools/list"), "unknown").status_code == 401
    assert Client().get("/api/entries", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403
    assert importers == []
    assert telemetry._instruments is None
    assert telemetry.authentication_span() is telemetry.operation_span() is telemetry._OFF


def test_importing_the_package_does_not_import_opentelemetry():
    code = (
        "import sys\n"
        "import django_mcp_scopes, django_mcp_scopes.conf, django_mcp_scopes.signals, django_mcp_scopes.telemetry\n"
        "loaded = sorted(name for name in sys.modules if name.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_turned_on_without_the_api_requests_still_work_and_check_e401_says_why(monkeypatch, settings, caplog):
    settings.MCP_SCOPES = {"OPENTELEMETRY": True}
    real_import = builtins.__import__

    def no_opentelemetry(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__", "")
        if name.startswith("opentelemetry") and importer.startswith("django_mcp_scopes"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_opentelemetry)
    token, _ = make_token("entries:read")
    with caplog.at_level(logging.ERROR, logger="django_mcp_scopes.telemetry"):
        assert call(tool("count_scopes"), token).status_code == 200
        assert call(tool("create_entry", title="t"), token).status_code == 403
    assert [record.getMessage() for record in caplog.records if record.name == "django_mcp_scopes.telemetry"] == [
        'MCP_SCOPES["OPENTELEMETRY"] is True but opentelemetry-api is not installed.'
    ]
    assert [message.id for message in check_opentelemetry()] == ["django_mcp_scopes.E401"]
    with pytest.raises(SystemCheckError, match="E401"):
        call_command("check", "--tag", "mcp_scopes")


def test_check_e401_is_silent_when_the_api_is_there_or_the_setting_off(settings):
    settings.MCP_SCOPES = {"OPENTELEMETRY": True}
    assert check_opentelemetry() == []
    settings.MCP_SCOPES = {}
    assert check_opentelemetry() == []


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_malformed_setting_is_e001(settings, value):
    settings.MCP_SCOPES = {"OPENTELEMETRY": value}
    with pytest.raises(SystemCheckError, match=r"E001[\s\S]*OPENTELEMETRY"):
        call_command("check", "--tag", "mcp_scopes")
