"""Authentication overhead, measured against a real server process.

One gunicorn worker (gthread, keep-alive) serves three copies of a trivial DRF view from a SQLite
file: unprotected, protected by MCPTokenAuthentication + HasScopes (warm token cache), and
protected by django-oauth-toolkit's stock OAuth2Authentication + TokenHasScope. A Python load
generator (processes x keep-alive http.client connections, loopback only) measures each for a
few seconds, in rounds, the three targets back to back in each round. The table shows each
target's median req/s; the ratios are the median of the per-round ratios (a round's targets run
seconds apart, which keeps other load on the machine out of the comparison). It also counts database
queries for a cold and a warm token in-process (CaptureQueriesContext).

    python benchmarks/auth_bench.py [--seconds 1.5] [--rounds 7] [--clients 2]

The last line is ``auth_overhead_ratio=<protected req/s / unprotected req/s>`` (goal: >= 0.90).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "benchmarks.auth_bench_settings"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare(base_url: str) -> dict[str, str]:
    """Migrate the SQLite file and create a scope, a client and two tokens. Returns the tokens."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    from django_mcp_scopes.models import Scope

    call_command("migrate", verbosity=0)
    Scope.objects.create(name="bench:read", description="Read", is_advertised=True)
    user = get_user_model().objects.create_user(username="bench")
    application = Application.objects.create(
        name="bench",
        user=user,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    tokens = {}
    for name, resource in (("protected", [f"{base_url}/bench/protected"]), ("dot", [])):
        token = secrets.token_urlsafe(32)
        AccessToken.objects.create(
            user=user,
            application=application,
            token=token,
            scope="bench:read",
            expires=timezone.now() + timedelta(hours=1),
            resource=resource,
        )
        tokens[name] = token
    return tokens


def _count_queries(base_url: str) -> tuple[int, int]:
    """Queries for a cold and a warm token, in-process, through the same view and settings."""
    from datetime import timedelta as _timedelta

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    application = Application.objects.get(name="bench")
    token = secrets.token_urlsafe(32)
    host = base_url.removeprefix("http://")
    AccessToken.objects.create(
        user=application.user,
        application=application,
        token=token,
        scope="bench:read",
        expires=timezone.now() + _timedelta(hours=1),
        resource=[f"{base_url}/bench/protected"],
    )
    client = Client(HTTP_HOST=host)
    client.get("/bench/protected")  # warms the scope registry (not the token)
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/bench/protected", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content
        counts.append(len(queries))
    return counts[0], counts[1]


def _load(args: tuple[str, int, str, str | None, float]) -> tuple[int, int]:
    host, port, path, token, seconds = args
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connection = http.client.HTTPConnection(host, port, timeout=10)
    ok = errors = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            ok += 1
        else:
            errors += 1
        if response.getheader("Connection", "").lower() == "close":
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.close()
    return ok, errors


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the server's processes (Linux /proc; 0 elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _measure(pool, port: int, path: str, token: str | None, seconds: float, clients: int, pids: list[int]):
    """(req/s, server CPU microseconds per request)."""
    pool.map(_load, [("127.0.0.1", port, path, token, 0.3)] * clients)  # warm-up (fills the token cache)
    cpu_before = _cpu_seconds(pids)
    results = pool.map(_load, [("127.0.0.1", port, path, token, seconds)] * clients)
    cpu = _cpu_seconds(pids) - cpu_before
    ok = sum(result[0] for result in results)
    errors = sum(result[1] for result in results)
    if errors:
        raise SystemExit(f"{path}: {errors} non-200 answers")
    return ok / seconds, cpu * 1e6 / max(ok, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="measuring time per target and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes (keep-alive each)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="mcp-auth-bench-")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": SETTINGS, "BENCH_DB": os.path.join(workdir, "bench.sqlite3")})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    tokens = _prepare(base_url)
    cold, warm = _count_queries(base_url)

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            str(args.clients),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            *os.environ.get("BENCH_GUNICORN_ARGS", "").split(),
            "django.core.wsgi:get_wsgi_application()",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base_url}/bench/unprotected", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.1)
        targets = {
            "unprotected": ("/bench/unprotected", None),
            "protected": ("/bench/protected", tokens["protected"]),
            "dot_stock": ("/bench/dot", tokens["dot"]),
        }
        rates: dict[str, list[float]] = {name: [] for name in targets}
        cpu_costs: dict[str, list[float]] = {name: [] for name in targets}
        pids = [server.pid, *_children(server.pid)]
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.clients) as pool:
            for round_number in range(1, args.rounds + 1):
                for name, (path, token) in targets.items():
                    rate, cpu = _measure(pool, port, path, token, args.seconds, args.clients, pids)
                    rates[name].append(rate)
                    cpu_costs[name].append(cpu)
                    print(f"round {round_number} {name:<12} {rate:8.0f} req/s {cpu:8.0f} us server CPU/req", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)

    ratios = {
        name: statistics.median(rate / base for rate, base in zip(values, rates["unprotected"], strict=True))
        for name, values in rates.items()
    }
    cpu = {name: statistics.median(values) for name, values in cpu_costs.items()}
    print()
    print(f"{'target':<14}{'median req/s':>14}{'x unprotected':>16}{'server CPU us/req':>20}")
    for name, values in rates.items():
        print(f"{name:<14}{statistics.median(values):14.0f}{ratios[name]:16.2f}{cpu[name]:20.0f}")
    if cpu["protected"]:
        # Less sensitive to other load on the machine than req/s: server CPU per request.
        print(f"cpu_per_request_ratio={cpu['unprotected'] / cpu['protected']:.2f}  (unprotected/protected)")
    print(f"db_queries cold_token={cold} warm_token={warm}")
    print(f"auth_overhead_ratio={ratios['protected']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
