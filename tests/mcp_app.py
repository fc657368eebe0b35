"""The MCP server the endpoint tests serve (in-process and in live gunicorn / uvicorn processes).

``StaticTokenAuthentication`` stands in for the django-oauth-toolkit-backed authentication that
the enforcement branch provides: it maps a few fixed bearer tokens to principals, so these tests
exercise the endpoint, not token validation.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AnonymousUser
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from django_mcp_scopes import declarations
from django_mcp_scopes.mcp import ANY_VALID_TOKEN, get_principal, open_to_any_token, requires_scopes
from django_mcp_scopes.mcp.operations import LISTING_METHODS
from django_mcp_scopes.models import Scope
from django_mcp_scopes.principal import Principal

SCOPES = {
    # name: (advertised, implies)
    "entries:read": (True, []),
    "entries:write": (True, ["entries:read"]),
    "entries:publish": (False, []),
    "admin": (True, []),
}

TOKENS = {
    "t-none": [],
    "t-read": ["entries:read"],
    "t-write": ["entries:write"],
    "t-publish": ["entries:write", "entries:publish"],
    "t-admin": ["admin"],
}


def ensure_scopes() -> None:
    """Create the scopes these tests use (idempotent)."""
    rows = {}
    for name, (advertised, _) in SCOPES.items():
        rows[name], _ = Scope.objects.update_or_create(
            name=name, defaults={"description": name, "is_active": True, "is_advertised": advertised}
        )
    for name, (_, implies) in SCOPES.items():
        rows[name].implies.set([rows[child] for child in implies])


def remove_scopes() -> None:
    Scope.objects.filter(name__in=SCOPES).delete()


class StaticTokenAuthentication(BaseAuthentication):
    """Test stand-in: ``Authorization: Bearer <one of TOKENS>``."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Bearer "):
            return None
        token = header[len("Bearer ") :]
        if token not in TOKENS:
            raise AuthenticationFailed("The access token is unknown.")
        principal = Principal(
            user=AnonymousUser(),
            granted_scopes=frozenset(TOKENS[token]),
            client_id="test-client",
            token_id=hashlib.sha256(token.encode()).hexdigest()[:16],
        )
        return principal.user, principal


_declared_before = set(declarations.declared_scopes())

LISTINGS_OPEN = {method: ANY_VALID_TOKEN for method in LISTING_METHODS}
"""``method_scopes`` of an endpoint whose listings any valid token may ask for (filtered by scope)."""

server = MCPServer("test-journal", subscriptions=False)


@server.tool()
@open_to_any_token
def echo(text: str) -> str:
    """Any valid token may call this."""
    return text


@server.tool()
@requires_scopes("entries:read")
def count_scopes(prefix: str = "entries") -> int:
    """A sync tool that queries the database (runs in a worker thread)."""
    return Scope.objects.filter(name__startswith=prefix).count()


@server.tool()
@requires_scopes("entries:read")
async def count_scopes_async(prefix: str = "entries") -> int:
    """An async tool that queries the database through Django's async ORM."""
    return await Scope.objects.filter(name__startswith=prefix).acount()


@server.tool()
@requires_scopes(
    "entries:write",
    when=lambda arguments, principal: "entries:publish" if arguments.get("public") else None,
    declares=["entries:publish"],
)
def create_entry(title: str, public: bool = False) -> str:
    return f"created {title}{' (public)' if public else ''}"


@server.tool()
@requires_scopes(any_of=[["admin"], ["entries:write", "entries:publish"]])
def moderate(entry: int) -> str:
    return f"moderated {entry}"


@server.tool()
@open_to_any_token
def whoami() -> dict:
    """What tool code sees of the caller, through both ways to ask."""
    principal = get_principal()
    token = get_access_token()
    return {
        "client_id": principal.client_id if principal else None,
        "scopes": sorted(principal.effective_scopes) if principal else None,
        "sdk_client_id": token.client_id if token else None,
        "sdk_scopes": token.scopes if token else None,
    }


@server.resource("notes://public")
@open_to_any_token
def public_note() -> str:
    return "public note"


@server.resource("notes://private/{note_id}")
@requires_scopes("entries:read")
def private_note(note_id: str) -> str:
    return f"private note {note_id}"


@server.prompt()
@requires_scopes("entries:read")
def summarize(topic: str) -> str:
    return f"Summarize the entries about {topic}."


@server.prompt()
@open_to_any_token
def greet(name: str) -> str:
    return f"Hello {name}."


# @requires_scopes declared these scopes, as in any app. The declaration registry is global and
# other tests expect it empty: forget what importing this module added.
for _name in set(declarations.declared_scopes()) - _declared_before:
    declarations._forget(_name)
