"""``oauth2_provider_settings()``: a django-oauth-toolkit configuration for an MCP authorization server.

    # settings.py
    from django_mcp_scopes.oauth.provider import oauth2_provider_settings

    OAUTH2_PROVIDER = oauth2_provider_settings(issuer="https://mcp.example.com", ACCESS_TOKEN_EXPIRE_SECONDS=600)

Every RFC 9700 gate of django-oauth-toolkit is on (PKCE S256 only, no implicit or password grant,
``iss`` in authorization responses, tokens hashed at rest and never taken from the query string,
refresh rotation with replay detection, exact redirect URIs), anonymous registration of public
clients and Client ID Metadata Documents are on, and the validator binds every token to a resource
of this project. Keyword arguments override any key. Importing this module loads no Django app, so
settings.py can use it.
"""

from __future__ import annotations

from typing import Any

VALIDATOR = "django_mcp_scopes.oauth.validators.MCPOAuth2Validator"
CIMD_FETCHER = "django_mcp_scopes.oauth.cimd.PolicyCheckedFetcher"


def oauth2_provider_settings(
    *, issuer: str | None = None, loopback_redirects: bool = True, **overrides: Any
) -> dict[str, Any]:
    """The ``OAUTH2_PROVIDER`` dict; ``overrides`` replace keys one by one.

    ``issuer``: the public origin (``MCP_SCOPES["BASE_URL"]``), used verbatim as the issuer in the
    metadata, in ``iss`` and in the protected-resource metadata. ``None``: derived from each
    request (fine in development, and behind a proxy that Django trusts).

    ``loopback_redirects``: allow ``http`` redirect URIs, which the registration policy of this
    package limits to loopback hosts (RFC 8252 native apps: Claude Code, the MCP Inspector, the
    Python SDK). django-oauth-toolkit's deploy check ``oauth2_provider.W008`` flags ``http`` in
    ``ALLOWED_REDIRECT_URI_SCHEMES`` whatever the host; ``False`` allows https redirect URIs only.
    """
    config: dict[str, Any] = {
        "SCOPES_BACKEND_CLASS": "django_mcp_scopes.backends.DatabaseScopes",
        "OAUTH2_VALIDATOR_CLASS": VALIDATOR,
        "OIDC_ISS_ENDPOINT": (issuer or "").rstrip("/"),
        # Authorization code with PKCE S256 only; refresh tokens; nothing else.
        "PKCE_REQUIRED": True,
        "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
        "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
        "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
        "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
        "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
        "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["none"],
        "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
        "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
        "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
        # Refresh rotation; a replayed refresh token revokes its whole family.
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_REUSE_PROTECTION": True,
        "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
        "ACCESS_TOKEN_EXPIRE_SECONDS": 600,
        "REFRESH_TOKEN_EXPIRE_SECONDS": 30 * 24 * 3600,
        "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
        # Consent on every authorization: anonymously registered clients are unverified.
        "REQUEST_APPROVAL_PROMPT": "force",
        # Exact redirect URIs, any port on loopback (RFC 8252 section 7.3).
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if loopback_redirects else ["https"],
        "ALLOW_LOCALHOST_LOOPBACK": loopback_redirects,
        "ALLOW_URI_WILDCARDS": False,
        "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
        "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": False,
        # A token is accepted only at the exact resource it was issued for.
        "RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR": "django_mcp_scopes.authentication.exact_resource_validator",
        # Anonymous registration of public clients (policy: django_mcp_scopes.oauth.registration).
        "DCR_ENABLED": True,
        "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
        "DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS": 7 * 24 * 3600,
        "CIMD_ENABLED": True,
        "CIMD_METADATA_FETCHER": CIMD_FETCHER,
    }
    config.update(overrides)
    return config
