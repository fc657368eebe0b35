"""The authorization-server parts a project mounts to be its own MCP authorization server.

Built on django-oauth-toolkit through its hooks: ``provider.oauth2_provider_settings()`` for
``settings.OAUTH2_PROVIDER`` and ``urls`` for the URLconf. See docs/oauth.md. Nothing here is
imported by ``django_mcp_scopes`` itself, so projects that use another authorization server never
load it.
"""
