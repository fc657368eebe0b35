"""A trivial MCP ``tools/call`` through the Django endpoint vs the same tool on the SDK's own server.

Side by side in one run, loopback only, one worker each:

- django-wsgi: ``mcp_path()`` under gunicorn (1 gthread worker, ``--threads`` 4), static-token authentication;
- sdk: ``MCPServer.streamable_http_app(stateless_http=True, json_response=True)`` under uvicorn, no auth;
- django-asgi (for information): the same Django endpoint under uvicorn.

All run at once. Each is warmed up, then loaded for ``--seconds`` (default 5), split into
interleaved rounds so that other load on the machine weighs on all of them alike, by keep-alive
connections from this process (``--connections``, default 8) sending the 2026-07-28 stateless
``tools/call``; the handshake-era (2025-11-25) call is measured too. The last line is
``mcp_endpoint_ratio=<django-wsgi req/s / sdk req/s>`` for the 2026-07-28 call.

``--baseline DIR`` also serves the django-wsgi app from another checkout (e.g. one made with
``git archive main | tar -x -C /tmp/base``), in the same interleaved rounds, and prints
``speedup django-wsgi/baseline-wsgi``: before/after under the same machine load.

Run: ``python benchmarks/mcp_bench.py`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SERVERS = {
    "django-wsgi": [
        "-m", "gunicorn", "benchmarks.mcp_bench_app.wsgi:application", "--worker-class", "gthread",
        "--workers", "1", "--threads", "{threads}", "--keep-alive", "30", "--bind", "127.0.0.1:{port}",
        "--log-level", "warning",
    ],
    "sdk": [
        "-m", "uvicorn", "benchmarks.mcp_bench_app.sdk:app", "--host", "127.0.0.1", "--port", "{port}",
        "--workers", "1", "--no-access-log", "--log-level", "warning",
    ],
    "django-asgi": [
        "-m", "uvicorn", "benchmarks.mcp_bench_app.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
        "--workers", "1", "--no-access-log", "--log-level", "warning", "--lifespan", "off",
    ],
}  # fmt: skip

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def request_bytes(port: int, era: str) -> bytes:
    params: dict[str, object] = {"name": "add", "arguments": {"a": 2, "b": 3}}
    headers = {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Authorization": "Bearer bench",
    }
    if era == "2026-07-28":
        params["_meta"] = MODERN_META
        headers.update({"MCP-Protocol-Version": era, "Mcp-Method": "tools/call", "Mcp-Name": "add"})
    else:
        headers["MCP-Protocol-Version"] = era
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    headers["Content-Length"] = str(len(body))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST /mcp HTTP/1.1\r\n{head}\r\n".encode() + body


async def _one_connection(port: int, payload: bytes, deadline: float, counts: list[int], errors: list[str]) -> None:
    reader = writer = None
    while time.monotonic() < deadline:
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert reader is not None
        writer.write(payload)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            reader = writer = None
            continue
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:] if ":" in line}
        body = await reader.readexactly(int(fields.get("content-length", "0")))
        if status != 200 or b'"isError":false' not in body:
            errors.append(f"{status} {body[:200]!r}")
            if len(errors) > 20:
                return
        counts[0] += 1
        if fields.get("connection", "").lower() == "close":
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(port: int, era: str, seconds: float, connections: int) -> tuple[int, float, list[str]]:
    """(requests answered, seconds taken, unexpected answers) for ``seconds`` of load."""
    payload = request_bytes(port, era)
    counts = [0]
    errors: list[str] = []
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(_one_connection(port, payload, deadline, counts, errors) for _ in range(connections)))
    return counts[0], time.monotonic() - started, errors


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, env: dict[str, str], threads: int, root: Path = ROOT) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, *[part.format(port=port, threads=threads) for part in SERVERS[name]]]
    env = {**env, "PYTHONPATH": str(root)}
    process = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{name} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per server and era")
    parser.add_argument("--rounds", type=int, default=5, help="the seconds are split into interleaved rounds")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4, help="threads of the gunicorn gthread worker")
    parser.add_argument("--skip-asgi", action="store_true", help="do not measure the Django endpoint under uvicorn")
    parser.add_argument("--baseline", type=Path, help="also serve django-wsgi from this checkout, for before/after")
    options = parser.parse_args()
    names = ["django-wsgi", "sdk"] + ([] if options.skip_asgi else ["django-asgi"])
    if options.baseline is not None:
        names.append("baseline-wsgi")
    eras = ("2026-07-28", "2025-11-25")

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "benchmarks.mcp_bench_app.settings",
            "MCP_BENCH_DB": str(Path(tmp) / "bench.sqlite3"),
        }
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        servers = {
            name: start(name, env, options.threads)
            if name != "baseline-wsgi"
            else start("django-wsgi", env, options.threads, options.baseline.resolve())
            for name in names
        }
        rates: dict[tuple[str, str], float] = {}
        round_ratios: dict[str, list[float]] = {}
        try:
            for era in eras:
                totals = {name: [0, 0.0] for name in names}
                for name in names:
                    asyncio.run(load(servers[name][1], era, options.warmup, options.connections))
                round_ratios[era] = []
                # Interleaved rounds: whatever else loads the machine weighs on every server alike.
                for round_number in range(options.rounds):
                    order = names if round_number % 2 == 0 else names[::-1]
                    this_round = {}
                    for name in order:
                        count, elapsed, errors = asyncio.run(
                            load(servers[name][1], era, options.seconds / options.rounds, options.connections)
                        )
                        if errors:
                            raise SystemExit(f"{name} {era}: unexpected answers, e.g. {errors[0]}")
                        totals[name][0] += count
                        totals[name][1] += elapsed
                        this_round[name] = count / elapsed
                    round_ratios[era].append(this_round["django-wsgi"] / this_round["sdk"])
                for name in names:
                    rates[(name, era)] = totals[name][0] / totals[name][1]
                    print(f"{name:12} {era}  {rates[(name, era)]:8.0f} req/s", flush=True)
        finally:
            for process, _ in servers.values():
                stop(process)
    for era in eras:
        ratio = rates[("django-wsgi", era)] / rates[("sdk", era)]
        spread = round_ratios[era]
        print(f"ratio django-wsgi/sdk {era}: {ratio:.2f} (rounds {min(spread):.2f}..{max(spread):.2f})")
        if options.baseline is not None:
            speedup = rates[("django-wsgi", era)] / rates[("baseline-wsgi", era)]
            print(f"speedup django-wsgi/baseline-wsgi {era}: {speedup:.2f}")
    print(f"mcp_endpoint_ratio={rates[('django-wsgi', '2026-07-28')] / rates[('sdk', '2026-07-28')]:.2f}")


if __name__ == "__main__":
    main()
