"""Settings of the MCP test server whose tokens come from a real OpenID provider (tests/test_jwt_live.py).

The provider's issuer comes in JWT_TEST_ISSUER. Keys are refreshed every two seconds and kept for
three more while the provider is down, so rotation and outages can be watched within a test.
"""

import os

from tests.live_settings import *  # noqa: F403

ROOT_URLCONF = "tests.jwt_urls"
_ISSUER = os.environ.get("JWT_TEST_ISSUER", "http://127.0.0.1:9")
MCP_SCOPES = {
    "JWT_ISSUERS": [
        {
            "ISSUER": _ISSUER,
            "DISCOVERY_URL": _ISSUER + "/.well-known/openid-configuration",
            "CREATE_USERS": True,
        }
    ],
    "JWT_LEEWAY_SECONDS": 0,
    "JWT_MAX_TOKEN_BYTES": 4096,
    "JWKS_TIMEOUT_SECONDS": 2.0,
    "JWKS_REFRESH_SECONDS": 2,
    "JWKS_MAX_STALE_SECONDS": 3,
    "JWKS_MIN_REFRESH_SECONDS": 0,
    "SERVICE_UNAVAILABLE_RETRY_AFTER": 2,
}
