"""The README's "Your own project, step by step", followed as a newcomer would: to a working server.

The recipe's blocks are read from README.md itself: shell blocks are run in order (``pip install``
is already done; ``createsuperuser`` gets ``--noinput``; ``runserver`` is started on a free port),
and each Python block is written to the file its first line names, whole or added at the end.
Blocks marked with a variant (``; variant: ...`` or ``; production``) are documentation only. Then
the official ``mcp`` client connects: 401, discovery, registration, login and consent, ``list_notes``,
the 403 and step-up, ``add_note``. When the README changes, this test follows it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.example.live import Browser
from tests.example.test_end_to_end import Session, run, structured
from tests.live import ROOT, free_port

pytestmark = pytest.mark.live

SECTION = "## Your own project, step by step"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
_FILE = re.compile(r"^# file: (?P<path>\S+) \((?P<mode>[^)]+)\)$")


@dataclass
class Step:
    kind: str  # "sh" or "file"
    text: str
    path: str = ""
    mode: str = ""


def recipe_steps(readme: str) -> list[Step]:
    """The development recipe's steps, in README order."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end != -1 else None]
    section = section[: section.find("\n### Variant")] if "\n### Variant" in section else section
    steps = []
    for language, body in _BLOCK.findall(section):
        if language == "sh":
            steps.append(Step("sh", body))
            continue
        first, _, rest = body.partition("\n")
        match = _FILE.match(first)
        assert match, f"a Python block of the recipe does not start with '# file: <path> (<mode>)': {first!r}"
        if ";" in match["mode"]:
            continue  # a variant or the production part: documentation
        assert match["mode"] in ("whole file", "add"), match["mode"]
        steps.append(Step("file", rest, match["path"], match["mode"]))
    return steps


class RecipeProject:
    """The project the recipe builds, in ``directory``; ``start()`` serves it with runserver."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
        # This checkout's package (the one under test), after the project's own directory.
        self.env.update(DJANGO_SUPERUSER_PASSWORD="demo", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        self.log = directory / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    def apply(self, step: Step) -> None:
        if step.kind == "file":
            target = self.directory / step.path
            assert target.parent.is_dir(), f"{step.path}: its directory does not exist yet"
            if step.mode == "whole file":
                target.write_text(step.text)
            else:
                assert target.exists(), f"{step.path}: lines to add to a file that does not exist"
                target.write_text(target.read_text() + "\n" + step.text)
            return
        for line in step.text.splitlines():
            if line.strip():
                self.command(shlex.split(line))

    def command(self, words: list[str]) -> None:
        if words[:2] == ["pip", "install"]:
            return  # this environment has the package already
        if words[0] == "django-admin":
            words = [sys.executable, "-m", "django", *words[1:]]
        elif words[:2] == ["python", "manage.py"]:
            words = [sys.executable, "manage.py", *words[2:]]
        else:
            raise AssertionError(f"the recipe runs a command this test does not know: {words}")
        if words[2:3] == ["createsuperuser"]:
            words += ["--noinput", "--username", "demo", "--email", "demo@example.com"]
        if words[2:3] == ["runserver"]:
            self.start(words)
            return
        result = subprocess.run(
            words, cwd=self.directory, env=self.env, capture_output=True, text=True, timeout=180, check=False
        )
        assert result.returncode == 0, f"{' '.join(words)} failed:\n{result.stdout}\n{result.stderr}"

    def start(self, words: list[str]) -> None:
        command = [*words, "--noreload", f"127.0.0.1:{self.port}"]
        with self.log.open("wb") as out:
            self.server = subprocess.Popen(
                command, cwd=self.directory, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        for _ in range(600):
            try:
                httpx.get(self.base_url + "/.well-known/oauth-authorization-server", timeout=1)
                return
            except httpx.TransportError:
                assert self.server.poll() is None, self.log.read_text()
                subprocess.run(["sleep", "0.1"], check=True)
        raise AssertionError("runserver never answered:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)


def test_the_recipe_parses_and_covers_every_file():
    steps = recipe_steps((ROOT / "README.md").read_text())
    files = {(step.path, step.mode) for step in steps if step.kind == "file"}
    assert files == {
        ("mysite/settings.py", "add"),
        ("notes/models.py", "whole file"),
        ("notes/mcp_scopes.py", "whole file"),
        ("notes/mcp.py", "whole file"),
        ("mysite/urls.py", "whole file"),
    }
    assert steps[0].kind == "sh" and steps[-1].kind == "sh"


def test_a_fresh_project_built_from_the_readme_serves_mcp_with_step_up(tmp_path):
    project = RecipeProject(tmp_path)
    try:
        for step in recipe_steps((ROOT / "README.md").read_text()):
            project.apply(step)
        assert project.server is not None, "the recipe never starts the server"
        session = Session(project, Browser("demo", "demo"))  # type: ignore[arg-type]

        async def flow() -> dict:
            seen = {}
            async with session.connect() as client:
                seen["tools"] = sorted(tool.name for tool in (await client.list_tools()).tools)
                seen["scope"] = session.storage.tokens.scope if session.storage.tokens else None
                seen["before"] = structured(await client.call_tool("list_notes", {}))
                seen["added"] = structured(await client.call_tool("add_note", {"text": "hello"}))
                seen["after"] = structured(await client.call_tool("list_notes", {}))
                seen["stepped_up"] = session.storage.tokens.scope if session.storage.tokens else None
            return seen

        seen = run(flow())
        session.browser.close()
    finally:
        project.stop()
    first = next(exchange for exchange in session.exchanges if exchange[1] == "/mcp")
    assert first[2] == 401 and 'scope="notes:read"' in first[3]
    assert session.statuses("/o/register/") == [201]
    assert seen["tools"] == ["add_note", "list_notes"]  # add_note is listed: step-up can reach it
    assert seen["scope"] == "notes:read"
    assert seen["before"] == {"result": []}
    forbidden = [exchange for exchange in session.exchanges if exchange[1] == "/mcp" and exchange[2] == 403]
    assert len(forbidden) == 1 and 'scope="notes:write"' in forbidden[0][3]
    assert seen["added"] == {"result": "Saved: hello"}
    assert seen["after"] == {"result": ["hello"]}
    assert "notes:write" in seen["stepped_up"].split()
