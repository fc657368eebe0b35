import pytest

from django_mcp_scopes import declarations
from example_project.journal.scopes import JOURNAL_SCOPES


@pytest.fixture(autouse=True)
def _forget_journal_declarations():
    """setup_demo declares the journal's scopes; they must not leak into other tests of the process."""
    yield
    for name in JOURNAL_SCOPES:
        declarations._forget(name)
