"""``tests.settings_mcp`` with a middleware that stamps the responses it sees (tests/mcp_lane.py)."""

from tests.settings_mcp import *  # noqa: F403

MIDDLEWARE = [*MIDDLEWARE, "tests.mcp_lane.StampingMiddleware"]  # noqa: F405
