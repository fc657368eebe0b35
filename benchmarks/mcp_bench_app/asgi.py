import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.mcp_bench_app.settings")
application = get_asgi_application()
