"""The example project's settings, as live test servers run them.

One difference: Client ID Metadata Documents are read from a directory the test writes to
(``CIMD_DOCUMENTS_DIR``, see ``tests/example/cimd_fetcher.py``) instead of being fetched from the
client's https URL. That is the only stand-in in these tests, for what cannot run here (a public
https host serving the document); the policy checks and everything django-oauth-toolkit does with
the document stay real.
"""

from example_project.settings import *  # noqa: F403
from example_project.settings import OAUTH2_PROVIDER

OAUTH2_PROVIDER = {**OAUTH2_PROVIDER, "CIMD_METADATA_FETCHER": "tests.example.cimd_fetcher.DirectoryFetcher"}

# A live server's errors go to its output (which the tests print when they fail): with DEBUG off,
# Django's default logging would drop the traceback of a 500.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False}},
}
