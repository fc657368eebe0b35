"""Run the benchmarks in turn (``make bench``), then repeat each one's last line.

1. ``auth_bench.py``: the authentication overhead on a DRF view;
2. ``telemetry_bench.py``: what the OpenTelemetry hooks cost a request, off (the default) and on;
3. ``scale.py``: 10 vs 10,000 scopes and 10 vs 1,000 tools (decision, listing, PRM, memory, queries);
4. ``mcp_bench.py``: the MCP endpoint against the SDK's own server, under ``wrk``.

Arguments go to ``mcp_bench.py`` (``make bench BENCH_ARGS="--baseline DIR"``). Each benchmark prints
its summary as its last line; the last line of all is ``mcp_endpoint_ratio=...``.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["auth_bench.py", "telemetry_bench.py", "scale.py", "mcp_bench.py"]


def main() -> int:
    failures = 0
    summary = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        arguments = sys.argv[1:] if name == "mcp_bench.py" else []
        process = subprocess.Popen(
            [sys.executable, str(HERE / name), *arguments], cwd=HERE.parent, stdout=subprocess.PIPE, text=True
        )
        last = ""
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            last = line.strip() or last
        failures += process.wait() != 0
        summary.append(last if process.returncode == 0 else f"{name} failed ({process.returncode})")
    print("== summary")
    for line in summary:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
