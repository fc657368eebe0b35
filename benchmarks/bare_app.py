"""A bare Django JSON view, no middleware: the ceiling the load generator must be able to drive.

Settings, URLconf and WSGI application in one module: ``gunicorn benchmarks.bare_app:application``.
"""

import os

from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse
from django.urls import path

DEBUG = False
SECRET_KEY = "bench-only-not-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = __name__
USE_TZ = True
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}

_ANSWER = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "5"}], "isError": False}}


def answer(request):
    return JsonResponse(_ANSWER)


urlpatterns = [path("mcp", answer)]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", __name__)
application = get_wsgi_application()
