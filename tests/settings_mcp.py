"""Settings of the live MCP test servers: the live test settings and the MCP test URLs."""

from tests.live_settings import *  # noqa: F403

ROOT_URLCONF = "tests.mcp_urls"
MCP_SCOPES = {
    "ALLOWED_ORIGINS": ["https://allowed.example"],
    "MAX_BODY_BYTES": 64 * 1024,
    "AUTHORIZATION_SERVERS": ["https://auth.example"],
}
