"""The example project served through Django's own handler and the example's middleware, without
the MCP fast lane its ``wsgi.py`` and ``asgi.py`` put in front (``django_mcp_scopes.mcp.serving``).

``benchmarks/mcp_bench.py`` measures both, side by side: ``gunicorn benchmarks.example_stack:wsgi_application``
and ``uvicorn benchmarks.example_stack:asgi_application``.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

wsgi_application = get_wsgi_application()
asgi_application = get_asgi_application()
