"""Settings for benchmarks/auth_bench.py: SQLite file, LocMem cache, DEBUG off, no session/CSRF middleware."""

import json
import os

from benchmarks.base_settings import *  # noqa: F403

SECRET_KEY = "benchmark-only"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "benchmarks.auth_bench_urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("BENCH_DB", "bench.sqlite3")}}
MCP_SCOPES: dict = json.loads(os.environ.get("BENCH_MCP_SCOPES", "{}"))
REST_FRAMEWORK = {"DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"], "UNAUTHENTICATED_USER": None}
