"""The live test settings plus the enforcement test URLs; live server processes started by the tests use it.

Environment (set by the tests for the processes they start), besides that of tests/live_settings.py:
- ``MCP_TEST_SCOPES``: JSON merged into ``MCP_SCOPES``;
- ``MCP_TEST_OAUTH2``: JSON merged into ``OAUTH2_PROVIDER``.
"""

import json
import os

from tests.live_settings import *  # noqa: F403
from tests.live_settings import MCP_SCOPES, OAUTH2_PROVIDER

ROOT_URLCONF = "tests.enforcement_views"

MCP_SCOPES = {**MCP_SCOPES, **json.loads(os.environ.get("MCP_TEST_SCOPES", "{}"))}
OAUTH2_PROVIDER = {**OAUTH2_PROVIDER, **json.loads(os.environ.get("MCP_TEST_OAUTH2", "{}"))}
