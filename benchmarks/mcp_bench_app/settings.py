"""Minimal production-like settings for the Django side of the MCP benchmark."""

import os

from benchmarks.base_settings import *  # noqa: F403

SECRET_KEY = "bench-only-not-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.mcp_bench_app.urls"
_DB = os.environ.get("MCP_BENCH_DB", "/tmp/mcp-bench.sqlite3")
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _DB}}
# Static bench tokens stand in for an external authorization server (check E007).
MCP_SCOPES: dict = {"AUTHORIZATION_SERVERS": ["https://auth.example.com"]}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"handlers": [], "level": "ERROR"}}
