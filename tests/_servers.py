"""Start real server processes on 127.0.0.1 for the MCP endpoint tests (gunicorn, uvicorn, runserver).

Each server runs this worktree's code (``cwd`` and ``PYTHONPATH`` are the repository root) with
``tests.settings_mcp`` and the test database of the current pytest run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

# name -> command line (``{port}`` is filled in). Every variant the endpoint promises to work under.
COMMANDS: dict[str, list[str]] = {
    "gunicorn-gthread": [
        "-m", "gunicorn", "tests.mcp_wsgi:application", "--worker-class", "gthread", "--threads", "4",
        "--workers", "1", "--bind", "127.0.0.1:{port}",
    ],
    "gunicorn-sync-preload": [
        "-m", "gunicorn", "tests.mcp_wsgi:application", "--worker-class", "sync", "--workers", "2",
        "--preload", "--bind", "127.0.0.1:{port}",
    ],
    "gunicorn-gthread-preload": [
        "-m", "gunicorn", "tests.mcp_wsgi:application", "--worker-class", "gthread", "--threads", "2",
        "--workers", "2", "--preload", "--bind", "127.0.0.1:{port}",
    ],
    "uvicorn": [
        "-m", "uvicorn", "tests.mcp_asgi:application", "--host", "127.0.0.1", "--port", "{port}",
        "--lifespan", "off", "--no-access-log",
    ],
    "uvicorn-lifespan-workers": [
        "-m", "uvicorn", "tests.mcp_asgi:application", "--host", "127.0.0.1", "--port", "{port}",
        "--lifespan", "auto", "--workers", "2", "--no-access-log",
    ],
    "runserver": [
        "-m", "django", "runserver", "--noreload", "127.0.0.1:{port}",
    ],
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(name: str, db_name: str, tmp_dir: Path, extra_env: dict[str, str] | None = None) -> LiveServer:
    """Start the named server variant and wait until it answers HTTP."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings_mcp",
        "MCP_LIVE_DB_NAME": db_name,
        **(extra_env or {}),
    }
    argv = [sys.executable, *[part.format(port=port) for part in COMMANDS[name]]]
    log_path = tmp_dir / f"{name}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(name, port, process, log_path, env)
    deadline = time.monotonic() + 60  # a slow, shared machine; not a performance assertion
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log()}")
        try:
            httpx.get(server.url + "/mcp", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        return server
    server.stop()
    raise RuntimeError(f"{name} did not answer within 60 s:\n{server.log()}")
