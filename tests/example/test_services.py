"""The journal service layer against the real database: ownership, validation, no partial writes."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from example_project.journal import services
from example_project.journal.models import Entry, Tag
from example_project.journal.services import InvalidInput, NotFound

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def bob():
    return get_user_model().objects.create_user("bob", password="pw")


def test_create_entry_needs_only_title_and_content(alice):
    entry = services.create_entry(alice, title="  First day ", content="It rained.")
    assert entry.owner == alice
    assert entry.title == "First day"
    assert entry.mood == "" and entry.location == ""
    assert entry.is_private is True and entry.is_favorite is False
    data = services.entry_data(entry)
    assert data["title"] == "First day" and data["content"] == "It rained."
    assert data["mood"] is None and data["tags"] == []


def test_create_entry_with_optional_fields_and_tags(alice):
    tag = services.create_tag(alice, name="travel")
    entry = services.create_entry(
        alice,
        title="Trip",
        content="Lisbon",
        mood="happy",
        location="Lisbon",
        is_favorite=True,
        tag_ids=[tag.pk],
    )
    assert [t.name for t in entry.tags.all()] == ["travel"]
    assert entry.is_favorite and entry.mood == "happy"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"title": "", "content": "x"}, "title"),
        ({"title": "   ", "content": "x"}, "title"),
        ({"title": "x" * 201, "content": "x"}, "title"),
        ({"title": "x", "content": ""}, "content"),
        ({"title": 5, "content": "x"}, "title must be text"),
        ({"title": "x", "content": "y", "is_private": "yes"}, "is_private must be true or false"),
        ({"title": "x", "content": "y", "colour": "red"}, "Unknown field"),
        ({"title": "x", "content": "y", "tag_ids": "1"}, "tag_ids must be a list"),
        ({"title": "x", "content": "y", "tag_ids": [True]}, "whole number"),
    ],
)
def test_create_entry_bad_input_writes_nothing(alice, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        services.create_entry(alice, **kwargs)
    assert not Entry.objects.exists()


def test_create_entry_with_someone_elses_tag_is_not_found_and_writes_nothing(alice, bob):
    bobs = services.create_tag(bob, name="secret")
    with pytest.raises(NotFound, match=f"Tag {bobs.pk} not found"):
        services.create_entry(alice, title="x", content="y", tag_ids=[bobs.pk])
    assert not Entry.objects.exists()


def test_users_only_see_their_own_entries(alice, bob):
    mine = services.create_entry(alice, title="mine", content="a")
    theirs = services.create_entry(bob, title="theirs", content="b")
    assert [e.title for e in services.list_entries(alice)] == ["mine"]
    assert [e.title for e in services.list_entries(bob)] == ["theirs"]
    with pytest.raises(NotFound, match=f"Entry {theirs.pk} not found"):
        services.get_entry(alice, theirs.pk)
    with pytest.raises(NotFound):
        services.update_entry(alice, theirs.pk, title="hacked")
    with pytest.raises(NotFound):
        services.delete_entry(alice, theirs.pk)
    theirs.refresh_from_db()
    assert theirs.title == "theirs"
    assert services.get_entry(alice, mine.pk) == mine


def test_users_only_see_their_own_tags(alice, bob):
    theirs = services.create_tag(bob, name="bob-only")
    assert services.list_tags(alice) == []
    for call in (
        lambda: services.get_tag(alice, theirs.pk),
        lambda: services.update_tag(alice, theirs.pk, name="x"),
        lambda: services.delete_tag(alice, theirs.pk),
    ):
        with pytest.raises(NotFound):
            call()
    assert Tag.objects.get(pk=theirs.pk).name == "bob-only"


def test_add_tag_to_entry_across_users_is_not_found(alice, bob):
    entry = services.create_entry(alice, title="x", content="y")
    bobs_tag = services.create_tag(bob, name="b")
    with pytest.raises(NotFound):
        services.add_tag_to_entry(alice, entry.pk, bobs_tag.pk)
    bobs_entry = services.create_entry(bob, title="b", content="b")
    alices_tag = services.create_tag(alice, name="a")
    with pytest.raises(NotFound):
        services.add_tag_to_entry(alice, bobs_entry.pk, alices_tag.pk)
    assert not Entry.objects.filter(tags__isnull=False).exists()


def test_add_tag_to_entry_is_idempotent(alice):
    entry = services.create_entry(alice, title="x", content="y")
    tag = services.create_tag(alice, name="t")
    services.add_tag_to_entry(alice, entry.pk, tag.pk)
    entry = services.add_tag_to_entry(alice, entry.pk, tag.pk)
    assert [t.pk for t in entry.tags.all()] == [tag.pk]


def test_list_entries_filters_and_limit(alice):
    tag = services.create_tag(alice, name="t")
    first = services.create_entry(alice, title="1", content="c", tag_ids=[tag.pk])
    services.create_entry(alice, title="2", content="c", is_favorite=True)
    services.create_entry(alice, title="3", content="c")
    assert [e.title for e in services.list_entries(alice)] == ["3", "2", "1"]
    assert services.list_entries(alice, tag_id=tag.pk) == [first]
    assert [e.title for e in services.list_entries(alice, is_favorite=True)] == ["2"]
    assert len(services.list_entries(alice, limit=2)) == 2
    for bad in (0, -1, 201, "5", True):
        with pytest.raises(InvalidInput, match="limit"):
            services.list_entries(alice, limit=bad)


def test_update_entry_changes_only_given_fields(alice):
    entry = services.create_entry(alice, title="t", content="c", mood="calm")
    updated = services.update_entry(alice, entry.pk, title="new", mood=None)
    assert updated.title == "new" and updated.content == "c" and updated.mood == ""
    with pytest.raises(InvalidInput, match="Nothing to change"):
        services.update_entry(alice, entry.pk)
    with pytest.raises(InvalidInput, match="title"):
        services.update_entry(alice, entry.pk, title="")
    entry.refresh_from_db()
    assert entry.title == "new"


def test_delete_entry_returns_what_was_deleted(alice):
    tag = services.create_tag(alice, name="t")
    entry = services.create_entry(alice, title="t", content="c", tag_ids=[tag.pk])
    deleted = services.delete_entry(alice, entry.pk)
    assert services.entry_data(deleted)["id"] == entry.pk
    assert services.entry_data(deleted)["tags"][0]["name"] == "t"
    assert not Entry.objects.exists()
    assert Tag.objects.filter(pk=tag.pk).exists()


def test_tag_names_are_unique_per_user_case_insensitively(alice, bob):
    services.create_tag(alice, name="Travel")
    with pytest.raises(InvalidInput, match="already have a tag"):
        services.create_tag(alice, name="travel")
    services.create_tag(bob, name="travel")  # another user may
    other = services.create_tag(alice, name="work")
    with pytest.raises(InvalidInput, match="already have a tag"):
        services.update_tag(alice, other.pk, name="TRAVEL")
    assert Tag.objects.filter(owner=alice).count() == 2


def test_update_and_delete_tag(alice):
    tag = services.create_tag(alice, name="t", description="d")
    assert services.update_tag(alice, tag.pk, description="new").description == "new"
    entry = services.create_entry(alice, title="x", content="y", tag_ids=[tag.pk])
    assert services.delete_tag(alice, tag.pk).pk == tag.pk
    assert not Entry.objects.get(pk=entry.pk).tags.exists()
    with pytest.raises(InvalidInput, match="name"):
        services.create_tag(alice, name="x" * 51)


@pytest.mark.parametrize("bad_id", [0, -3, "abc", None, 1.5, True])
def test_malformed_ids(alice, bad_id):
    with pytest.raises(InvalidInput):
        services.get_entry(alice, bad_id)
    with pytest.raises(InvalidInput):
        services.get_tag(alice, bad_id)


def test_anonymous_user_sees_nothing():
    with pytest.raises(NotFound):
        services.list_entries(AnonymousUser())
    with pytest.raises(NotFound):
        services.list_entries(None)
