"""The MCP endpoint against the SDK's own server, with ``wrk`` as the load generator.

Side by side in one run, each server one worker pinned to core 0 (``taskset -c 0``), ``wrk -t1 -c16``
pinned to core 1, rounds of ``--seconds`` (5), each row's median over ``--rounds`` (5). Rows:

- ``bare-django``: a Django JSON view with no middleware (gunicorn gthread): shows that wrk drives
  4,000 req/s or more on one core, i.e. that the generator is not the bottleneck;
- ``sdk``: the SDK's ``streamable_http_app(stateless_http=True, json_response=True)`` with its own
  bearer auth (a ``TokenVerifier``), uvicorn, tools ``whoami`` and ``add``;
- ``example``: the example project's ``/mcp`` ``whoami`` with its own settings (SQLite under /tmp,
  its file cache, DEBUG off) and full django-oauth-toolkit validation of a real token, under WSGI
  (gunicorn gthread) and ASGI (uvicorn); ``warm`` sends one token, ``cold`` a token no request sent
  before (wrk's Lua script walks a pool of pre-created tokens, a fresh offset each round; the token
  caches stay on, as in production);
- ``bench-app``: ``benchmarks/mcp_bench_app`` (the endpoint with a static token, tool ``add``);
- the handshake-era revision (2025-11-25) for the example and the SDK;
- with ``--baseline DIR``: the example and the bench app from another checkout (e.g.
  ``git archive main | tar -x -C DIR``), in the same rounds, printed as before/after.

Every answer must be a 200 whose body holds the expected result (the Lua ``response`` hook checks
each one); a row with a bad answer, a socket error or an exhausted token pool fails the run. The
request is the 2026-07-28 stateless ``tools/call`` with ``MCP-Protocol-Version``, ``Mcp-Method`` and
``Mcp-Name``. The last line is ``mcp_endpoint_ratio=<example /mcp WSGI warm / sdk whoami>``, the
median of the per-round ratios.

Run: ``python benchmarks/mcp_bench.py [--seconds 5] [--rounds 5] [--only example-wsgi-warm,sdk-whoami]``
from the repository root (``make bench``). Needs ``wrk`` and ``taskset``.

To add a variant (a setting, an optional extra such as OpenTelemetry), add a ``Server`` to
``servers()`` and a ``Row`` to ``ROWS``; a row with ``available`` returning a reason is skipped with
that reason printed.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "benchmarks" / "wrk" / "mcp.lua"
FIXTURES = ROOT / "benchmarks" / "example_fixtures.py"
# The resource the example's tokens are bound to: DJANGO_BASE_URL, whatever port a server listens on.
EXAMPLE_BASE_URL = "http://127.0.0.1:8000"
SERVER_CPU, LOAD_CPU = "0", "1"
MODERN, LEGACY = "2026-07-28", "2025-11-25"

RUNNERS = {
    "gunicorn": [
        "-m", "gunicorn", "{app}", "--worker-class", "gthread", "--workers", "1", "--threads", "{threads}",
        "--keep-alive", "30", "--bind", "127.0.0.1:{port}", "--log-level", "warning",
    ],
    "uvicorn": [
        "-m", "uvicorn", "{app}", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1",
        "--no-access-log", "--log-level", "warning", "--lifespan", "{lifespan}",
    ],
}  # fmt: skip


@dataclass(frozen=True)
class Server:
    """One server process: a runner, an app, the checkout it comes from and its environment."""

    name: str
    runner: str
    app: str
    project: str  # "bare", "sdk", "example" or "bench-app": which environment and fixtures it needs
    root: Path = ROOT
    lifespan: str = "off"
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One measured line: a server, the request sent to it, and what every answer must contain."""

    name: str
    server: str
    tool: str  # "whoami", "add", or "bare" (the bare view's answer)
    era: str = MODERN
    token: str = "static"  # "static" (the server's fixed token), "warm" or "cold" (example tokens)
    versus: str = "sdk-whoami"  # the row this one's ratio is computed against
    baseline: bool = False
    available: Callable[[], str | None] = lambda: None  # None, or why the row is skipped


BENCH_APP = "benchmarks.mcp_bench_app"
STACK = "benchmarks.example_stack"  # the example without its MCP fast lane: Django's handler and middleware


def servers(baseline: Path | None) -> dict[str, Server]:
    found = {
        "bare-django": Server("bare-django", "gunicorn", "benchmarks.bare_app:application", "bare"),
        "sdk": Server("sdk", "uvicorn", "benchmarks.mcp_bench_app.sdk:app", "sdk", lifespan="on"),
        "example-wsgi": Server("example-wsgi", "gunicorn", "example_project.wsgi:application", "example"),
        "example-asgi": Server("example-asgi", "uvicorn", "example_project.asgi:application", "example"),
        "example-wsgi-stack": Server("example-wsgi-stack", "gunicorn", f"{STACK}:wsgi_application", "example"),
        "example-asgi-stack": Server("example-asgi-stack", "uvicorn", f"{STACK}:asgi_application", "example"),
        "bench-app-wsgi": Server("bench-app-wsgi", "gunicorn", f"{BENCH_APP}.wsgi:application", "bench-app"),
        "bench-app-asgi": Server("bench-app-asgi", "uvicorn", f"{BENCH_APP}.asgi:application", "bench-app"),
    }  # fmt: skip
    if baseline is not None:
        for name in ("example-wsgi", "example-asgi", "bench-app-wsgi", "bench-app-asgi"):
            server = found[name]
            found[f"before:{name}"] = Server(f"before:{name}", server.runner, server.app, server.project, baseline)
    return found


def _needs(module: str) -> Callable[[], str | None]:
    return lambda: None if importlib.util.find_spec(module) else f"{module} is not installed"


ROWS = [
    Row("bare-django", "bare-django", "bare", versus="sdk-whoami"),
    Row("sdk-whoami", "sdk", "whoami"),
    Row("sdk-add", "sdk", "add"),
    Row("example-wsgi-warm", "example-wsgi", "whoami", token="warm"),
    Row("example-wsgi-cold", "example-wsgi", "whoami", token="cold"),
    Row("example-asgi-warm", "example-asgi", "whoami", token="warm"),
    Row("example-asgi-cold", "example-asgi", "whoami", token="cold"),
    Row("example-wsgi-stack-warm", "example-wsgi-stack", "whoami", token="warm"),
    Row("example-asgi-stack-warm", "example-asgi-stack", "whoami", token="warm"),
    Row("bench-app-wsgi", "bench-app-wsgi", "add", versus="sdk-add"),
    Row("bench-app-asgi", "bench-app-asgi", "add", versus="sdk-add"),
    Row(f"sdk-whoami-{LEGACY}", "sdk", "whoami", era=LEGACY, versus=f"sdk-whoami-{LEGACY}"),
    Row(f"example-wsgi-warm-{LEGACY}", "example-wsgi", "whoami", LEGACY, "warm", versus=f"sdk-whoami-{LEGACY}"),
    # Issue 14 (OpenTelemetry as an optional extra, "no cost at all when it is not installed"): add a
    # Server with the instrumented settings and a row such as
    # Row("example-wsgi-otel", "example-wsgi-otel", "whoami", token="warm", available=_needs("opentelemetry")).
    Row("before:example-wsgi-warm", "before:example-wsgi", "whoami", token="warm", baseline=True),
    Row("before:example-wsgi-cold", "before:example-wsgi", "whoami", token="cold", baseline=True),
    Row("before:example-asgi-warm", "before:example-asgi", "whoami", token="warm", baseline=True),
    Row("before:bench-app-wsgi", "before:bench-app-wsgi", "add", versus="sdk-add", baseline=True),
    Row("before:bench-app-asgi", "before:bench-app-asgi", "add", versus="sdk-add", baseline=True),
]  # fmt: skip
HEADLINE = ("example-wsgi-warm", "sdk-whoami")


def body(tool: str, era: str) -> bytes:
    params: dict[str, object] = {"name": "whoami" if tool == "bare" else tool, "arguments": {}}
    if tool == "add":
        params["arguments"] = {"a": 2, "b": 3}
    if era == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()


def headers(port: int, tool: str, era: str, token: str) -> list[str]:
    lines = [
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        "Accept: application/json, text/event-stream",
        f"MCP-Protocol-Version: {era}",
        f"Authorization: Bearer {token}",
    ]
    if era == MODERN:
        lines += ["Mcp-Method: tools/call", f"Mcp-Name: {'whoami' if tool == 'bare' else tool}"]
    return lines


EXPECTED = {
    "bare": ['"isError": false'],
    "whoami": ['"isError":false', '"username":"demo"'],
    "add": ['"isError":false', '"text":"5"'],
}


# processes -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Running:
    """A server process in its own process group, its stderr in a file (printed when it fails)."""

    def __init__(self, server: Server, env: dict[str, str], threads: int, log_dir: Path) -> None:
        self.server = server
        self.port = free_port()
        argv = [
            "taskset", "-c", SERVER_CPU, sys.executable,
            *[part.format(app=server.app, port=self.port, threads=threads, lifespan=server.lifespan)
              for part in RUNNERS[server.runner]],
        ]  # fmt: skip
        env = {**env, "PYTHONPATH": str(server.root), "SDK_BENCH_RESOURCE": f"http://127.0.0.1:{self.port}/mcp"}
        self.log = log_dir / f"{server.name.replace(':', '-')}.stderr"
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                argv, cwd=server.root, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.server.name} exited ({self.process.returncode}):\n{self.stderr()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.server.name} did not listen within {timeout:.0f} s:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes (its master and workers)."""
        ticks = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == self.process.pid:  # its process group
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM to the whole process group, then SIGKILL to whatever is left of it (workers too)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
            time.sleep(0.2)  # the group's other members (a gunicorn worker) end after their master
        self.process.wait()


class BenchError(Exception):
    pass


@contextmanager
def started(wanted: list[Server], envs: dict[tuple[Path, str], dict[str, str]], threads: int, log_dir: Path):
    """Start every server, wait until each listens; stop them all (process groups) whatever happens."""
    running: dict[str, Running] = {}

    def terminate(signum, frame):  # a SIGTERM to the benchmark still stops the servers
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        for server in wanted:
            running[server.name] = Running(server, envs[(server.root, server.project)], threads, log_dir)
        for each in running.values():
            each.wait_ready()
        yield running
    finally:
        for each in running.values():
            each.stop()
        signal.signal(signal.SIGTERM, previous)


# load ------------------------------------------------------------------------------------------------------
@dataclass
class Result:
    rate: float
    ok: int
    bad: int
    sent: int
    exhausted: int
    socket_errors: int
    sample: str
    cpu_per_request: float = 0.0  # the server's CPU seconds per answered request

    @property
    def problem(self) -> str | None:
        if self.bad:
            return f"{self.bad} of {self.ok + self.bad} answers were not 200 with the expected body, e.g. {self.sample}"
        if self.socket_errors:
            return f"{self.socket_errors} socket errors"
        if self.exhausted:
            return f"the cold-token pool ran out ({self.exhausted} requests reused a token)"
        if not self.ok:
            return "no answer at all"
        return None


def run_wrk(url: str, seconds: int, connections: int, args: list[str]) -> Result:
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["-s", str(LUA), url, "--", *args]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    out = completed.stdout
    if completed.returncode != 0 or "BENCHCHECK" not in out:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr or out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    check = dict(re.findall(r"(\w+)=(\d+)", out.split("BENCHCHECK", 1)[1].splitlines()[0]))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sample = out.split("BENCHSAMPLE", 1)[1].splitlines()[0].strip() if "BENCHSAMPLE" in out else ""
    return Result(
        rate=rate,
        ok=int(check["ok"]),
        bad=int(check["bad"]),
        sent=int(check["sent"]),
        exhausted=int(check["exhausted"]),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        sample=sample,
    )


class Load:
    """Sends one row's requests: the files wrk's Lua script reads, and the cold pools' next offsets."""

    def __init__(self, work: Path, tokens: dict[Path, Path], envs: dict, connections: int) -> None:
        self.work = work
        self.tokens = tokens  # checkout root -> directory with warm.txt and cold.txt
        self.envs = envs
        self.next_cold: dict[Path, int] = dict.fromkeys(tokens, 0)
        self.cold_rate: dict[Path, float] = {}
        self.connections = connections

    def pool_size(self, root: Path) -> int:
        return len((self.tokens[root] / "cold.txt").read_text().splitlines())

    def top_up(self, root: Path, seconds: int) -> None:
        """Before a cold run: enough unused tokens for three times what the last cold run sent per second."""
        need = int(max(self.cold_rate.get(root, 0.0) * 3, 1000) * (seconds + 1))
        missing = need - (self.pool_size(root) - self.next_cold[root])
        if missing > 0:
            argv = [sys.executable, str(FIXTURES), str(self.tokens[root]), str(max(missing, 10_000)), "--append"]
            _check_call(argv, root, self.envs[(root, "example")])

    def probe(self, row: Row, running: Running) -> None:
        """One request before any load: the server answers it as expected, or the run stops and says why."""
        token = (
            "bench" if row.token == "static" else (self.tokens[running.server.root] / "warm.txt").read_text().strip()
        )
        fields = dict(line.split(": ", 1) for line in headers(running.port, row.tool, row.era, token))
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=60)
        try:
            connection.request("POST", "/mcp", body=body(row.tool, row.era), headers=fields)
            answer = connection.getresponse()
            status, text = answer.status, answer.read().decode(errors="replace")
        except OSError as error:
            raise BenchError(f"{row.name}: no answer ({error}); server stderr:\n{running.stderr()}") from error
        finally:
            connection.close()
        if status != 200 or not all(expected in text for expected in EXPECTED[row.tool]):
            raise BenchError(f"{row.name}: unexpected answer {status} {text[:500]}; server stderr:\n{running.stderr()}")

    def run(self, row: Row, running: Running, seconds: int) -> Result:
        root = running.server.root
        token = "bench"
        if row.token != "static":
            token = (self.tokens[root] / "warm.txt").read_text().strip()
        stem = self.work / re.sub(r"[^\w.-]", "-", row.name)
        stem.with_suffix(".headers").write_text("\n".join(headers(running.port, row.tool, row.era, token)) + "\n")
        stem.with_suffix(".body").write_bytes(body(row.tool, row.era))
        pool, offset = "-", 0
        if row.token == "cold":
            self.top_up(root, seconds)
            pool, offset = str(self.tokens[root] / "cold.txt"), self.next_cold[root]
        cpu_before = running.cpu_seconds()
        result = run_wrk(
            f"http://127.0.0.1:{running.port}/mcp",
            seconds,
            self.connections,
            [str(stem.with_suffix(".headers")), str(stem.with_suffix(".body")), pool, str(offset), *EXPECTED[row.tool]],
        )
        result.cpu_per_request = (running.cpu_seconds() - cpu_before) / max(result.ok, 1)
        if row.token == "cold":
            self.next_cold[root] += result.sent
            self.cold_rate[root] = max(self.cold_rate.get(root, 0.0), result.rate)
            if self.next_cold[root] > self.pool_size(root):
                result.exhausted = max(result.exhausted, 1)
        return result


# setup -----------------------------------------------------------------------------------------------------
def prepare(roots: list[Path], projects: set[str], work: Path, cold_tokens: int) -> tuple[dict, dict]:
    """Databases and tokens for each checkout; returns the environments and the token directories."""
    envs: dict[tuple[Path, str], dict[str, str]] = {}
    tokens: dict[Path, Path] = {}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    for number, root in enumerate(roots):
        place = work / f"checkout{number}"
        place.mkdir()
        _check_origin(root, base)
        envs[(root, "bare")] = {**base, "DJANGO_SETTINGS_MODULE": "benchmarks.bare_app"}
        envs[(root, "sdk")] = dict(base)
        if "bench-app" in projects:
            env = {
                **base,
                "DJANGO_SETTINGS_MODULE": "benchmarks.mcp_bench_app.settings",
                "MCP_BENCH_DB": str(place / "bench-app.sqlite3"),
                "PYTHONPATH": str(root),
            }
            _check_call([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], root, env)
            envs[(root, "bench-app")] = env
        if "example" in projects:
            env = {
                **base,
                "DJANGO_SETTINGS_MODULE": "example_project.settings",
                "DJANGO_DEBUG": "0",
                "DJANGO_BASE_URL": EXAMPLE_BASE_URL,
                "EXAMPLE_SQLITE_PATH": str(place / "example.sqlite3"),
                "PYTHONPATH": str(root),
            }
            _check_call([sys.executable, str(FIXTURES), str(place / "tokens"), str(cold_tokens)], root, env)
            envs[(root, "example")] = env
            tokens[root] = place / "tokens"
    return envs, tokens


def _check_origin(root: Path, env: dict[str, str]) -> None:
    """The package and the example a server of ``root`` imports are ``root``'s (not an editable install's)."""
    code = (
        "import django_mcp_scopes, example_project; print(django_mcp_scopes.__file__); print(example_project.__file__)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env={**env, "PYTHONPATH": str(root)}, capture_output=True, text=True
    )
    paths = [Path(line).resolve() for line in found.stdout.split()]
    if found.returncode != 0 or len(paths) != 2 or not all(path.is_relative_to(root) for path in paths):
        raise BenchError(f"the servers of {root} would not import its own code: {found.stdout}{found.stderr}")


def _check_call(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    completed = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed in {cwd}:\n{completed.stdout}{completed.stderr}")


def need_tools() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchError(
            f"make bench needs {' and '.join(missing)} (a native load generator: a Python one saturates near "
            "1,000 req/s and hides the differences). On Debian or Ubuntu: sudo apt-get install -y wrk util-linux"
        )
    if (os.cpu_count() or 1) < 2:
        raise BenchError("make bench pins the server to core 0 and wrk to core 1: it needs at least 2 cores.")


def describe_machine() -> list[str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    cpu = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = re.search(r"Model name:\s+(.+)", lscpu).group(1).strip()  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout + wrk.stderr).split("[", 1)[0].strip()
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("Django", "django-oauth-toolkit", "mcp", "gunicorn", "uvicorn", "djangorestframework")
    )
    return [
        f"machine: {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start",
        f"python {platform.python_version()}, {packages}, {wrk_version}",
    ]


# main ------------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="length of one round of one row")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per row; each row's figure is the median")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of load before the rounds, per row")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4, help="threads of the gunicorn gthread worker")
    parser.add_argument(
        "--cold-tokens", type=int, default=20_000, help="fresh tokens per checkout to start with (topped up as needed)"
    )
    parser.add_argument("--only", help="comma-separated row names (the headline rows are always measured)")
    parser.add_argument("--baseline", type=Path, help="also serve the example and the bench app from this checkout")
    options = parser.parse_args()
    try:
        need_tools()
        return measure(options)
    except BenchError as error:
        print(f"mcp_bench: {error}", file=sys.stderr)
        return 1


def measure(options: argparse.Namespace) -> int:
    baseline = options.baseline.resolve() if options.baseline else None
    if baseline is not None and not (baseline / "example_project").is_dir():
        raise BenchError(f"--baseline {baseline} is not a checkout of this project (no example_project/)")
    known = servers(baseline)
    wanted_names = None
    if options.only:
        # The rows asked for, what their ratios compare them with, and their --baseline counterparts.
        wanted_names = set(options.only.split(",")) | set(HEADLINE)
        wanted_names |= {row.versus for row in ROWS if row.name in wanted_names}
        wanted_names |= {f"before:{name}" for name in wanted_names}
    rows: list[Row] = []
    for row in ROWS:
        if row.baseline and baseline is None:
            continue
        if wanted_names is not None and row.name not in wanted_names:
            continue
        reason = row.available()
        if reason:
            print(f"skipped {row.name}: {reason}")
            continue
        rows.append(row)
    if wanted_names is not None and (unknown := set(options.only.split(",")) - {row.name for row in ROWS}):
        raise BenchError(f"unknown rows: {', '.join(sorted(unknown))}; known: {', '.join(r.name for r in ROWS)}")
    wanted = [known[name] for name in dict.fromkeys(row.server for row in rows)]
    roots = list(dict.fromkeys(server.root for server in wanted))
    for line in describe_machine():
        print(line, flush=True)
    rates: dict[str, list[float]] = {row.name: [] for row in rows}
    cpu: dict[str, list[float]] = {row.name: [] for row in rows}
    problems: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        work = Path(tmp)
        envs, tokens = prepare(roots, {server.project for server in wanted}, work, options.cold_tokens)
        load = Load(work, tokens, envs, options.connections)
        with started(wanted, envs, options.threads, work) as running:
            # Two phases: every row with a steady token first, then the cold-token rows. A burst of
            # fresh tokens leaves a server slower for a while (caches and token table churned), which
            # would weigh on whichever warm row follows it; no warm row ever follows one this way.
            # Within a phase, rounds interleave the rows (reversed every other round): whatever else
            # loads the machine weighs on every row alike.
            steady = [row for row in rows if row.token != "cold"]
            cold = [row for row in rows if row.token == "cold"]
            for phase in (steady, cold):
                for row in phase:
                    load.probe(row, running[row.server])
                    result = load.run(row, running[row.server], options.warmup)
                    if result.bad or result.socket_errors:
                        problems[row.name] = f"warm-up: {result.problem}"
                for number in range(options.rounds):
                    for row in phase if number % 2 == 0 else phase[::-1]:
                        if row.name in problems:
                            continue
                        result = load.run(row, running[row.server], options.seconds)
                        if result.problem:
                            problems[row.name] = result.problem
                        rates[row.name].append(result.rate)
                        cpu[row.name].append(result.cpu_per_request)
                    if phase:
                        kind = "steady-token" if phase is steady else "cold-token"
                        print(f"{kind} round {number + 1}/{options.rounds} done", flush=True)
            dead = [each.server.name for each in running.values() if each.process.poll() is not None]
            for name in dead:
                problems[name] = f"the server died:\n{running[name].stderr()}"
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    report(rows, rates, problems, baseline is not None, cpu)
    return 1 if problems else 0


def _ratio(rates: dict[str, list[float]], top: str, bottom: str) -> float | None:
    """The median of the per-round ratios (rows of a round run seconds apart, under the same load)."""
    if not rates.get(top) or not rates.get(bottom):
        return None
    return statistics.median(a / b for a, b in zip(rates[top], rates[bottom], strict=False))


def _rows_table(
    rows: list[Row], rates: dict[str, list[float]], problems: dict[str, str], cpu: dict[str, list[float]]
) -> Iterator[str]:
    yield "| row | server | request | token | req/s (median) | rounds | vs | ratio | server CPU us/req |"
    yield "| --- | --- | --- | --- | ---: | --- | --- | ---: | ---: |"
    for row in rows:
        figures = rates[row.name]
        median = f"{statistics.median(figures):,.0f}" if figures else "-"
        spread = " / ".join(f"{rate:.0f}" for rate in figures)
        ratio = _ratio(rates, row.name, row.versus) if row.name != row.versus else 1.0
        shown = "FAILED" if row.name in problems else (f"{ratio:.2f}" if ratio is not None else "-")
        request = f"{row.tool} {row.era}"
        used = f"{statistics.median(cpu[row.name]) * 1e6:,.0f}" if cpu.get(row.name) else "-"
        yield (
            f"| {row.name} | {row.server} | {request} | {row.token} | {median} | {spread} | {row.versus} | {shown} "
            f"| {used} |"
        )


def report(
    rows: list[Row],
    rates: dict[str, list[float]],
    problems: dict[str, str],
    with_baseline: bool,
    cpu: dict[str, list[float]],
) -> None:
    print()
    for line in _rows_table(rows, rates, problems, cpu):
        print(line)
    print()
    if rates.get("bare-django"):
        bare = statistics.median(rates["bare-django"])
        verdict = "the generator is not the bottleneck" if bare >= 4000 else (
            "below 4,000 req/s: the machine is loaded (other processes share the cores; see the load "
            "average), or its cores are slower than the reference machine's; the ratios still compare "
            "rows measured under the same load"
        )  # fmt: skip
        print(f"bare Django view: {bare:,.0f} req/s on one core ({verdict})")
    goals = [
        ("example-wsgi-warm", "sdk-whoami", 0.8, "example /mcp WSGI (warm) vs SDK: goal >= 0.8"),
        ("example-asgi-warm", "sdk-whoami", 0.6, "example /mcp ASGI (warm) vs SDK: goal >= 0.6"),
    ]
    for top, bottom, goal, label in goals:
        ratio = _ratio(rates, top, bottom)
        if ratio is not None:
            print(f"{label}: {ratio:.2f} {'(met)' if ratio >= goal else '(not met)'}")
    if with_baseline:
        print("before/after (this checkout / --baseline, median of per-round ratios):")
        for row in rows:
            if row.baseline:
                after = row.name.removeprefix("before:")
                ratio = _ratio(rates, after, row.name)
                if ratio is not None:
                    before = statistics.median(rates[row.name])
                    now = statistics.median(rates[after])
                    print(f"  {after}: {before:,.0f} -> {now:,.0f} req/s, speedup {ratio:.2f}x")
    for name, problem in problems.items():
        print(f"FAILED {name}: {problem}")
    ratio = _ratio(rates, *HEADLINE)
    if problems or ratio is None:
        print("mcp_endpoint_ratio=FAILED")
    else:
        print(f"mcp_endpoint_ratio={ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
