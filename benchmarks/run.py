"""Run every benchmarks/*_bench.py in turn (``make bench``), then repeat each one's last line.

Each benchmark prints its own summary as its last line (``auth_overhead_ratio=...``, ...).
Arguments are passed to every benchmark.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failures = 0
    summary = []
    for script in sorted(HERE.glob("*_bench.py")):
        print(f"== {script.name}", flush=True)
        process = subprocess.Popen(
            [sys.executable, str(script), *sys.argv[1:]], cwd=HERE.parent, stdout=subprocess.PIPE, text=True
        )
        last = ""
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            last = line.strip() or last
        failures += process.wait() != 0
        summary.append(last if process.returncode == 0 else f"{script.name} failed ({process.returncode})")
    print("== summary")
    for line in summary:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
