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

import re
from collections.abc import Iterable

from django.http import HttpRequest, JsonResponse
from oauth2_provider.www_authenticate import _quote

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.registry import scope_registry
from django_mcp_scopes.requirements import ScopeRequirement
from django_mcp_scopes.resources import metadata_url

_PARAM_LIKE = re.compile(r"\b(scope|resource_metadata|error)\s*=", re.IGNORECASE)


def _clean_description(text: str) -> str:
    """A description safe for regex-based header parsers: printable ASCII, no ``name=`` look-alikes."""
    text = "".join(ch if 0x20 <= ord(ch) < 0x7F else " " for ch in text)
    text = _PARAM_LIKE.sub(lambda match: match.group(1) + " ", text)
    return " ".join(text.split())[:300]


def bearer_challenge(params: Iterable[tuple[str, str | None]]) -> str:
    rendered = [f'{key}="{_quote(value)}"' for key, value in params if value is not None]
    return "Bearer " + ", ".join(rendered) if rendered else "Bearer"


def unauthorized_response(
    request: HttpRequest,
    *,
    error: str | None = None,
    description: str | None = None,
    resource_path: str | None = None,
    status: int = 401,
) -> JsonResponse:
    """401 (or 400 for ``invalid_request``) with ``resource_metadata`` and the baseline ``scope``."""
    baseline = " ".join(scope_registry.baseline()) or None
    clean = _clean_description(description) if description else None
    header = bearer_challenge(
        [
            ("error", error),
            ("error_description", clean if error else None),
            ("resource_metadata", metadata_url(request, resource_path)),
            ("scope", baseline),
        ]
    )
    body: dict[str, object] = {
        "error": error or "unauthorized",
        "error_description": clean or "This resource needs a bearer access token in the Authorization header.",
    }
    response = JsonResponse(body, status=status)
    response["WWW-Authenticate"] = header
    response["Cache-Control"] = "no-store"
    return response


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
    needed = requirement.challenge_scopes(effective)
    clean = _clean_description(
        description
        or "The access token does not grant what this operation needs; ask for the scopes named in the challenge."
    )
    header = bearer_challenge(
        [
            ("error", "insufficient_scope"),
            ("scope", " ".join(needed)),
            ("resource_metadata", metadata_url(request, resource_path)),
            ("error_description", clean),
        ]
    )
    body = {
        "error": "insufficient_scope",
        "error_description": clean,
        "required_scopes": needed,
        "alternatives": requirement.describe(),
    }
    response = JsonResponse(body, status=403)
    response["WWW-Authenticate"] = header
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
