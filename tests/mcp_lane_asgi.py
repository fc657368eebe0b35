import os

from django.core.asgi import get_asgi_application

from django_mcp_scopes.mcp.serving import mcp_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_mcp_lane")
application = mcp_asgi_application(get_asgi_application())
