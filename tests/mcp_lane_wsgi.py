import os

from django.core.wsgi import get_wsgi_application

from django_mcp_scopes.mcp.serving import mcp_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_mcp_lane")
application = mcp_wsgi_application(get_wsgi_application())
