"""The answers clients act on: RFC 6750 section 3 and RFC 9728 section 5.1 Bearer challenges.

- 401, no token: ``Bearer resource_metadata="...", scope="<baseline>"``;
- 401, bad token: adds ``error="invalid_token", error_description="..."``;
- 401/400, malformed request: ``error="invalid_request"``;
- 403: ``Bearer error="insufficient_scope", scope="<every scope the operation needs>",
  resource_metadata="...", error_description="..."``;
- 503 when the token cannot be checked (database or introspection down): ``Retry-After``.

Every response carries a JSON body with the same ``error`` / ``error_description`` (and the
required scopes on 403). Values are quoted with django-oauth-toolkit's quoting (backslash and
quote escaped, CR/LF removed); descriptions never contain ``scope=`` because clients parse the
header with regular expressions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from oauth2_provider.www_authenticate import _quote

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.registry import scope_registry
from django_mcp_scopes.requirements import ScopeRequirement
from django_mcp_scopes.resources import metadata_url


def _clean_description(text: str) -> str:
    """A description safe for regex-based header parsers.

    Printable ASCII only; no double quote or backslash (a regex such as ``"([^"]+)"`` stops at
    the first quote, escaped or not) and no ``=`` (so nothing in it reads as ``scope=...``).
    """
    text = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\=' else " " for ch in text)
    return " ".join(text.split())[:300]


def bearer_challenge(params: Iterable[tuple[str, str | None]]) -> str:
    rendered = [f'{key}="{_quote(_header_safe(value))}"' for key, value in params if value is not None]
    return "Bearer " + ", ".join(rendered) if rendered else "Bearer"


def _header_safe(value: str) -> str:
    """Only what an RFC 9110 quoted-string holds (HTAB, SP, visible ASCII); anything else (a control
    character, a non-ASCII path in a metadata URL) percent-encoded as UTF-8, as in a URI."""
    return "".join(ch if ch == "\t" or " " <= ch <= "~" else quote(ch, safe="") for ch in str(value))


def _baseline() -> str | None:
    try:
        return " ".join(scope_registry.baseline()) or None
    except DatabaseError:
        # The scope table cannot be read: still answer 401, without a scope hint.
        return None


_MISSING_TOKEN_DESCRIPTION = "This resource needs a bearer access token in the Authorization header."
_INSUFFICIENT_DESCRIPTION = (
    "The access token does not grant what this operation needs; ask for the scopes named in the challenge."
)


def unauthorized_challenge(
    request: HttpRequest,
    *,
    error: str | None = None,
    description: str | None = None,
    resource_path: str | None = None,
) -> str:
    """The ``WWW-Authenticate`` value of a 401: ``resource_metadata``, baseline ``scope``, error."""
    clean = _clean_description(description) if description and error else None
    return bearer_challenge(
        [
            ("error", error),
            ("error_description", clean),
            ("resource_metadata", metadata_url(request, resource_path)),
            ("scope", _baseline()),
        ]
    )


def unauthorized_body(error: str | None = None, description: str | None = None) -> dict[str, Any]:
    return {
        "error": error or "unauthorized",
        "error_description": (_clean_description(description) if description else "") or _MISSING_TOKEN_DESCRIPTION,
    }


def unauthorized_response(
    request: HttpRequest,
    *,
    error: str | None = None,
    description: str | None = None,
    resource_path: str | None = None,
    status: int = 401,
) -> JsonResponse:
    """401 with ``resource_metadata`` and the baseline ``scope``."""
    response = JsonResponse(unauthorized_body(error, description), status=status)
    response["WWW-Authenticate"] = unauthorized_challenge(
        request, error=error, description=description, resource_path=resource_path
    )
    response["Cache-Control"] = "no-store"
    return response


def _insufficient_description(scopes: Iterable[str], description: str | None) -> str:
    """The caller's description, else the default; says so when a needed scope is disabled.

    A client that steps up for a disabled scope is refused by the authorization server and would
    try again and again: the description tells the person behind it why.
    """
    if description:
        return _clean_description(description)
    try:
        disabled = sorted(name for name in scopes if not scope_registry.is_active(name))
    except DatabaseError:
        disabled = []
    if disabled:
        return _clean_description(
            f"This operation needs {', '.join(disabled)}, which this server has disabled: no token can "
            "grant it until an administrator enables it again."
        )
    return _INSUFFICIENT_DESCRIPTION


def insufficient_scope_challenge(
    request: HttpRequest,
    requirement: ScopeRequirement,
    *,
    effective: Iterable[str] = (),
    description: str | None = None,
    resource_path: str | None = None,
) -> str:
    """The ``WWW-Authenticate`` value of a 403 naming every scope the operation needs."""
    scopes = requirement.challenge_scopes(frozenset(effective))
    return bearer_challenge(
        [
            ("error", "insufficient_scope"),
            ("scope", " ".join(scopes)),
            ("resource_metadata", metadata_url(request, resource_path)),
            ("error_description", _insufficient_description(scopes, description)),
        ]
    )


def insufficient_scope_body(
    requirement: ScopeRequirement, *, effective: Iterable[str] = (), description: str | None = None
) -> dict[str, Any]:
    scopes = requirement.challenge_scopes(frozenset(effective))
    return {
        "error": "insufficient_scope",
        "error_description": _insufficient_description(scopes, description),
        "required_scopes": scopes,
        "alternatives": requirement.describe(),
    }


def insufficient_scope_response(
    request: HttpRequest,
    requirement: ScopeRequirement,
    *,
    effective: Iterable[str] = (),
    description: str | None = None,
    resource_path: str | None = None,
) -> JsonResponse:
    """403 ``insufficient_scope`` naming every scope the operation needs, in one challenge."""
    effective = frozenset(effective)
    response = JsonResponse(
        insufficient_scope_body(requirement, effective=effective, description=description), status=403
    )
    response["WWW-Authenticate"] = insufficient_scope_challenge(
        request, requirement, effective=effective, description=description, resource_path=resource_path
    )
    response["Cache-Control"] = "no-store"
    return response


def service_unavailable_response(request: HttpRequest, description: str | None = None) -> JsonResponse:
    """503 with ``Retry-After`` when tokens cannot be checked right now; fails closed."""
    response = JsonResponse(
        {
            "error": "temporarily_unavailable",
            "error_description": description or "Access tokens cannot be checked right now; try again shortly.",
        },
        status=503,
    )
    response["Retry-After"] = str(mcp_scopes_settings.SERVICE_UNAVAILABLE_RETRY_AFTER)
    response["Cache-Control"] = "no-store"
    return response
