"""Settings of the example project: an MCP journaling server and its authorization server.

SQLite and an in-process cache by default, so `make run` needs nothing else. DATABASE_URL and
REDIS_URL switch to PostgreSQL and Redis (see the README's deployment section).
"""

import os
from pathlib import Path

import django

from django_mcp_scopes.oauth.provider import oauth2_provider_settings

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "django_mcp_scopes",
    "example_project.journal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Bounded waits: an unreachable database costs a request at most this long, then a 503.
        DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 2
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("EXAMPLE_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Several processes may share the file (a server, a second server, `manage.py shell`):
            # writers wait for each other instead of failing at once with "database is locked".
            "OPTIONS": {"timeout": 20},
        }
    }
    if django.VERSION >= (5, 1):
        # Readers never block the writer (WAL), and a write transaction takes its lock when it
        # begins, so it waits its turn (the timeout) instead of failing when it upgrades a read.
        DATABASES["default"]["OPTIONS"].update(
            transaction_mode="IMMEDIATE", init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        )

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "journal"),
            # Bounded waits: a stalled Redis costs a request at most this long, then the database
            # answers (check --deploy demands it: django_mcp_scopes.E005).
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file cache next to the SQLite file: every process using this database (the server, a second
    # server, `manage.py shell`) shares it, so a scope change reaches the running server within
    # REGISTRY_REFRESH_SECONDS. A per-process LocMem cache would never tell the server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATABASES["default"]["NAME"]) + "-cache",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

STATIC_URL = "/static/"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/admin/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Public origin of this server, e.g. "https://journal.example.com" (no trailing slash). Unset in
# development: the issuer and the resource URI are derived from each request, so both
# http://127.0.0.1:8000 and http://localhost:8000 work. Set it in production.
BASE_URL = os.environ.get("DJANGO_BASE_URL", "").rstrip("/") or None

# The authorization server: django-oauth-toolkit configured by django_mcp_scopes.oauth (PKCE S256
# only, refresh rotation, anonymous registration of public clients, Client ID Metadata Documents,
# tokens bound to this project's resources). Keys passed here override the helper's.
OAUTH2_PROVIDER = oauth2_provider_settings(
    issuer=BASE_URL,
    ACCESS_TOKEN_EXPIRE_SECONDS=int(os.environ.get("ACCESS_TOKEN_EXPIRE_SECONDS", "3600")),
)

MCP_SCOPES_OAUTH = {
    # The protected endpoints tokens are issued for. A request that names no resource is bound to
    # the MCP endpoint (the only one mounted with mcp_path()).
    "RESOURCE_PATHS": ["/mcp", "/api/entries"],
    "REGISTRATION_RATE_LIMIT": int(os.environ.get("DCR_PER_IP_PER_HOUR", "20")),
    "REGISTRATION_MAX_CLIENTS": int(os.environ.get("DCR_MAX_CLIENTS", "10000")),
}

# The registration policy allows plain http redirect URIs on loopback hosts only (RFC 8252: the
# MCP Inspector, Claude Code and the Python SDK receive the code on 127.0.0.1/localhost). DOT's
# W008 flags "http" in ALLOWED_REDIRECT_URI_SCHEMES whatever the host, so it is silenced here.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]

MCP_SCOPES = {
    "BASE_URL": BASE_URL,
    # Also publish the MCP endpoint's metadata at the root /.well-known/oauth-protected-resource.
    "ROOT_RESOURCE_PATH": "mcp",
    # Browser-based clients allowed to call /mcp (the MCP Inspector's page by default).
    "ALLOWED_ORIGINS": os.environ.get("MCP_ALLOWED_ORIGINS", "http://localhost:6274,http://127.0.0.1:6274").split(","),
    "RESOURCE_NAME": "EpicMe journal (Django example)",
}
