"""OAuth scopes as data and per-operation scope enforcement for MCP servers built with Django."""

__version__ = "0.1.0.dev0"
