import pytest
from django.core.cache import caches

from django_mcp_scopes.registry import scope_registry
from django_mcp_scopes.token_cache import token_cache


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Every test starts with an empty cache, no in-process scope snapshot and no in-process tokens."""
    for cache in caches.all():
        cache.clear()
    scope_registry.reset_local()
    token_cache.clear_local()
    yield
    scope_registry.reset_local()
    token_cache.clear_local()
