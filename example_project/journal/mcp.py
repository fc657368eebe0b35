"""The journal's MCP server: tools, resources and a prompt, each with the scopes it needs.

Every operation goes through ``example_project.journal.services`` with the user the access token
belongs to, so a token only ever sees its own user's journal. Tools are plain functions: the SDK
runs them in a worker thread, where the Django ORM works under WSGI and ASGI alike.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import ToolAnnotations
from mcp_types import INVALID_PARAMS
from pydantic import BaseModel, Field

from django_mcp_scopes.mcp import get_principal, requires_scopes
from example_project.journal import services
from example_project.journal.models import LOCATION_MAX_LENGTH, MOOD_MAX_LENGTH, TAG_NAME_MAX_LENGTH, TITLE_MAX_LENGTH
from example_project.journal.scopes import (
    ENTRIES_READ,
    ENTRIES_WRITE,
    TAGS_READ,
    TAGS_WRITE,
    USER_READ,
    declare_journal_scopes,
)

declare_journal_scopes()

server = MCPServer(
    "EpicMe journal",
    instructions=(
        "A personal journal. Read entries and tags with the read tools; writing asks the user for more "
        "access (entries:write, tags:write) the first time."
    ),
    subscriptions=False,
)


# output shapes ---------------------------------------------------------------------------------------
class Tag(BaseModel):
    id: int
    name: str
    description: str


class EntrySummary(BaseModel):
    id: int
    title: str
    mood: str | None
    location: str | None
    is_private: bool
    is_favorite: bool
    tags: list[Tag]
    created_at: str | None
    updated_at: str | None


class Entry(EntrySummary):
    content: str


class EntryList(BaseModel):
    entries: list[EntrySummary]
    count: int


class TagList(BaseModel):
    tags: list[Tag]
    count: int


class Deleted(BaseModel):
    id: int
    deleted: bool = True
    message: str


class Me(BaseModel):
    id: int
    username: str
    scopes: list[str] = Field(description="The scopes this connection holds (with what they imply).")


# helpers ------------------------------------------------------------------------------------------------
def _user() -> Any:
    principal = get_principal()
    if principal is None or principal.user is None or not principal.user.is_authenticated:
        raise ToolError("This tool needs a signed-in user.")
    return principal.user


def _entry(entry: Any) -> Entry:
    return Entry.model_validate(services.entry_data(entry))


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(_user(), *args, **kwargs)
    except services.JournalError as exc:
        raise ToolError(str(exc)) from exc


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


EntryId = Annotated[int, Field(ge=1, description="The entry's id.")]
TagId = Annotated[int, Field(ge=1, description="The tag's id.")]
Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX_LENGTH, description="A short title.")]
Mood = Annotated[str | None, Field(max_length=MOOD_MAX_LENGTH, description="How the author felt, e.g. happy.")]
Location = Annotated[str | None, Field(max_length=LOCATION_MAX_LENGTH, description="Where it was written.")]
TagName = Annotated[str, Field(min_length=1, max_length=TAG_NAME_MAX_LENGTH, description="The tag's name.")]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False)


# tools --------------------------------------------------------------------------------------------------
@server.tool(title="Who am I", annotations=READ_ONLY)
@requires_scopes(USER_READ)
def whoami() -> Me:
    """The signed-in user of this connection and the scopes it holds."""
    principal = get_principal()
    user = _user()
    assert principal is not None
    # The id and username come with the validated token: no query. Any other field of the user
    # (user.email, user.get_full_name()) loads it, one query.
    return Me(id=user.pk, username=user.get_username(), scopes=sorted(principal.effective_scopes))


@server.tool(title="List journal entries", annotations=READ_ONLY)
@requires_scopes(ENTRIES_READ)
def list_entries(
    tag_id: Annotated[int | None, Field(ge=1, description="Only entries with this tag.")] = None,
    is_favorite: Annotated[bool | None, Field(description="Only favourites (true) or only others (false).")] = None,
    limit: Annotated[int, Field(ge=1, le=services.MAX_LIST_LIMIT, description="At most this many.")] = 50,
) -> EntryList:
    """Your journal entries, newest first (without their content; use get_entry for that)."""
    entries = _call(services.list_entries, tag_id=tag_id, is_favorite=is_favorite, limit=limit)
    summaries = [EntrySummary.model_validate(services.entry_data(e, with_content=False)) for e in entries]
    return EntryList(entries=summaries, count=len(summaries))


@server.tool(title="Read a journal entry", annotations=READ_ONLY)
@requires_scopes(ENTRIES_READ)
def get_entry(entry_id: EntryId) -> Entry:
    """One of your journal entries, with its content and tags."""
    return _entry(_call(services.get_entry, entry_id))


@server.tool(title="Write a journal entry", annotations=ToolAnnotations(open_world_hint=False))
@requires_scopes(ENTRIES_WRITE)
def create_entry(
    title: Title,
    content: Annotated[str, Field(min_length=1, description="The text of the entry.")],
    mood: Mood = None,
    location: Location = None,
    is_private: Annotated[bool, Field(description="Only you can see it (default).")] = True,
    is_favorite: Annotated[bool, Field(description="Mark it as a favourite.")] = False,
    tag_ids: Annotated[list[int] | None, Field(description="Ids of your tags to put on it.")] = None,
) -> Entry:
    """Write a new journal entry. Only the title and the content are needed."""
    entry = _call(
        services.create_entry,
        title=title,
        content=content,
        tag_ids=tag_ids or (),
        **_given(mood=mood, location=location),
        is_private=is_private,
        is_favorite=is_favorite,
    )
    return _entry(entry)


@server.tool(title="Change a journal entry", annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=False))
@requires_scopes(ENTRIES_WRITE)
def update_entry(
    entry_id: EntryId,
    title: Title | None = None,
    content: Annotated[str | None, Field(min_length=1, description="The new text.")] = None,
    mood: Mood = None,
    location: Location = None,
    is_private: bool | None = None,
    is_favorite: bool | None = None,
) -> Entry:
    """Change the given fields of one of your entries; fields you leave out stay as they are."""
    changes = _given(
        title=title, content=content, mood=mood, location=location, is_private=is_private, is_favorite=is_favorite
    )
    return _entry(_call(services.update_entry, entry_id, **changes))


@server.tool(title="Delete a journal entry", annotations=DESTRUCTIVE)
@requires_scopes(ENTRIES_WRITE)
def delete_entry(entry_id: EntryId) -> Deleted:
    """Delete one of your journal entries for good."""
    entry = _call(services.delete_entry, entry_id)
    return Deleted(id=entry.pk, message=f"Deleted the entry {entry.title!r}.")


@server.tool(title="List tags", annotations=READ_ONLY)
@requires_scopes(TAGS_READ)
def list_tags(
    limit: Annotated[int, Field(ge=1, le=services.MAX_LIST_LIMIT, description="At most this many.")] = 50,
) -> TagList:
    """The tags you use in your journal, by name."""
    tags = [Tag.model_validate(services.tag_data(tag)) for tag in _call(services.list_tags, limit=limit)]
    return TagList(tags=tags, count=len(tags))


@server.tool(title="Read a tag", annotations=READ_ONLY)
@requires_scopes(TAGS_READ)
def get_tag(tag_id: TagId) -> Tag:
    """One of your tags."""
    return Tag.model_validate(services.tag_data(_call(services.get_tag, tag_id)))


@server.tool(title="Create a tag", annotations=ToolAnnotations(open_world_hint=False))
@requires_scopes(TAGS_WRITE)
def create_tag(
    name: TagName,
    description: Annotated[str | None, Field(description="What the tag is for.")] = None,
) -> Tag:
    """Create a tag (names are unique per user, ignoring case)."""
    return Tag.model_validate(services.tag_data(_call(services.create_tag, name=name, description=description)))


@server.tool(title="Change a tag", annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=False))
@requires_scopes(TAGS_WRITE)
def update_tag(tag_id: TagId, name: TagName | None = None, description: str | None = None) -> Tag:
    """Rename a tag or change its description."""
    tag = _call(services.update_tag, tag_id, **_given(name=name, description=description))
    return Tag.model_validate(services.tag_data(tag))


@server.tool(title="Delete a tag", annotations=DESTRUCTIVE)
@requires_scopes(TAGS_WRITE)
def delete_tag(tag_id: TagId) -> Deleted:
    """Delete one of your tags; the entries it was on stay, without it."""
    tag = _call(services.delete_tag, tag_id)
    return Deleted(id=tag.pk, message=f"Deleted the tag {tag.name!r}.")


@server.tool(title="Tag an entry", annotations=ToolAnnotations(idempotent_hint=True, open_world_hint=False))
@requires_scopes(TAGS_WRITE, ENTRIES_WRITE)
def add_tag_to_entry(entry_id: EntryId, tag_id: TagId) -> Entry:
    """Put one of your tags on one of your entries (nothing changes if it is already there)."""
    return _entry(_call(services.add_tag_to_entry, entry_id, tag_id))


# resources ----------------------------------------------------------------------------------------------
def _resource(function: Any, raw_id: str) -> Any:
    # ASCII digits only: int() reads any Unicode digit, so U+0661 (ARABIC-INDIC DIGIT ONE) would name entry 1.
    if not (raw_id.isascii() and raw_id.isdigit()):
        raise ResourceNotFoundError(f"{raw_id!r} is not an id.")
    try:
        return function(_user(), int(raw_id))
    except services.NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except services.JournalError as exc:
        raise ResourceError(str(exc)) from exc


@server.resource("journal://entries/{entry_id}", name="entry", title="Journal entry", mime_type="application/json")
@requires_scopes(ENTRIES_READ)
def entry_resource(entry_id: str) -> str:
    """A journal entry as JSON."""
    return json.dumps(services.entry_data(_resource(services.get_entry, entry_id)))


@server.resource("journal://tags/{tag_id}", name="tag", title="Tag", mime_type="application/json")
@requires_scopes(TAGS_READ)
def tag_resource(tag_id: str) -> str:
    """A tag as JSON."""
    return json.dumps(services.tag_data(_resource(services.get_tag, tag_id)))


# prompts ------------------------------------------------------------------------------------------------
@server.prompt(title="Suggest tags for an entry")
@requires_scopes(ENTRIES_READ, TAGS_READ)
def suggest_tags(entry_id: Annotated[str, Field(description="The id of the entry to tag.")]) -> str:
    """Ask the model to suggest tags for one of your entries, reusing your existing tags where they fit."""
    try:
        entry = _resource(services.get_entry, entry_id.strip())
    except ResourceNotFoundError as exc:
        raise MCPError(code=INVALID_PARAMS, message=f"entry_id: {exc}") from None
    tags = services.list_tags(_user(), limit=services.MAX_LIST_LIMIT)
    existing = "\n".join(f"- {tag.name} (id {tag.pk}): {tag.description}" for tag in tags) or "(none yet)"
    current = ", ".join(tag.name for tag in entry.tags.all()) or "(none)"
    return (
        "Suggest up to three tags for this journal entry. Prefer my existing tags; propose a new one only "
        "when none fits. Then, if I agree, apply them with add_tag_to_entry (creating new tags with "
        "create_tag first).\n\n"
        f"Entry {entry.pk}: {entry.title}\n{entry.content}\n\nIts tags now: {current}\n\n"
        f"My tags:\n{existing}"
    )
