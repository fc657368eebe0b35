import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from django_mcp_scopes.models import Scope

pytestmark = pytest.mark.django_db


def _state():
    """Everything that matters in the scope tables, to assert that a refused change wrote nothing."""
    rows = sorted(Scope.objects.values_list("name", "description", "is_active", "is_advertised"))
    edges = sorted(Scope.implies.through.objects.values_list("from_scope__name", "to_scope__name"))
    return rows, edges


@pytest.fixture
def chain():
    """admin -> write -> read (two levels)."""
    read = Scope.objects.create(name="read", description="Read")
    write = Scope.objects.create(name="write", description="Write")
    admin = Scope.objects.create(name="admin", description="Everything")
    write.implies.add(read)
    admin.implies.add(write)
    return admin, write, read


def test_str_and_ordering():
    Scope.objects.create(name="b")
    Scope.objects.create(name="a")
    assert [str(s) for s in Scope.objects.all()] == ["a", "b"]


@pytest.mark.parametrize("name", ["with space", 'quo"te', "back\\slash", "ctrl\x01", "n\u00f6n-ascii", "", "x" * 101])
def test_invalid_name_is_refused_by_full_clean(name):
    Scope.objects.create(name="existing")
    before = _state()
    scope = Scope(name=name)
    with pytest.raises(ValidationError) as excinfo:
        scope.full_clean()
    assert "name" in excinfo.value.message_dict
    assert _state() == before


def test_case_duplicate_gets_the_constraint_message():
    Scope.objects.create(name="entries:read")
    before = _state()
    with pytest.raises(ValidationError) as excinfo:
        Scope(name="Entries:Read").full_clean()
    assert "differ by more than case" in str(excinfo.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        Scope.objects.create(name="ENTRIES:READ")
    assert _state() == before


def test_exact_duplicate_is_refused():
    Scope.objects.create(name="entries:read")
    with pytest.raises(ValidationError) as excinfo:
        Scope(name="entries:read").full_clean()
    assert "name" in excinfo.value.message_dict


def test_offline_access_can_never_be_advertised():
    before = _state()
    scope = Scope(name="offline_access", is_advertised=True)
    with pytest.raises(ValidationError) as excinfo:
        scope.full_clean()
    assert "offline_access can never be advertised." in excinfo.value.message_dict["is_advertised"]
    with pytest.raises(IntegrityError), transaction.atomic():
        scope.save()
    assert _state() == before
    Scope.objects.create(name="offline_access")  # not advertised: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        Scope.objects.filter(name="offline_access").update(is_advertised=True)
    assert not Scope.objects.get(name="offline_access").is_advertised


def test_self_implication_is_refused(chain):
    admin, _, _ = chain
    before = _state()
    with pytest.raises(ValidationError, match="cannot imply itself"), transaction.atomic():
        admin.implies.add(admin)
    assert _state() == before


def test_direct_cycle_is_refused(chain):
    _, write, read = chain
    before = _state()
    with pytest.raises(ValidationError) as excinfo, transaction.atomic():
        read.implies.add(write)
    assert "read \u2192 write \u2192 read" in excinfo.value.messages[0]
    assert _state() == before


def test_multi_level_cycle_names_the_whole_chain(chain):
    admin, _, read = chain
    before = _state()
    with pytest.raises(ValidationError) as excinfo, transaction.atomic():
        read.implies.add(admin)
    assert "read \u2192 admin \u2192 write \u2192 read" in excinfo.value.messages[0]
    assert _state() == before


def test_cycle_through_the_reverse_relation_is_refused(chain):
    admin, _, read = chain
    before = _state()
    # "admin is implied by read" is the same edge as read.implies.add(admin).
    with pytest.raises(ValidationError, match="cycle"), transaction.atomic():
        admin.implied_by.add(read)
    assert _state() == before


def test_set_with_a_cycle_changes_nothing(chain):
    admin, _write, read = chain
    other = Scope.objects.create(name="other")
    read.implies.add(other)
    before = _state()
    with pytest.raises(ValidationError), transaction.atomic():
        read.implies.set([admin])
    assert _state() == before


def test_check_implications_accepts_a_diamond(chain):
    admin, _, read = chain
    admin.check_implications([read])  # admin -> read directly as well: no cycle
    admin.implies.add(read)
    assert set(admin.implies.values_list("name", flat=True)) == {"write", "read"}


def test_graph_is_read_from_the_database(chain):
    _admin, _write, _read = chain
    graph = Scope.objects.graph()
    assert graph.closures["admin"] == {"admin", "write", "read"}
    assert graph.implied_by["read"] == {"admin", "write"}


def test_implication_rows_read_well():
    read = Scope.objects.create(name="read")
    write = Scope.objects.create(name="write")
    write.implies.add(read)
    assert str(Scope.implies.through.objects.get()) == "write \u2192 read"


def test_loaddata_with_a_cycle_is_refused_and_writes_nothing(tmp_path):
    import json

    from django.core.management import call_command

    Scope.objects.create(name="existing")
    before = _state()

    def row(pk, name, implies):
        fields = {"name": name, "description": "", "is_active": True, "is_advertised": False}
        fields.update(created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z", implies=implies)
        return {"model": "mcp_scopes.scope", "pk": pk, "fields": fields}

    fixture = tmp_path / "cycle.json"
    fixture.write_text(json.dumps([row(501, "a", [502]), row(502, "b", [501])]))
    with pytest.raises(ValidationError, match=r"cycle: b \u2192 a \u2192 b"), transaction.atomic():
        call_command("loaddata", str(fixture), verbosity=0)
    assert _state() == before
