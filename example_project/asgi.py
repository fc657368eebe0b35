import os

from django.core.asgi import get_asgi_application

from django_mcp_scopes.mcp.serving import mcp_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

# The fast lane: a POST to /mcp is served by the MCP view directly, ahead of Django's middleware,
# signals and disconnect listener (a warm token on the event loop, a cold one in the view's one
# thread hop); everything else (the admin, the OAuth endpoints, lifespan) goes to Django's handler.
# What it skips and keeps: docs/deployment.md, "Serving MCP ahead of Django's middleware".
application = mcp_asgi_application(get_asgi_application())
