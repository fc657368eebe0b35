"""The journal's service layer: every tool, resource and prompt goes through these functions.

Each function takes the acting user first and only ever reads or changes that user's data:
every query filters by owner, so another user's entry or tag is simply "not found" (never
"forbidden", which would confirm that it exists). Writes are atomic; bad input raises
``InvalidInput`` with a message meant for the person or model that sent it, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from example_project.journal.models import Entry, Tag

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 200

ENTRY_FIELDS = ("title", "content", "mood", "location", "is_private", "is_favorite")
TAG_FIELDS = ("name", "description")


class JournalError(Exception):
    """Base class: the message is safe to show to the caller."""


class NotFound(JournalError):
    pass


class InvalidInput(JournalError):
    pass


# helpers ----------------------------------------------------------------------------------------
def _owner_id(user: Any) -> int:
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        raise NotFound("No signed-in user.")
    return int(user.pk)


def _as_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        raise InvalidInput(f"{what} must be a whole number; got {value!r}.")
    if value < 1:
        raise InvalidInput(f"{what} must be a positive number; got {value}.")
    return value


def _limit(value: int | None) -> int:
    if value is None:
        return DEFAULT_LIST_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIST_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}; got {value!r}.")
    return value


def _clean(instance: Entry | Tag, exclude: Iterable[str] = ()) -> None:
    """Model validation, reported as one readable sentence."""
    try:
        instance.full_clean(exclude=list(exclude), validate_constraints=False)
    except ValidationError as exc:
        parts = []
        for field, messages in exc.message_dict.items():
            label = "" if field == "__all__" else f"{field}: "
            parts.append(label + " ".join(messages))
        raise InvalidInput("; ".join(parts)) from exc


def _apply(instance: Entry | Tag, allowed: Iterable[str], changes: dict[str, Any]) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(allowed)}.")
    for name, value in changes.items():
        field = instance._meta.get_field(name)
        if field.get_internal_type() == "BooleanField":
            if not isinstance(value, bool):
                raise InvalidInput(f"{name} must be true or false; got {value!r}.")
        elif value is None:
            value = ""  # optional text fields: null means "clear it"
        elif not isinstance(value, str):
            raise InvalidInput(f"{name} must be text; got {type(value).__name__}.")
        else:
            value = value.strip()
        setattr(instance, name, value)


def _entries(user: Any):  # type: ignore[no-untyped-def]
    return Entry.objects.filter(owner_id=_owner_id(user))


def _tags(user: Any):  # type: ignore[no-untyped-def]
    return Tag.objects.filter(owner_id=_owner_id(user))


# entries ----------------------------------------------------------------------------------------
def list_entries(
    user: Any, *, tag_id: int | None = None, is_favorite: bool | None = None, limit: int | None = None
) -> list[Entry]:
    """The user's entries, newest first, optionally only those with a tag or marked favourite."""
    queryset = _entries(user).prefetch_related("tags")
    if tag_id is not None:
        queryset = queryset.filter(tags__id=_as_id(tag_id, "tag_id"))
    if is_favorite is not None:
        if not isinstance(is_favorite, bool):
            raise InvalidInput(f"is_favorite must be true or false; got {is_favorite!r}.")
        queryset = queryset.filter(is_favorite=is_favorite)
    return list(queryset.distinct()[: _limit(limit)])


def get_entry(user: Any, entry_id: int) -> Entry:
    entry_id = _as_id(entry_id, "entry_id")
    entry = _entries(user).prefetch_related("tags").filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(f"Entry {entry_id} not found.")
    return entry


def create_entry(
    user: Any,
    *,
    title: str,
    content: str,
    tag_ids: Iterable[int] = (),
    **optional: Any,
) -> Entry:
    """Create an entry; only ``title`` and ``content`` are required."""
    entry = Entry(owner_id=_owner_id(user))
    _apply(entry, ENTRY_FIELDS, {"title": title, "content": content, **optional})
    _clean(entry, exclude=["owner"])
    tags = _owned_tags(user, tag_ids)
    with transaction.atomic():
        entry.save()
        if tags:
            entry.tags.add(*tags)
    return get_entry(user, entry.pk)


def update_entry(user: Any, entry_id: int, **changes: Any) -> Entry:
    """Change the given fields of an entry; fields not given stay as they are."""
    entry = get_entry(user, entry_id)
    if not changes:
        raise InvalidInput(f"Nothing to change: give at least one of {', '.join(ENTRY_FIELDS)}.")
    _apply(entry, ENTRY_FIELDS, changes)
    _clean(entry, exclude=["owner"])
    entry.save(update_fields=[*changes, "updated_at"])
    return get_entry(user, entry.pk)


def delete_entry(user: Any, entry_id: int) -> Entry:
    """Delete an entry; returns what was deleted (its id is kept for the reply)."""
    entry = get_entry(user, entry_id)
    deleted_id = entry.pk
    tags = list(entry.tags.all())
    entry.delete()
    entry.pk = deleted_id
    entry._deleted_tags = tags  # type: ignore[attr-defined]
    return entry


# tags -------------------------------------------------------------------------------------------
def _owned_tags(user: Any, tag_ids: Iterable[int]) -> list[Tag]:
    if isinstance(tag_ids, (str, bytes)) or not isinstance(tag_ids, Iterable):
        raise InvalidInput("tag_ids must be a list of tag ids.")
    ids = {_as_id(tag_id, "tag_id") for tag_id in tag_ids}
    if not ids:
        return []
    tags = list(_tags(user).filter(pk__in=ids))
    missing = sorted(ids - {tag.pk for tag in tags})
    if missing:
        raise NotFound(f"Tag {missing[0]} not found.")
    return tags


def list_tags(user: Any, *, limit: int | None = None) -> list[Tag]:
    return list(_tags(user)[: _limit(limit)])


def get_tag(user: Any, tag_id: int) -> Tag:
    tag_id = _as_id(tag_id, "tag_id")
    tag = _tags(user).filter(pk=tag_id).first()
    if tag is None:
        raise NotFound(f"Tag {tag_id} not found.")
    return tag


def _save_tag(user: Any, tag: Tag) -> Tag:
    _clean(tag, exclude=["owner"])
    duplicate = _tags(user).filter(name__iexact=tag.name).exclude(pk=tag.pk).exists()
    if duplicate:
        raise InvalidInput(f"You already have a tag named {tag.name!r}.")
    try:
        with transaction.atomic():
            tag.save()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise InvalidInput(f"You already have a tag named {tag.name!r}.") from exc
    return tag


def create_tag(user: Any, *, name: str, description: str | None = "") -> Tag:
    tag = Tag(owner_id=_owner_id(user))
    _apply(tag, TAG_FIELDS, {"name": name, "description": description})
    return _save_tag(user, tag)


def update_tag(user: Any, tag_id: int, **changes: Any) -> Tag:
    tag = get_tag(user, tag_id)
    if not changes:
        raise InvalidInput(f"Nothing to change: give at least one of {', '.join(TAG_FIELDS)}.")
    _apply(tag, TAG_FIELDS, changes)
    return _save_tag(user, tag)


def delete_tag(user: Any, tag_id: int) -> Tag:
    """Delete a tag (entries keep existing, without it); returns what was deleted."""
    tag = get_tag(user, tag_id)
    deleted_id = tag.pk
    tag.delete()
    tag.pk = deleted_id
    return tag


def add_tag_to_entry(user: Any, entry_id: int, tag_id: int) -> Entry:
    """Tag one of the user's entries with one of the user's tags (idempotent)."""
    entry = get_entry(user, entry_id)
    tag = get_tag(user, tag_id)
    entry.tags.add(tag)
    return get_entry(user, entry.pk)


# plain data for tools and resources --------------------------------------------------------------
def tag_data(tag: Tag) -> dict[str, Any]:
    return {"id": tag.pk, "name": tag.name, "description": tag.description}


def entry_data(entry: Entry, *, with_content: bool = True) -> dict[str, Any]:
    tags = getattr(entry, "_deleted_tags", None)
    if tags is None:
        tags = list(entry.tags.all())
    data: dict[str, Any] = {
        "id": entry.pk,
        "title": entry.title,
        "mood": entry.mood or None,
        "location": entry.location or None,
        "is_private": entry.is_private,
        "is_favorite": entry.is_favorite,
        "tags": [tag_data(tag) for tag in tags],
        "created_at": entry.created_at.isoformat() if entry.created_at else None,
        "updated_at": entry.updated_at.isoformat() if entry.updated_at else None,
    }
    if with_content:
        data["content"] = entry.content
    return data
