"""ASGI entry for live-server tests (DJANGO_SETTINGS_MODULE comes from the environment)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.live_settings")
application = get_asgi_application()
