"""Settings for server processes started by the tests (see tests/live.py).

They share the test process's database and cache: the test passes
LIVE_DATABASE_NAME (the test database: a SQLite file or a PostgreSQL database name),
LIVE_REDIS_URL and LIVE_CACHE_KEY_PREFIX (unique per test run, so parallel runs never collide).
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

if os.environ.get("LIVE_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["LIVE_DATABASE_NAME"]

if os.environ.get("LIVE_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["LIVE_REDIS_URL"],
            "KEY_PREFIX": os.environ.get("LIVE_CACHE_KEY_PREFIX", "live"),
        }
    }

DEBUG = False
