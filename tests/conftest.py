import pytest
from django.core.cache import caches

from django_mcp_scopes.registry import scope_registry


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Every test starts with an empty cache and no in-process scope snapshot."""
    for cache in caches.all():
        cache.clear()
    scope_registry.reset_local()
    yield
    scope_registry.reset_local()
