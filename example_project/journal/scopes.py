"""The journal's scopes, declared in code next to the tools that need them (``setup_demo`` creates them).

The baseline (advertised: published in ``scopes_supported`` and asked for in the 401 challenge) is
read-only; the write scopes are obtained by step-up when a tool needs them.
"""

from django_mcp_scopes.declarations import declare_scope

USER_READ = "user:read"
ENTRIES_READ = "entries:read"
ENTRIES_WRITE = "entries:write"
TAGS_READ = "tags:read"
TAGS_WRITE = "tags:write"

SOURCE = "example_project.journal"

JOURNAL_SCOPES = (USER_READ, ENTRIES_READ, ENTRIES_WRITE, TAGS_READ, TAGS_WRITE)


def declare_journal_scopes() -> None:
    """Declare the journal's scopes (idempotent; called by ``setup_demo`` and the MCP server module)."""
    declare_scope(USER_READ, "See your username and account details", advertised=True, source=SOURCE)
    declare_scope(ENTRIES_READ, "Read your journal entries", advertised=True, source=SOURCE)
    declare_scope(
        ENTRIES_WRITE, "Create, change and delete your journal entries", implies=[ENTRIES_READ], source=SOURCE
    )
    declare_scope(TAGS_READ, "See the tags you use in your journal", advertised=True, source=SOURCE)
    declare_scope(
        TAGS_WRITE,
        "Create, change and delete your tags and tag your entries",
        implies=[TAGS_READ],
        source=SOURCE,
    )
