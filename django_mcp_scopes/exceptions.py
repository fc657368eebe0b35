"""Exceptions raised by authentication and scope checks; each maps to one challenge response."""

from __future__ import annotations

from django_mcp_scopes.requirements import ScopeRequirement


class MCPScopesError(Exception):
    """Base class."""


class TokenError(MCPScopesError):
    """The request's credentials were missing, malformed or not acceptable (401/400)."""

    error: str | None = "invalid_token"
    status = 401
    # Short machine-readable cause for signals and logs ("expired", "wrong_resource", ...).
    default_reason = "invalid_token"

    def __init__(self, description: str = "The access token is invalid.", *, reason: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason or self.default_reason


class MissingToken(TokenError):
    """No credentials at all: a bare challenge, no ``error``."""

    error = None
    default_reason = "missing_token"

    def __init__(
        self,
        description: str = "This resource needs a bearer access token in the Authorization header.",
        *,
        reason: str | None = None,
    ) -> None:
        super().__init__(description, reason=reason)


class InvalidToken(TokenError):
    error = "invalid_token"


class InvalidRequest(TokenError):
    """Malformed credentials (two Authorization headers, token in the query string, ...)."""

    error = "invalid_request"
    status = 401
    default_reason = "malformed_request"


class InsufficientScope(MCPScopesError):
    """A valid token that lacks what the operation needs (403)."""

    def __init__(
        self,
        requirement: ScopeRequirement,
        description: str | None = None,
        effective: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(description or "insufficient scope")
        self.requirement = requirement
        self.description = description
        self.effective = effective


class AuthServiceUnavailable(MCPScopesError):
    """The database or the introspection endpoint cannot answer: fail closed with 503."""

    def __init__(self, description: str = "Access tokens cannot be checked right now; try again shortly.") -> None:
        super().__init__(description)
        self.description = description
