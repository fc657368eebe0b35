"""Test settings plus the enforcement test URLs; live server processes started by the tests use it.

Environment (set by the tests for the processes they start):
- ``MCP_TEST_SCOPES``: JSON merged into ``MCP_SCOPES``;
- ``MCP_TEST_OAUTH2``: JSON merged into ``OAUTH2_PROVIDER``;
- ``MCP_TEST_CACHE_PREFIX``: Redis key prefix shared with the test process (with ``REDIS_URL``).
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import CACHES, MCP_SCOPES, OAUTH2_PROVIDER

ROOT_URLCONF = "tests.enforcement_views"

MCP_SCOPES = {**MCP_SCOPES, **json.loads(os.environ.get("MCP_TEST_SCOPES", "{}"))}
OAUTH2_PROVIDER = {**OAUTH2_PROVIDER, **json.loads(os.environ.get("MCP_TEST_OAUTH2", "{}"))}
if os.environ.get("MCP_TEST_CACHE_PREFIX") and "KEY_PREFIX" in CACHES["default"]:
    CACHES["default"]["KEY_PREFIX"] = os.environ["MCP_TEST_CACHE_PREFIX"]
