import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_mcp")
application = get_wsgi_application()

if os.environ.get("MCP_TEST_WARM_LOOP"):
    # Start the event-loop thread before gunicorn forks (--preload): workers must build their own.
    from django_mcp_scopes.mcp.bridge import loop_thread

    loop_thread()
