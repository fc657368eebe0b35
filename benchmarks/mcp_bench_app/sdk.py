"""The same server on the SDK's own Starlette app (stateless, JSON responses, no auth)."""

from mcp.server.transport_security import TransportSecuritySettings

from benchmarks.mcp_bench_app.server import server

app = server.streamable_http_app(
    streamable_http_path="/mcp",
    stateless_http=True,
    json_response=True,
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
)
