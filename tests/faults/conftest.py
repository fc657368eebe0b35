import json
import os

import pytest


@pytest.fixture(scope="session")
def fault_report(request):
    """Record what a fault scenario measured; printed at the end (and written to $FAULT_REPORT)."""
    rows: list[tuple[str, dict]] = []

    def record(name: str, measured: dict) -> dict:
        rows.append((name, measured))
        return measured

    yield record
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and rows:
        reporter.write_line("")
        reporter.write_line("fault suite: answers, longest wait (s), decision window measured (s)")
        for name, measured in rows:
            window = measured.get("window")
            reporter.write_line(
                f"  {name}: {measured.get('answers')} answers, wait {measured.get('max_wait', 0):.3f}"
                + (f", window {window:.3f}" if window is not None else "")
                + "".join(f", {key} {measured[key]:.3f}" for key in ("to_503", "to_recover") if key in measured)
            )
    if os.environ.get("FAULT_REPORT"):
        with open(os.environ["FAULT_REPORT"], "a") as out:
            for name, measured in rows:
                out.write(json.dumps({"scenario": name, **measured}) + "\n")
