import pytest
from django.core.exceptions import ImproperlyConfigured

from django_mcp_scopes import declarations
from django_mcp_scopes.declarations import declare_scope, declared_scopes


@pytest.fixture(autouse=True)
def _forget():
    yield
    for name in ("d:read", "d:write", "offline_access"):
        declarations._forget(name)


def test_declare_and_merge_bare_mentions():
    declare_scope("d:write", "Write", implies=["d:read"])
    merged = declare_scope("d:write", implies=["d:other"], advertised=True)
    assert merged.description == "Write"
    assert merged.implies == ("d:other", "d:read")
    assert merged.advertised
    assert declared_scopes()["d:write"] == merged


def test_conflicting_descriptions_are_refused():
    declare_scope("d:read", "Read")
    declare_scope("d:read", "Read")  # identical: fine
    with pytest.raises(ImproperlyConfigured, match="declared twice with different descriptions"):
        declare_scope("d:read", "Something else")


@pytest.mark.parametrize("name", ["with space", "", 'q"', "\u00e9"])
def test_invalid_names_are_refused(name):
    with pytest.raises(ImproperlyConfigured, match="is invalid"):
        declare_scope(name, "x")
    with pytest.raises(ImproperlyConfigured, match="is invalid"):
        declare_scope("d:write", "x", implies=[name])
    assert "d:write" not in declared_scopes()


def test_offline_access_cannot_be_declared_advertised():
    with pytest.raises(ImproperlyConfigured, match="offline_access can never be advertised"):
        declare_scope("offline_access", "Stay connected", advertised=True)
    assert "offline_access" not in declared_scopes()


def test_implies_must_be_a_list_not_a_string():
    with pytest.raises(ImproperlyConfigured, match="takes a list of scope names"):
        declare_scope("d:write", "Write", implies="d:read")
    assert "d:write" not in declared_scopes()
