"""Settings for the test suite: SQLite by default, PostgreSQL when DATABASE_URL is set,
Redis as the cache when REDIS_URL is set (LocMem otherwise)."""

import os
import uuid

import dj_database_url

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "tests.urls"
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
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

_default_db = "sqlite:///" + os.path.join(os.path.dirname(__file__), "test.sqlite3")
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", _default_db))}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not :memory:) so that live server processes started by the tests share it.
    # TEST_SQLITE_PATH moves it, so runs sharing this checkout (tox envs) never share one file.
    _test_sqlite = os.environ.get("TEST_SQLITE_PATH") or os.path.join(os.path.dirname(__file__), "test-db.sqlite3")
    DATABASES["default"]["TEST"] = {"NAME": _test_sqlite}

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            # Unique per test run and xdist worker, so parallel runs never share keys and the conftest
            # clears only this prefix (never FLUSHDB). Server processes started by a test inherit
            # TESTS_RUN_ID and PYTEST_XDIST_WORKER from the environment, hence the same prefix.
            "KEY_PREFIX": "tests-{}-{}".format(
                os.environ.setdefault("TESTS_RUN_ID", uuid.uuid4().hex[:12]),
                os.environ.get("PYTEST_XDIST_WORKER", "main"),
            ),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

OAUTH2_PROVIDER = {
    "SCOPES_BACKEND_CLASS": "django_mcp_scopes.backends.DatabaseScopes",
}

MCP_SCOPES: dict = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"]},
}
