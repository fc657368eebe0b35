"""Settings for server processes started by the tests (see tests/live.py); the other live settings
modules build on these.

The database comes in DATABASE_URL (``tests.live.live_database_url()``: the test database of the
run). The cache is that of tests/settings.py, whose Redis key prefix the servers inherit from the
test run's environment; a test that shares a Redis cache of its own with its servers passes
LIVE_REDIS_URL and LIVE_CACHE_KEY_PREFIX (``tests.live.shared_redis_cache()``).
"""

import os

from tests.settings import *  # noqa: F403

if os.environ.get("LIVE_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["LIVE_REDIS_URL"],
            "KEY_PREFIX": os.environ.get("LIVE_CACHE_KEY_PREFIX", "live"),
        }
    }

DEBUG = False
