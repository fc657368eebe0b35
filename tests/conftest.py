import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from django_mcp_scopes import refusals
from django_mcp_scopes.registry import scope_registry
from django_mcp_scopes.token_cache import token_cache


def clear_cache(cache):
    """Empty a cache; on Redis only this run's keys (FLUSHDB would hit parallel runs too)."""
    if isinstance(cache, RedisCache):
        if not cache.key_prefix:
            raise RuntimeError("Refusing to clear a Redis cache without KEY_PREFIX in tests.")
        client = cache._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at the end no other session left on it.

    ``DROP DATABASE`` refuses while another session is on the database (after waiting 5 s for
    them to go). In-process ASGI tests (Django's ``AsyncClient``, which keeps connections open
    across requests as every test client does) leave one in asgiref's sync thread, which lives as
    long as this process: a CI run on PostgreSQL failed at teardown so, after every test passed.
    Those sessions are ended here, as the last thing before the database is dropped.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture(autouse=True)
def _default_script_prefix():
    """A request with a SCRIPT_NAME (a test client's, or a WSGI application called in the test's
    thread) sets the script prefix of that thread, as Django's handler does for each request: every
    test starts and ends with the default, so no reverse() inherits another test's prefix."""
    from django.urls import set_script_prefix, set_urlconf

    set_script_prefix("/")
    set_urlconf(None)
    yield
    set_script_prefix("/")
    set_urlconf(None)


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Every test starts with an empty cache, no in-process scope snapshot and no in-process tokens."""
    for cache in caches.all():
        clear_cache(cache)
    scope_registry.reset_local()
    token_cache.clear_local()
    refusals.discard_pending()
    yield
    scope_registry.reset_local()
    token_cache.clear_local()


@pytest.fixture
def journal_declarations():
    """For tests that run the example's ``setup_demo``: it declares the journal's scopes, which must
    not leak into other tests (as in tests/example/)."""
    from django_mcp_scopes import declarations
    from example_project.journal.scopes import JOURNAL_SCOPES

    yield
    for name in JOURNAL_SCOPES:
        declarations._forget(name)


@pytest.fixture
def empty_refusal_record(db):
    """Live servers of earlier tests write their refusals after the response, possibly after their
    test's database flush: start from an empty record."""
    from django_mcp_scopes.models import Refusal

    Refusal.objects.all().delete()
