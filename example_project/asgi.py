import os

from django.core.asgi import get_asgi_application

from django_mcp_scopes.mcp.serving import mcp_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

# The fast lane: a POST to /mcp whose token is warm (its facts in this process's memory) is served by
# the MCP view directly, ahead of Django's middleware, signals and disconnect listener; everything
# else (a cold token, the admin, the OAuth endpoints, lifespan) goes to Django's handler unchanged.
# What it skips and keeps: docs/deployment.md, "Serving MCP ahead of Django's middleware".
application = mcp_asgi_application(get_asgi_application())
