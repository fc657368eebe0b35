"""Leave the project's logging to Django: the SDK's ``MCPServer()`` must not reconfigure it.

``MCPServer.__init__`` (mcp 2.3) calls ``configure_logging(level)``, which runs
``logging.basicConfig`` with a handler of its own on the root logger. In a Django project that
means a second handler on the root logger (every warning printed twice, once through Django's
LOGGING and once through the SDK's) and a root level the project never chose. The app's
``ready()`` replaces that one call in the SDK's server module with one that does nothing, before
the URLconf (which builds the servers) is imported. Checked against mcp 2.3;
``tests/test_sdk_logging.py`` fails loudly when a release moves the call.
"""

from __future__ import annotations

from typing import Any

_SERVER_MODULE = "mcp.server.mcpserver.server"


def _leave_logging_alone(*args: Any, **kwargs: Any) -> None:
    """Django's LOGGING setting configures logging; nothing to do."""


def keep_sdk_out_of_logging() -> None:
    import importlib

    module = importlib.import_module(_SERVER_MODULE)
    if not callable(getattr(module, "configure_logging", None)):
        raise RuntimeError(
            f"{_SERVER_MODULE}.configure_logging is gone: this mcp release configures logging elsewhere; "
            "update django_mcp_scopes.mcp.sdk_logging."
        )
    module.configure_logging = _leave_logging_alone  # type: ignore[attr-defined]
