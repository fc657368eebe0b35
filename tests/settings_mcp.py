"""Settings of the live MCP test servers: the test settings and the MCP test URLs (the test
database of the pytest run comes in DATABASE_URL, see tests.live.live_database_url)."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.mcp_urls"
MCP_SCOPES = {
    "ALLOWED_ORIGINS": ["https://allowed.example"],
    "MAX_BODY_BYTES": 64 * 1024,
    "AUTHORIZATION_SERVERS": ["https://auth.example"],
}
