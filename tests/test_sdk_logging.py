"""The SDK's MCPServer() leaves the project's logging as Django configured it."""

import subprocess
import sys
import textwrap

from tests.live import ROOT


def run_fresh(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_creating_a_server_adds_no_root_handler_and_keeps_the_root_level():
    # A fresh interpreter: this test process's logging has been touched by other tests.
    script = textwrap.dedent(
        """
        import logging, django
        from django.conf import settings
        # Django's default LOGGING: no handler on the root logger, as in a fresh startproject.
        settings.configure(
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "oauth2_provider",
                            "rest_framework", "django_mcp_scopes"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        )
        django.setup()
        if ORIGINAL:
            import mcp.server.mcpserver.server as sdk_server
            from mcp.server.mcpserver.utilities.logging import configure_logging
            sdk_server.configure_logging = configure_logging
        root = logging.getLogger()
        before = (list(root.handlers), root.level)
        from mcp.server.mcpserver import MCPServer
        MCPServer("a", subscriptions=False)
        MCPServer("b", subscriptions=False, log_level="DEBUG")
        assert (list(root.handlers), root.level) == before, (root.handlers, root.level, before)
        print("untouched")
        """
    )
    result = run_fresh("ORIGINAL = False\n" + script)
    assert result.stdout.strip() == "untouched", result.stderr
    # The same script with the SDK's own call restored: the assertion is what catches it.
    assert "AssertionError" in run_fresh("ORIGINAL = True\n" + script).stderr


def test_the_sdk_still_has_the_call_we_replace():
    """Fails loudly when an mcp release moves or renames configure_logging (see sdk_logging.py)."""
    import mcp.server.mcpserver.server as sdk_server
    from mcp.server.mcpserver.utilities import logging as sdk_logging

    from django_mcp_scopes.mcp.sdk_logging import _leave_logging_alone

    assert sdk_server.configure_logging is _leave_logging_alone
    assert callable(sdk_logging.configure_logging)
