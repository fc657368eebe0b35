"""The SDK's own server for the comparison: ``streamable_http_app(stateless_http=True, json_response=True)``
with the SDK's own bearer authentication (a ``TokenVerifier``), served by uvicorn.

It serves the tools the Django side serves: ``add`` (as ``benchmarks/mcp_bench_app``) and ``whoami``
(the same answer shape as the example's, built from the verified token). The verifier looks the
token up in a dict, the least an SDK user writes; the SDK's middleware still parses the header,
checks the scopes and the expiry, and puts the token in its context. ``SDK_BENCH_RESOURCE`` (the
server's /mcp URL) is its RFC 9728 resource; ``bench`` is the one valid token.
"""

from __future__ import annotations

import os
import time

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel

RESOURCE = os.environ.get("SDK_BENCH_RESOURCE", "http://127.0.0.1:8000/mcp")
SCOPES = ["user:read", "entries:read"]


class StaticTokenVerifier:
    """One valid token, as a dict lookup (the SDK's ``TokenVerifier`` protocol)."""

    def __init__(self) -> None:
        self._tokens = {
            "bench": AccessToken(
                token="bench",
                client_id="bench",
                scopes=SCOPES,
                expires_at=int(time.time()) + 86400,
                resource=RESOURCE,
                subject="1",
                claims={"username": "demo"},
            )
        }

    async def verify_token(self, token: str) -> AccessToken | None:
        return self._tokens.get(token)


server = MCPServer(
    "bench-sdk",
    subscriptions=False,
    log_level="WARNING",
    token_verifier=StaticTokenVerifier(),
    auth=AuthSettings(
        issuer_url="https://auth.example.com",  # type: ignore[arg-type]
        resource_server_url=RESOURCE,  # type: ignore[arg-type]
        required_scopes=["user:read"],
        validate_token_resource=True,
    ),
)


class Me(BaseModel):
    id: int
    username: str
    name: str
    scopes: list[str]


@server.tool()
def add(a: int, b: int) -> int:
    return a + b


@server.tool()
def whoami() -> Me:
    """The token's user and scopes (the example's ``whoami`` answer, without a database)."""
    token = get_access_token()
    assert token is not None and token.claims is not None
    username = str(token.claims["username"])
    return Me(id=int(token.subject or 0), username=username, name=username, scopes=sorted(token.scopes))


app = server.streamable_http_app(
    streamable_http_path="/mcp",
    stateless_http=True,
    json_response=True,
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
)
