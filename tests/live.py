"""Start real server processes for tests: runserver, gunicorn or uvicorn on a free 127.0.0.1 port.

    with live_server_process("tests.live_settings", env={...}) as base_url:
        httpx.get(base_url + "/_registry/")

The process runs this worktree's code (cwd and PYTHONPATH = the repository root), is waited for
until it answers HTTP, and is stopped at the end of the block. If the block raises, or the server
dies or never answers, its captured output is printed (pytest shows it with the failure).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0  # seconds to wait for a slow machine; not a performance assertion
DEFAULT_APPS = {"gunicorn": "tests.wsgi:application", "uvicorn": "tests.asgi:application"}


def free_port() -> int:
    """A port the OS says is free now (another process could take it before we bind: we retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server: str, port: int, app: str | None) -> list[str]:
    if server == "runserver":
        return [
            sys.executable,
            "-m",
            "django",
            "runserver",
            "--noreload",
            "--nothreading",
            f"127.0.0.1:{port}",
        ]
    if server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", app or DEFAULT_APPS["gunicorn"],
            "--bind", f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", "-",
        ]  # fmt: skip
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", app or DEFAULT_APPS["uvicorn"],
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}: use runserver, gunicorn or uvicorn")


def _output(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: Path) -> bool:
    """True once the server answers HTTP; False if the process exited (e.g. port taken)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            httpx.get(base_url + "/", timeout=2.0)
            return True
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{base_url} did not answer within {STARTUP_TIMEOUT}s:\n{_output(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def live_server_process(
    settings_module: str,
    env: Mapping[str, str] | None = None,
    server: str = "runserver",
    app: str | None = None,
) -> Iterator[str]:
    """Run a server process with DJANGO_SETTINGS_MODULE=settings_module; yield its base URL."""
    full_env = {**os.environ, **(env or {})}
    full_env["DJANGO_SETTINGS_MODULE"] = settings_module
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory(prefix="live-server-") as tmp:
        log = Path(tmp) / "server.log"
        for _attempt in range(3):
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    server_command(server, port, app),
                    cwd=ROOT,
                    env=full_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                up = _wait_until_up(process, base_url, log)
            except BaseException:
                _stop(process)
                raise
            if up:
                break
            _stop(process)
        else:
            raise RuntimeError(f"{server} could not start:\n{_output(log)}")
        try:
            yield base_url
        except BaseException:
            sys.stderr.write(f"\n--- output of {server} at {base_url} ---\n{_output(log)}\n")
            raise
        finally:
            _stop(process)
