"""What a listing (``tools/list``, ``prompts/list``, ``resources/list``, ``resources/templates/list``) shows.

``MCP_SCOPES["LISTING_POLICY"]`` decides, for each operation that declares scopes:

- ``"obtainable"`` (default): listed when the token may use it now, or when its client could
  obtain what it needs by step-up: every scope it needs is active, and the authorization server
  may grant it to this client. Clients and models then see the operations they could unlock, call
  one, get the 403 ``insufficient_scope`` challenge and step up; what no step-up can reach stays
  hidden.
- ``"strict"``: only what the token may use now (least disclosure, no step-up from a listing).
- ``"all"``: everything the server has.

Every listed operation carries the scopes it needs in ``_meta`` (``REQUIRED_SCOPES_META_KEY``), and
a listing that depends on the token is marked ``cacheScope: "private"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_mcp_scopes.registry import scope_registry

if TYPE_CHECKING:
    from django.http import HttpRequest

    from django_mcp_scopes.principal import Principal


def obtainable_scopes(request: HttpRequest, principal: Principal) -> frozenset[str]:
    """The effective scopes ``principal``'s client could hold after step-up (hierarchy-aware, active only).

    What the token grants, plus what the authorization server may grant this client:
    django-oauth-toolkit's scopes backend (``SCOPES_BACKEND_CLASS``)
    ``get_available_scopes(application=..., request=...)`` for its own tokens, with ``request.user``
    the token's user; for a token from an external authorization server (introspected, no local
    application), the scopes this server advertises (``scopes_supported``), the only ones it can
    tell a client to ask for. May query the database: call it where that is allowed.
    """
    application = principal.application
    available: list[str]
    if application is None:
        available = scope_registry.baseline()
    else:
        from oauth2_provider.scopes import get_scopes_backend

        available = list(get_scopes_backend().get_available_scopes(application=application, request=request))
    return scope_registry.expand([*principal.granted_scopes, *available])


def listing_scopes(policy: str, principal: Principal | None) -> frozenset[str] | None:
    """The effective scopes an operation's requirement is checked against in a listing; ``None``: list everything.

    Under ``"obtainable"``, a principal whose obtainable scopes were not computed (served other
    than through the view) is treated as ``"strict"``: a listing never shows more than was checked.
    """
    if policy == "all":
        return None
    if principal is None:
        return frozenset()
    if policy == "obtainable":
        obtainable: Any = getattr(principal, "obtainable_scopes", None)
        if obtainable is not None:
            return frozenset(obtainable) | principal.effective_scopes
    return principal.effective_scopes
