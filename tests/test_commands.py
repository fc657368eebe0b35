import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import modify_settings

from django_mcp_scopes import declarations
from django_mcp_scopes.models import Scope
from django_mcp_scopes.registry import scope_registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def declare():
    """declare_scope() that forgets its declarations after the test."""
    names = []

    def _declare(name, *args, **kwargs):
        names.append(name)
        return declarations.declare_scope(name, *args, **kwargs)

    yield _declare
    for name in names:
        declarations._forget(name)


def run(*args, **kwargs):
    out = StringIO()
    call_command("mcp_scopes", *args, stdout=out, **kwargs)
    return out.getvalue()


def _state():
    rows = sorted(Scope.objects.values_list("name", "description", "is_active", "is_advertised"))
    edges = sorted(Scope.implies.through.objects.values_list("from_scope__name", "to_scope__name"))
    return rows, edges


@pytest.fixture
def journal(declare):
    declare("entries:read", "Read your entries", advertised=True)
    declare("entries:write", "Change your entries", implies=["entries:read"])
    declare("offline_access", "Stay connected while you are away")


def test_sync_creates_what_is_declared(journal):
    out = run("sync")
    assert "Created entries:read (advertised)" in out
    assert "Created entries:write (implies entries:read)" in out
    assert "3 scope(s) created, 0 deleted, 0 already present." in out
    assert _state() == (
        [
            ("entries:read", "Read your entries", True, True),
            ("entries:write", "Change your entries", True, False),
            ("offline_access", "Stay connected while you are away", True, False),
        ],
        [("entries:write", "entries:read")],
    )
    assert scope_registry.baseline() == ["entries:read"]
    assert scope_registry.expand(["entries:write"]) == {"entries:write", "entries:read"}


def test_sync_is_idempotent(journal):
    run("sync")
    before = _state()
    out = run("sync")
    assert "0 scope(s) created, 0 deleted, 3 already present." in out
    assert _state() == before


def test_sync_never_overwrites_admin_edits(journal, declare):
    run("sync")
    write = Scope.objects.get(name="entries:write")
    write.description = "Edited by an admin"
    write.is_advertised = True
    write.save()
    write.implies.clear()  # the admin removed the implication on purpose
    Scope.objects.filter(name="entries:read").update(is_active=False)
    declare("entries:read", implies=[])  # a bare mention changes nothing either
    before = _state()
    out = run("sync", "-v", "2")  # after the subcommand, as the docs write it
    assert (
        "Kept entries:write as it is in the database: description 'Edited by an admin', declared "
        "'Change your entries'; advertised yes, declared no; implies -, declared entries:read." in out
    )
    assert "Kept entries:read as it is in the database: inactive." in out
    assert _state() == before
    assert "Kept" not in run("sync", "-v", "1")


def test_verbosity_after_any_subcommand(journal):
    run("sync")
    assert "entries:read" in run("list", "-v", "0") + run("show", "entries:read", "--verbosity", "2")
    with pytest.raises(CommandError, match="invalid choice: 7"):
        run("sync", "-v", "7")


def test_sync_adds_edges_only_for_new_scopes(declare):
    Scope.objects.create(name="tags:read")
    Scope.objects.create(name="tags:write")
    declare("tags:write", "Change tags", implies=["tags:read"])
    declare("tags:admin", "Everything about tags", implies=["tags:write"])
    run("sync")
    assert not Scope.objects.get(name="tags:write").implies.exists()  # existed: untouched
    assert list(Scope.objects.get(name="tags:admin").implies.values_list("name", flat=True)) == ["tags:write"]
    assert Scope.objects.get(name="tags:write").description == ""


def test_dry_run_writes_nothing(journal):
    Scope.objects.create(name="stale")
    before = _state()
    out = run("sync", "--dry-run", "--prune")
    assert "Would create entries:read (advertised)" in out
    assert "Would delete stale" in out
    assert "Dry run: 3 to create, 1 to delete; nothing written." in out
    assert _state() == before


def test_prune_needs_confirmation(journal):
    Scope.objects.create(name="stale")
    before = _state()
    with pytest.raises(CommandError, match="pass --yes"):
        run("sync", "--prune", "--no-input")
    assert _state() == before
    run("sync", "--prune", "--yes")
    assert not Scope.objects.filter(name="stale").exists()
    assert Scope.objects.count() == 3


def test_prune_asks_interactively(journal, monkeypatch):
    Scope.objects.create(name="stale")
    before = _state()
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match=r"Cancelled; nothing was written\."):
        run("sync", "--prune")
    assert _state() == before
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    run("sync", "--prune")
    assert not Scope.objects.filter(name="stale").exists()


def test_prune_with_nothing_declared_refuses():
    Scope.objects.create(name="precious")
    with pytest.raises(CommandError, match="refusing to prune every scope"):
        run("sync", "--prune", "--yes")
    assert Scope.objects.filter(name="precious").exists()


def test_without_prune_nothing_is_deleted(journal):
    Scope.objects.create(name="admin-made")
    run("sync")
    assert Scope.objects.filter(name="admin-made").exists()


def test_undeclared_implication_is_refused_before_any_write(declare):
    Scope.objects.create(name="existing")
    declare("a", "A")
    declare("b", "B", implies=["missing"])
    before = _state()
    with pytest.raises(CommandError, match="b implies 'missing', which is neither declared nor in the database"):
        run("sync")
    assert _state() == before


def test_implication_of_a_pruned_scope_is_refused(declare):
    Scope.objects.create(name="undeclared")
    declare("b", "B", implies=["undeclared"])
    run("sync")  # fine without --prune: it exists
    declare("c", "C", implies=["undeclared"])
    before = _state()
    with pytest.raises(CommandError, match="--prune would delete it"):
        run("sync", "--prune", "--yes")
    assert _state() == before


def test_case_collision_is_refused(declare):
    Scope.objects.create(name="entries:read")
    declare("Entries:Read", "Read")
    before = _state()
    with pytest.raises(CommandError, match="differs only in letter case from 'entries:read'"):
        run("sync")
    assert _state() == before


def test_declared_cycle_is_refused(declare):
    declare("a", "A", implies=["b"])
    declare("b", "B", implies=["c"])
    declare("c", "C", implies=["a"])
    with pytest.raises(CommandError, match=r"cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)"):
        run("sync")
    assert not Scope.objects.exists()


def test_declared_self_implication_is_refused(declare):
    declare("a", "A", implies=["a"])
    with pytest.raises(CommandError, match="a is declared to imply itself"):
        run("sync")
    assert not Scope.objects.exists()


def test_sync_autodiscovers_mcp_scopes_modules():
    sys.modules.pop("tests.declaring_app.mcp_scopes", None)
    try:
        with modify_settings(INSTALLED_APPS={"append": "tests.declaring_app"}):
            run("sync")
        assert _state() == (
            [
                ("discovered:read", "Found by autodiscovery", True, True),
                ("discovered:write", "Write what autodiscovery found", True, False),
            ],
            [("discovered:write", "discovered:read")],
        )
    finally:
        declarations._forget("discovered:read")
        declarations._forget("discovered:write")


def test_list(journal):
    assert "No scopes in the database" in run("list")
    run("sync")
    Scope.objects.filter(name="offline_access").update(is_active=False)
    lines = run("list").splitlines()
    assert lines[0].split() == ["NAME", "ACTIVE", "ADVERTISED", "IMPLIES", "DESCRIPTION"]
    assert lines[1].split() == ["entries:read", "yes", "yes", "-", "Read", "your", "entries"]
    assert lines[2].split() == ["entries:write", "yes", "no", "entries:read", "Change", "your", "entries"]
    assert lines[3].split()[:4] == ["offline_access", "no", "no", "-"]


def test_show(journal, declare):
    declare("entries:admin", "All of it", implies=["entries:write"])
    run("sync")
    out = run("show", "entries:write")
    assert "Name:         entries:write" in out
    assert "Description:  Change your entries" in out
    assert "Advertised:   no" in out
    assert "Implies:      entries:read" in out
    assert "Effective:    entries:read, entries:write" in out
    assert "Granted by:   entries:admin" in out
    out = run("show", "entries:read")
    assert "Granted by:   entries:admin, entries:write" in out


def test_show_inactive(journal):
    run("sync")
    Scope.objects.filter(name="entries:read").update(is_active=False)
    assert "inactive: grants nothing" in run("show", "entries:read")


def test_show_unknown_name(journal):
    run("sync")
    with pytest.raises(CommandError, match="Unknown scope 'nope'"):
        run("show", "nope")
    with pytest.raises(CommandError, match="did you mean 'entries:read'"):
        run("show", "Entries:Read")


def test_subcommand_is_required():
    with pytest.raises(CommandError):
        run()


def test_prune_without_a_terminal_is_cancelled(journal, monkeypatch):
    Scope.objects.create(name="stale")

    def no_stdin(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_stdin)
    with pytest.raises(CommandError, match="Cancelled"):
        run("sync", "--prune")
    assert Scope.objects.filter(name="stale").exists()
    assert not Scope.objects.filter(name="entries:read").exists()
