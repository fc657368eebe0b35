"""Settings of the live MCP test servers: the live test settings and the MCP test URLs."""

from tests.live_settings import *  # noqa: F403

ROOT_URLCONF = "tests.mcp_urls"
MCP_SCOPES = {
    "ALLOWED_ORIGINS": ["https://allowed.example"],
    "MAX_BODY_BYTES": 64 * 1024,
    "AUTHORIZATION_SERVERS": ["https://auth.example"],
    # These servers check filtering by what a token holds; the default "obtainable" policy is
    # tested in process (tests/test_mcp_listing.py) and against the example (tests/example/).
    "LISTING_POLICY": "strict",
}
