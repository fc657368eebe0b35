"""docs/example.md's "Connect with the official Python client" program, run as written.

The program is read from the page, saved as connect.py and run against the example (gunicorn) with
``BROWSER`` set to tests/clients/browser.py, which signs in and approves as the person at the
browser would. Its output must show the tool list, the result, and (for a write tool) the step-up.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.example.live import ExampleServer
from tests.live import ROOT

pytestmark = pytest.mark.live


def program(page: str, first_line: str) -> str:
    for body in re.findall(r"^```python\n(.*?)^```", page, re.S | re.M):
        if body.startswith(first_line + "\n"):
            return body
    raise AssertionError(f"docs/example.md has no Python block starting with {first_line!r}")


@pytest.fixture(scope="module")
def example():
    with ExampleServer("wsgi", DCR_PER_IP_PER_HOUR="1000") as server:
        yield server


def test_connect_py_from_the_docs_signs_in_and_steps_up(example, tmp_path):
    script = tmp_path / "connect.py"
    script.write_text(program((ROOT / "docs" / "example.md").read_text(), "# connect.py"))
    browser_log = tmp_path / "browser.log"
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(
        BROWSER=f"{sys.executable} {ROOT / 'tests' / 'clients' / 'browser.py'} %s",
        BROWSER_LOG=str(browser_log),
    )
    arguments = '{"title": "From the docs", "content": "connect.py wrote this"}'
    result = subprocess.run(
        [sys.executable, str(script), example.mcp_url, "create_entry", arguments],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr + browser_log.read_text() if browser_log.exists() else result.stderr
    lines = result.stdout.strip().splitlines()
    assert "'create_entry'" in lines[0] and "'whoami'" in lines[0]
    assert "'title': 'From the docs'" in lines[1]
    # Signed in once for the baseline, and once more for the step-up to entries:write.
    opened = [line for line in browser_log.read_text().splitlines() if line.startswith("open ")]
    assert len(opened) == 2
    assert "entries%3Awrite" in opened[1]
