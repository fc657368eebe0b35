"""WSGI entry for live-server tests (DJANGO_SETTINGS_MODULE comes from the environment)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.live_settings")
application = get_wsgi_application()
