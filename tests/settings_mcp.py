"""Settings of the live MCP test servers: the test settings, the MCP test URLs, and the test
database the pytest run created (its name comes in MCP_LIVE_DB_NAME)."""

import os

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.mcp_urls"
if os.environ.get("MCP_LIVE_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["MCP_LIVE_DB_NAME"]  # noqa: F405
MCP_SCOPES = {
    "ALLOWED_ORIGINS": ["https://allowed.example"],
    "MAX_BODY_BYTES": 64 * 1024,
    "AUTHORIZATION_SERVERS": ["https://auth.example"],
}
