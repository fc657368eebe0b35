import json
import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from django_mcp_scopes import declarations
from django_mcp_scopes.models import Epochs, Scope
from django_mcp_scopes.registry import ScopeRegistry, Snapshot, scope_registry


@pytest.fixture
def hierarchy(db):
    """admin -> write -> read, plus an unrelated advertised profile and an inactive legacy."""
    read = Scope.objects.create(name="read", description="Read things", is_advertised=True)
    write = Scope.objects.create(name="write", description="Write things")
    admin = Scope.objects.create(name="admin", description="")
    profile = Scope.objects.create(name="profile", description="Your profile", is_advertised=True)
    legacy = Scope.objects.create(name="legacy", is_active=False, is_advertised=True)
    write.implies.add(read)
    admin.implies.add(write, legacy)
    return {s.name: s for s in (read, write, admin, profile, legacy)}


def in_other_thread(func):
    """Run func in another thread (its own DB connection), as another server would; return its result."""
    result = {}

    def run():
        try:
            result["value"] = func()
        except BaseException as exc:  # pragma: no cover - re-raised below
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_multi_level_closure(hierarchy):
    assert scope_registry.expand(["admin"]) == {"admin", "write", "read"}
    assert scope_registry.expand(["write"]) == {"write", "read"}
    assert scope_registry.expand(["read", "profile"]) == {"read", "profile"}
    assert scope_registry.implied_by("read") == {"admin", "write"}
    assert scope_registry.implied_by("admin") == frozenset()


def test_unknown_and_inactive_names_grant_nothing(hierarchy):
    assert scope_registry.expand(["nope", "legacy"]) == frozenset()
    assert not scope_registry.is_active("legacy")
    assert not scope_registry.is_active("nope")
    assert scope_registry.describe("legacy") is None


def test_inactive_scope_is_cut_out_of_the_hierarchy(hierarchy):
    hierarchy["write"].is_active = False
    hierarchy["write"].save()
    # admin -> write -> read: write passes nothing on, so admin no longer grants read.
    assert scope_registry.expand(["admin"]) == {"admin"}
    assert scope_registry.expand(["write"]) == frozenset()
    assert scope_registry.implied_by("read") == frozenset()
    assert not scope_registry.satisfies(["admin"], ["read"])


def test_satisfies(hierarchy):
    assert scope_registry.satisfies(["admin"], ["read", "write"])
    assert scope_registry.satisfies(["read"], [])
    assert not scope_registry.satisfies(["read"], ["write"])
    assert not scope_registry.satisfies([], ["read"])


def test_baseline_descriptions_and_active_names(hierarchy):
    assert scope_registry.baseline() == ["profile", "read"]
    assert scope_registry.active_names() == ["admin", "profile", "read", "write"]
    assert scope_registry.descriptions() == {
        "admin": "admin",  # no description: the name stands in (consent page)
        "profile": "Your profile",
        "read": "Read things",
        "write": "Write things",
    }
    assert scope_registry.describe("read") == "Read things"


def test_zero_queries_once_warm_inside_the_writing_transaction(hierarchy, django_assert_num_queries):
    scope_registry.expand(["admin"])
    with django_assert_num_queries(0):
        for _ in range(50):
            scope_registry.expand(["admin"])
            scope_registry.is_active("read")
            scope_registry.baseline()
            scope_registry.descriptions()


def test_snapshot_build_cycle_safe():
    # A cycle can still reach the table (loaddata, raw SQL, two admins each adding one half of
    # it at the same moment). It must not hang the registry, and must not make a narrower scope
    # grant a broader one: the implications that close a cycle grant nothing.
    snapshot = Snapshot.build(
        "v",
        [{"name": n, "description": "", "is_active": True, "is_advertised": False} for n in "abcd"],
        [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a"), ("a", "d"), ("d", "c")],
    )
    assert snapshot.closures["a"] == {"a"}
    assert snapshot.closures["b"] == {"b"}
    assert snapshot.closures["c"] == {"c"}
    assert snapshot.closures["d"] == {"d"}
    snapshot = Snapshot.build(
        "v",
        [{"name": n, "description": "", "is_active": True, "is_advertised": False} for n in "abcx"],
        [("a", "b"), ("b", "a"), ("x", "a"), ("b", "c")],
    )
    assert snapshot.closures["x"] == {"x", "a"}  # edges outside the cycle still count
    assert snapshot.closures["b"] == {"b", "c"}
    assert snapshot.closures["a"] == {"a"}
    assert snapshot.implied_by["c"] == {"b"}


@pytest.mark.django_db
def test_rows_that_bypassed_validation_are_never_active(client):
    # bulk_create, QuerySet.update(), raw SQL and loaddata skip the model's validators. A name
    # that is no RFC 6749 scope-token must not reach WWW-Authenticate, the metadata document
    # or the authorization server, whatever it holds.
    bad = ['x" error="forged', "a b", "evil\r\nSet-Cookie:\x20s=1", "caf\u00e9", "back\\slash", ""]
    Scope.objects.bulk_create([Scope(name=name, is_advertised=True) for name in bad])
    Scope.objects.create(name="ok", is_advertised=True)
    for name in bad[:-1]:
        Scope.objects.get(name=name).implies.add(Scope.objects.get(name="ok"))
    scope_registry.invalidate()
    assert scope_registry.baseline() == ["ok"]
    assert scope_registry.active_names() == ["ok"]
    assert scope_registry.expand(bad) == frozenset()
    assert scope_registry.implied_by("ok") == frozenset()


# Across transactions and "processes" (another ScopeRegistry on the same database) ----------------


@pytest.fixture
def committed(transactional_db):
    read = Scope.objects.create(name="read", description="Read", is_advertised=True)
    write = Scope.objects.create(name="write", description="Write")
    write.implies.add(read)
    return read, write


@pytest.fixture
def other_process():
    """A second registry, checking the database-owned version on every call."""
    with override_settings(MCP_SCOPES={"REGISTRY_REFRESH_SECONDS": 0}):
        yield ScopeRegistry()


def test_warm_registry_makes_no_queries(committed, django_assert_num_queries):
    scope_registry.baseline()
    with django_assert_num_queries(0):
        for _ in range(50):
            scope_registry.expand(["write"])
            scope_registry.baseline()


def test_other_process_rebuilds_from_the_database_when_the_version_moves(
    committed, other_process, django_assert_num_queries
):
    with django_assert_num_queries(3):  # the version, the scopes, the implications
        assert other_process.expand(["write"]) == {"write", "read"}
    with django_assert_num_queries(1):  # the version only (REGISTRY_REFRESH_SECONDS is 0 here)
        assert other_process.baseline() == ["read"]
    Scope.objects.create(name="new")
    with django_assert_num_queries(3):
        assert other_process.active_names() == ["new", "read", "write"]


def test_save_reaches_other_process(committed, other_process):
    read, write = committed
    assert other_process.baseline() == ["read"]
    write.is_advertised = True
    write.save()
    assert other_process.baseline() == ["read", "write"]
    Scope.objects.create(name="new", is_advertised=True)
    assert other_process.baseline() == ["new", "read", "write"]
    read.is_active = False
    read.save()
    assert other_process.expand(["write"]) == {"write"}


def test_delete_reaches_other_process(committed, other_process):
    read, _ = committed
    assert other_process.expand(["write"]) == {"write", "read"}
    read.delete()
    assert other_process.expand(["write"]) == {"write"}
    Scope.objects.filter(name="write").delete()
    assert other_process.active_names() == []


def test_m2m_changes_reach_other_process(committed, other_process):
    read, write = committed
    assert other_process.implied_by("read") == {"write"}
    write.implies.remove(read)
    assert other_process.implied_by("read") == frozenset()
    read.implied_by.add(write)
    assert other_process.implied_by("read") == {"write"}
    write.implies.clear()
    assert other_process.expand(["write"]) == {"write"}


def test_bulk_writes_announce_themselves_in_their_transaction(committed, other_process):
    assert other_process.baseline() == ["read"]
    Scope.objects.update(is_advertised=True)  # no signals, but the queryset moves the version
    assert other_process.baseline() == ["read", "write"]
    Scope.objects.bulk_create([Scope(name="bulk", is_advertised=True)])
    assert other_process.baseline() == ["bulk", "read", "write"]
    bulk = Scope.objects.get(name="bulk")
    bulk.is_active = False
    Scope.objects.bulk_update([bulk], ["is_active"])
    assert other_process.baseline() == ["read", "write"]
    with transaction.atomic():
        Scope.objects.filter(name="read").update(is_active=False)
        assert in_other_thread(other_process.baseline) == ["read", "write"]
        transaction.set_rollback(True)
    assert other_process.baseline() == ["read", "write"]
    assert Epochs.objects.get().scopes > 0


def test_a_missing_epochs_row_is_recreated(committed, other_process):
    assert other_process.baseline() == ["read"]
    Epochs.objects.all().delete()  # a flush, or a table emptied by hand
    assert other_process.baseline() == ["read"]
    Scope.objects.filter(name="write").update(is_advertised=True)
    assert Epochs.objects.get().scopes == 1
    assert other_process.baseline() == ["read", "write"]


def test_loaddata_reaches_other_process(committed, other_process, tmp_path):
    assert other_process.baseline() == ["read"]
    fixture = tmp_path / "scopes.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "mcp_scopes.scope",
                    "pk": 1000,
                    "fields": {
                        "name": "loaded",
                        "description": "From a fixture",
                        "is_active": True,
                        "is_advertised": True,
                        "created_at": "2026-01-01T00:00:00Z",
                        "updated_at": "2026-01-01T00:00:00Z",
                        "implies": [],
                    },
                }
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert other_process.baseline() == ["loaded", "read"]
    assert other_process.describe("loaded") == "From a fixture"


def test_sync_command_reaches_other_process(committed, other_process):
    declarations.declare_scope("synced", "Declared in code", advertised=True, implies=["read"])
    try:
        call_command("mcp_scopes", "sync", verbosity=0)
    finally:
        declarations._forget("synced")
    assert other_process.baseline() == ["read", "synced"]
    assert other_process.expand(["synced"]) == {"synced", "read"}


def test_uncommitted_change_is_private_and_a_rollback_leaves_nothing(committed):
    with transaction.atomic():
        Scope.objects.create(name="draft", is_advertised=True)
        # The writing thread sees its own change ...
        assert scope_registry.baseline() == ["draft", "read"]
        # ... no other thread (or process) does.
        assert in_other_thread(scope_registry.baseline) == ["read"]
        assert in_other_thread(lambda: ScopeRegistry().baseline()) == ["read"]
        transaction.set_rollback(True)
    assert scope_registry.baseline() == ["read"]
    assert ScopeRegistry().baseline() == ["read"]


def test_commit_publishes_to_everyone(committed, other_process):
    with transaction.atomic():
        Scope.objects.create(name="draft", is_advertised=True)
        assert in_other_thread(other_process.baseline) == ["read"]
    assert scope_registry.baseline() == ["draft", "read"]
    assert other_process.baseline() == ["draft", "read"]
    assert in_other_thread(other_process.baseline) == ["draft", "read"]


def test_the_registry_never_reads_the_cache(committed, django_assert_num_queries):
    """No cache state (down, flushed, old data back) can change what the registry answers."""
    broken = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1",
        },
    }
    with override_settings(CACHES=broken):
        with django_assert_num_queries(3):
            assert scope_registry.expand(["write"]) == {"write", "read"}
        with django_assert_num_queries(0):  # trusted for REGISTRY_REFRESH_SECONDS as usual
            assert scope_registry.baseline() == ["read"]
        Scope.objects.filter(name="read").update(is_active=False)
        assert scope_registry.expand(["write"]) == {"write"}


def test_async_api_from_an_event_loop(committed, django_assert_num_queries):
    from asgiref.sync import async_to_sync

    async def ask():
        # Cold: the load runs in a sync thread (no SynchronousOnlyOperation in the event loop).
        return (
            await scope_registry.aexpand(["write"]),
            await scope_registry.abaseline(),
            await scope_registry.ais_active("read"),
            await scope_registry.asatisfies(["write"], ["read"]),
            await scope_registry.asatisfies(["read"], ["write"]),
        )

    assert async_to_sync(ask)() == (frozenset({"write", "read"}), ["read"], True, True, False)
    with django_assert_num_queries(0):
        assert async_to_sync(ask)()[0] == {"write", "read"}
    Scope.objects.filter(name="read").update(is_active=False)
    assert async_to_sync(ask)() == (frozenset({"write"}), [], False, False, False)


def test_a_change_whose_announcement_fails_is_not_saved(hierarchy):
    """The row and the version move commit together: no change other processes would never hear of."""
    from django.db import DatabaseError

    read = hierarchy["read"]
    with transaction.atomic():  # undoes the DROP below
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE mcp_scopes_epochs")
        read.is_active = False
        with pytest.raises(DatabaseError):
            read.save()
        with pytest.raises(DatabaseError):
            Scope.objects.filter(name="write").update(is_advertised=True)
        with pytest.raises(DatabaseError):
            Scope.objects.bulk_create([Scope(name="bulk")])
        assert Scope.objects.filter(is_active=True, name="read").exists()
        assert not Scope.objects.filter(name="write", is_advertised=True).exists()
        assert not Scope.objects.filter(name="bulk").exists()
        transaction.set_rollback(True)
