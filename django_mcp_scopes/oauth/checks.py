"""System checks of the authorization-server parts (registered by ``MCPScopesConfig.ready()``).

Ids: E101 malformed ``MCP_SCOPES_OAUTH``; W101 the package's OAuth URLs are mounted but
django-oauth-toolkit does not use ``MCPOAuth2Validator`` (tokens would not be bound to this project's
resources). Tag ``mcp_scopes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, Warning, register

from django_mcp_scopes.oauth.conf import SETTINGS_NAME, oauth_settings

TAG = "mcp_scopes"
VALIDATOR_PATH = "django_mcp_scopes.oauth.validators.MCPOAuth2Validator"


@register(TAG)
def check_oauth_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Error(problem, hint=f"See the {SETTINGS_NAME} reference in docs/oauth.md.", id="django_mcp_scopes.E101")
        for problem in oauth_settings.validate()
    ]


@register(TAG)
def check_validator(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    if not apps.is_installed("oauth2_provider"):
        return []
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("oauth2_provider:mcp-login")
    except NoReverseMatch:
        return []  # the package's authorization server is not mounted
    from oauth2_provider.settings import oauth2_settings

    from django_mcp_scopes.oauth.validators import MCPOAuth2Validator

    if issubclass(oauth2_settings.OAUTH2_VALIDATOR_CLASS, MCPOAuth2Validator):
        return []
    return [
        Warning(
            "django_mcp_scopes.oauth.urls is mounted but OAUTH2_PROVIDER['OAUTH2_VALIDATOR_CLASS'] is not "
            "MCPOAuth2Validator: tokens are not bound to this project's resources and code replays revoke nothing.",
            hint=f"Use OAUTH2_PROVIDER = oauth2_provider_settings(...), or set OAUTH2_VALIDATOR_CLASS to "
            f"{VALIDATOR_PATH!r} or a subclass.",
            id="django_mcp_scopes.W101",
        )
    ]
