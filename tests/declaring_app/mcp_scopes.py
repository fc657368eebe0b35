"""Found by `mcp_scopes sync` through autodiscovery (a module named mcp_scopes in an installed app)."""

from django_mcp_scopes.declarations import declare_scope

declare_scope("discovered:read", "Found by autodiscovery", advertised=True)
declare_scope("discovered:write", "Write what autodiscovery found", implies=["discovered:read"])
