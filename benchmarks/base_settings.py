"""What the benchmarks' Django settings share: production-like (DEBUG off), LocMem cache, no
session/CSRF middleware, the package and django-oauth-toolkit only."""

DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "oauth2_provider",
    "django_mcp_scopes",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
OAUTH2_PROVIDER = {"SCOPES_BACKEND_CLASS": "django_mcp_scopes.backends.DatabaseScopes"}
