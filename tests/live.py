"""Start real server processes for tests: runserver, gunicorn or uvicorn on a free 127.0.0.1 port.

    with LiveServer("tests.live_settings", server="gunicorn", worker_class="gthread") as live:
        httpx.get(live.url + "/_registry/")

    with live_server_process("tests.live_settings", env={...}) as base_url:
        ...

The process runs this worktree's code (cwd and PYTHONPATH = the repository root), in a process group
of its own. A free port is asked of the OS; if another process takes it before the server binds, the
server is started again on another one. ``start()`` waits until the server answers HTTP. Its stdout
and stderr go to a temporary file: ``log()`` reads it, and it is printed when the ``with`` block
raises or the server never answers. ``stop()`` ends the whole process group (workers included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0  # seconds to wait on a slow, shared machine; not a performance assertion
START_ATTEMPTS = 3
KEEP_ALIVE_SECONDS = 15  # servers' keep-alive; clients close idle connections well before (1 s)
DEFAULT_APPS = {"gunicorn": "tests.wsgi:application", "uvicorn": "tests.asgi:application"}
_PORT_TAKEN = ("address already in use", "connection in use", "port is already in use")


def free_port() -> int:
    """A port the OS says is free now (another process could take it before the server binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def live_database_url() -> str:
    """The URL of the test database of this pytest run, for server processes to use as DATABASE_URL."""
    from django.db import connection

    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings["USER"] or "", safe="")
    if settings.get("PASSWORD"):
        user += ":" + quote(settings["PASSWORD"], safe="")
    host = settings["HOST"] or "127.0.0.1"
    return f"postgres://{user}@{host}:{settings['PORT'] or 5432}/{settings['NAME']}"


def run_cache_prefix() -> str:
    """The Redis key prefix tests/settings.py gives this run (and xdist worker); servers inherit it."""
    from django.conf import settings

    return str(settings.CACHES["default"].get("KEY_PREFIX", ""))


@contextlib.contextmanager
def shared_redis_cache(redis_url: str) -> Iterator[dict[str, str]]:
    """This process and the servers it starts share one Redis cache, under a key prefix of its own.

    Yields the environment to give the servers (read by tests/live_settings.py). The prefix starts
    with the run's (``run_cache_prefix()``), and its keys are deleted at the end, never FLUSHDB.
    """
    from django.core.cache import cache
    from django.test import override_settings

    from tests.conftest import clear_cache

    prefix = f"{run_cache_prefix() or 'tests'}-shared-{uuid.uuid4().hex[:12]}"
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }
    with override_settings(CACHES=caches):
        try:
            yield {"LIVE_REDIS_URL": redis_url, "LIVE_CACHE_KEY_PREFIX": prefix}
        finally:
            clear_cache(cache)


def server_command(
    server: str,
    port: int,
    app: str | None = None,
    *,
    workers: int = 1,
    worker_class: str = "sync",
    threads: int | None = None,
    preload: bool = False,
    lifespan: str = "off",
    threading: bool = True,
    manage_py: bool = False,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The command line of ``server`` (runserver, gunicorn or uvicorn) on 127.0.0.1:``port``."""
    if server == "runserver":
        launcher = ["manage.py"] if manage_py else ["-m", "django"]  # manage.py: what `make run` starts
        command = [sys.executable, *launcher, "runserver", "--noreload", f"127.0.0.1:{port}"]
        if not threading:
            command.append("--nothreading")
    elif server == "gunicorn":
        command = [
            sys.executable, "-m", "gunicorn", app or DEFAULT_APPS["gunicorn"], "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--worker-class", worker_class,
        ]  # fmt: skip
        if threads is not None:
            command += ["--threads", str(threads)]
        # Test clients drop a connection idle for 1 s. A server kept busy (two cores, several
        # servers and a soak) may reach its own keep-alive deadline before it reads a request that
        # arrived on an idle connection, and then closes it unanswered: keep a wide margin.
        command += ["--keep-alive", str(KEEP_ALIVE_SECONDS)]
        if preload:
            command.append("--preload")
    elif server == "uvicorn":
        command = [
            sys.executable, "-m", "uvicorn", app or DEFAULT_APPS["uvicorn"], "--host", "127.0.0.1",
            "--port", str(port), "--lifespan", lifespan, "--no-access-log",
            "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS),
        ]  # fmt: skip
        if workers != 1:
            command += ["--workers", str(workers)]
    else:
        raise ValueError(f"unknown server {server!r}: use runserver, gunicorn or uvicorn")
    return [*command, *extra_args]


class LiveServer:
    """One server process; ``start()`` (or ``with``) runs it, ``stop()`` ends its process group.

    ``env`` is added to this process's environment (DJANGO_SETTINGS_MODULE and PYTHONPATH are set
    from ``settings_module`` and the repository root). ``ready_path`` is requested until the server
    answers (with ``ready_status`` if given). ``prepare(port)`` runs before each start attempt.
    """

    def __init__(
        self,
        settings_module: str,
        *,
        server: str = "runserver",
        app: str | None = None,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/",
        ready_status: int | None = None,
        prepare: Callable[[int], None] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        **options: Any,
    ) -> None:
        self.settings_module = settings_module
        self.server = server
        self.app = app
        self.env = {**os.environ, **(env or {})}
        self.env["DJANGO_SETTINGS_MODULE"] = settings_module
        self.env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.ready_path = ready_path
        self.ready_status = ready_status
        self.prepare = prepare
        self.startup_timeout = startup_timeout
        self.options = options
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="live-server-")
        self.log_path = Path(self._tmp.name) / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, tail: int | None = None) -> str:
        """What the server wrote to stdout and stderr so far (the last ``tail`` characters)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-tail:] if tail else text

    def start(self) -> LiveServer:
        for _attempt in range(START_ATTEMPTS):
            self.port = free_port()
            if self.prepare is not None:
                self.prepare(self.port)
            command = server_command(self.server, self.port, self.app, **self.options)
            with self.log_path.open("wb") as out:
                self.process = subprocess.Popen(
                    command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            try:
                if self._wait_until_up():
                    return self
            except BaseException:
                self.stop()
                raise
            self._kill()
            if not self._port_taken():
                break  # a real failure, not a lost race for the port: starting again would not help
        message = f"{self.server} could not start:\n{self.log()}"
        self.stop()
        raise RuntimeError(message)

    def _wait_until_up(self) -> bool:
        """True once the server answers; False if the process exited (e.g. its port was taken)."""
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                response = httpx.get(self.url + self.ready_path, timeout=2.0)
                if self._port_taken():
                    return False  # what answered is another process that took the port first
                if self.ready_status is None or response.status_code == self.ready_status:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.url} did not answer within {self.startup_timeout}s:\n{self.log()}")

    def _port_taken(self) -> bool:
        return any(taken in self.log().lower() for taken in _PORT_TAKEN)

    def _kill(self) -> None:
        """Ask the server to stop, then kill whatever is left of its process group."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # the leader first: gunicorn and uvicorn stop their workers themselves
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> str:
        """Stop the server and its workers; return (and keep nothing of) its output."""
        self._kill()
        output = self.log()
        self._tmp.cleanup()
        return output

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None:
            sys.stderr.write(f"\n--- output of {self.server} at {self.url} ---\n{self.log()}\n")
        self.stop()


@contextlib.contextmanager
def live_server_process(
    settings_module: str,
    env: Mapping[str, str] | None = None,
    server: str = "runserver",
    app: str | None = None,
    **options: Any,
) -> Iterator[str]:
    """Run a server process with DJANGO_SETTINGS_MODULE=settings_module; yield its base URL."""
    if server == "runserver":
        options.setdefault("threading", False)
    with LiveServer(settings_module, server=server, app=app, env=env, **options) as live:
        yield live.url
