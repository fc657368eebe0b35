"""A minimal project that is its own MCP authorization server with the package's parts only.

What a project adds to a fresh ``startproject`` (see docs/oauth.md): ``oauth2_provider`` and
``django_mcp_scopes`` in INSTALLED_APPS, ``OAUTH2_PROVIDER = oauth2_provider_settings(...)``, and
three URL lines (tests/oauth_project/urls.py). No admin, no DRF, no templates, no login page of its
own. The database comes from DATABASE_URL or EXAMPLE_SQLITE_PATH (tests/example/live.py), the
cache is Redis under CACHE_KEY_PREFIX when REDIS_URL is set, else per-process memory.
"""

import os

import dj_database_url

from django_mcp_scopes.oauth.provider import oauth2_provider_settings

SECRET_KEY = "oauth-project-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.oauth_project.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "django_mcp_scopes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("EXAMPLE_SQLITE_PATH", "oauth-project.sqlite3"),
        }
    }

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "oauth-project"),
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

BASE_URL = os.environ.get("DJANGO_BASE_URL") or None
OAUTH2_PROVIDER = oauth2_provider_settings(issuer=BASE_URL)
MCP_SCOPES = {"BASE_URL": BASE_URL}
MCP_SCOPES_OAUTH = {"REGISTRATION_RATE_LIMIT": int(os.environ.get("DCR_PER_IP_PER_HOUR", "20"))}
