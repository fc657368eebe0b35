from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MCPScopesConfig(AppConfig):
    name = "django_mcp_scopes"
    label = "mcp_scopes"
    verbose_name = _("MCP scopes")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_mcp_scopes import checks, receivers  # noqa: F401
        from django_mcp_scopes.mcp.sdk_logging import keep_sdk_out_of_logging
        from django_mcp_scopes.oauth import checks as oauth_checks  # noqa: F401

        keep_sdk_out_of_logging()
