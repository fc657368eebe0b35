"""The database-owned epochs: a cache that fails, or returns with old data, changes no decision."""

import time

import pytest
from django.core.cache import caches
from django.db import transaction
from django.test import override_settings

from django_mcp_scopes.epochs import epochs
from django_mcp_scopes.models import Epochs
from django_mcp_scopes.token_cache import REVOKED, token_cache
from tests import flaky_cache

FLAKY = {"default": {"BACKEND": "tests.flaky_cache.FlakyCache", "LOCATION": "epochs-tests"}}


@pytest.fixture
def flaky():
    flaky_cache.down = False
    flaky_cache.calls.clear()
    with override_settings(CACHES=FLAKY, MCP_SCOPES={"CACHE_RETRY_SECONDS": 60}):
        # LocMem storage outlives a test while the epoch rolls back with the database: without this,
        # another test's tombstone under the same epoch number is read here (order-dependent).
        caches["default"].clear()
        token_cache.clear_local()
        yield flaky_cache
    flaky_cache.down = False


@pytest.mark.django_db
def test_a_drop_the_cache_does_not_confirm_makes_every_older_entry_worthless(flaky):
    token_cache.put("abc", {"user": 1}, 30)
    token_cache.put("other", {"user": 2}, 30)
    token_cache.clear_local()
    assert token_cache.get("abc") == {"user": 1}
    before = Epochs.objects.first()
    flaky.down = True
    token_cache.drop("abc", tombstone=True)  # revoked while the cache is down
    assert Epochs.objects.get().tokens == (before.tokens if before else 0) + 1
    flaky.down = False  # the cache returns, with the entries written before the revocation
    token_cache.clear_local()
    token_cache._unavailable_until = 0.0
    assert token_cache.get("abc") is None  # worthless: validated again against the database
    assert token_cache.get("other") is None
    token_cache.put("other", {"user": 2}, 30)  # new entries under the new epoch are used
    token_cache.clear_local()
    assert token_cache.get("other") == {"user": 2}


@pytest.mark.django_db
def test_a_confirmed_drop_leaves_a_tombstone_and_moves_nothing(flaky):
    token_cache.put("abc", {"user": 1}, 30)
    token_cache.drop("abc", tombstone=True)
    assert not Epochs.objects.filter(tokens__gt=0).exists()
    token_cache.clear_local()
    assert token_cache.get("abc") == REVOKED


@pytest.mark.django_db
def test_after_a_failure_the_cache_is_left_alone_for_cache_retry_seconds(flaky):
    flaky.down = True
    assert token_cache.get("abc") is None
    assert flaky.calls == ["get"]
    for _ in range(10):
        assert token_cache.get("abc") is None
        token_cache.put("abc", {"user": 1}, 30)
    assert flaky.calls == ["get"]  # no further call: a stalled cache costs one timeout per interval
    token_cache.drop("abc", tombstone=True)  # not confirmed: the epoch moves instead
    assert Epochs.objects.get().tokens == 1
    token_cache._unavailable_until = time.monotonic() - 1  # the interval passed
    flaky.down = False
    token_cache.put("abc", {"user": 1}, 30)
    assert flaky.calls[-1] == "add"


@pytest.mark.django_db(transaction=True)
def test_a_bump_in_a_rolled_back_transaction_moves_nothing():
    epochs.forget()
    start = epochs.current()
    with transaction.atomic():
        epochs.bump_tokens()
        epochs.bump_scopes()
        assert epochs.current() == (start.scopes + 1, start.tokens + 1)  # this thread sees its own move
        transaction.set_rollback(True)
    assert epochs.current() == start
    epochs.bump_scopes()
    assert epochs.current() == (start.scopes + 1, start.tokens)


@pytest.mark.django_db(transaction=True)
def test_the_reading_is_trusted_for_the_refresh_window_only():
    with override_settings(MCP_SCOPES={"REGISTRY_REFRESH_SECONDS": 0.2}):
        epochs.forget()
        first = epochs.current()
        Epochs.objects.update_or_create(pk=1, defaults={"scopes": first.scopes + 5})  # another process
        assert epochs.current() == first
        assert epochs.peek() == first
        time.sleep(0.25)
        assert epochs.peek() is None
        assert epochs.current().scopes == first.scopes + 5


@pytest.mark.django_db
def test_a_rolled_back_move_is_not_seen_by_later_transactions_of_the_thread():
    """A move inside a transaction that rolls back is private to it; afterwards (here: in the test's
    outer transaction, as under ATOMIC_REQUESTS) the thread reads the committed row again."""
    before = epochs.current()
    with pytest.raises(RuntimeError), transaction.atomic():
        epochs.bump_tokens()
        assert epochs.current().tokens == before.tokens + 1  # its own move, seen inside
        raise RuntimeError("rolled back")
    assert epochs.current() == before
