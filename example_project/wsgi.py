import os

from django.core.wsgi import get_wsgi_application

from django_mcp_scopes.mcp.serving import mcp_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

# The fast lane: a POST to /mcp is served by the MCP view directly, ahead of Django's middleware
# and URL resolution (request_started / request_finished are still sent); everything else goes to
# Django's handler unchanged. `manage.py runserver` serves this application too (WSGI_APPLICATION).
# What it skips and keeps: docs/deployment.md, "Serving MCP ahead of Django's middleware".
application = mcp_wsgi_application(get_wsgi_application())
