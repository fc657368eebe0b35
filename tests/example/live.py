"""Run the example project as a real server process, and play the person at the browser.

``ExampleServer`` migrates a database of its own (a temporary SQLite file, or a fresh PostgreSQL
database on the server named by ``DATABASE_URL``), loads the demo data with ``setup_demo``, and
serves the project under gunicorn (WSGI) or uvicorn (ASGI) on a free port of 127.0.0.1. With
``REDIS_URL`` set it uses Redis as its cache, under a key prefix of its own.

``Browser`` follows an authorization URL the way a person would: it signs in through the real
login page (with its CSRF token) and approves (or denies) on the real consent page.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from tests.live import ROOT, LiveServer


class _Database:
    """A database for one server: SQLite file, or a throwaway PostgreSQL database."""

    def __init__(self, workdir: Path, url: str | None = None) -> None:
        self.url = os.environ.get("DATABASE_URL", "") if url is None else url
        self._pg_name: str | None = None
        if self.url.startswith("postgres"):
            import psycopg

            parts = urlsplit(self.url)
            self._admin_url = parts._replace(path="/postgres").geturl()
            self._pg_name = f"example_live_{secrets.token_hex(6)}"
            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self._pg_name}"')
            self.env = {"DATABASE_URL": parts._replace(path=f"/{self._pg_name}").geturl()}
        else:
            self.env = {"EXAMPLE_SQLITE_PATH": str(workdir / "db.sqlite3"), "DATABASE_URL": ""}

    def drop(self) -> None:
        if self._pg_name:
            import psycopg

            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')


# the example project as a server --------------------------------------------------------------
_KINDS: dict[str, dict[str, Any]] = {
    "wsgi": {
        "server": "gunicorn", "app": "example_project.wsgi:application", "worker_class": "gthread", "threads": 4,
        "extra_args": ["--timeout", "60", "--no-control-socket"],
    },
    "runserver": {"server": "runserver", "manage_py": True},
    "asgi": {"server": "uvicorn", "app": "example_project.asgi:application", "lifespan": "auto"},
}  # fmt: skip


class ExampleServer:
    """The example under ``kind``; subclasses serve another project (``settings_module``, ``apps``,
    ``load_data``). ``database_url`` (a PostgreSQL server) and ``server_options`` (e.g.
    ``{"workers": 2}``) override the defaults; keyword arguments are added to its environment.
    ``database_of`` (a started server) serves that server's database instead of a new one: it is
    neither migrated nor loaded again, and dropped only by its owner."""

    settings_module = "tests.example.live_settings"
    apps = {"wsgi": "example_project.wsgi:application", "asgi": "example_project.asgi:application"}

    def __init__(
        self,
        kind: str = "wsgi",
        *,
        database_url: str | None = None,
        server_options: dict[str, Any] | None = None,
        database_of: ExampleServer | None = None,
        **env: str,
    ) -> None:
        assert kind in _KINDS
        self.database_of = database_of
        self.kind = kind
        self.extra_env = env
        self.database_url = database_url
        self.server_options = server_options or {}
        self._workdir = Path(tempfile.mkdtemp(prefix="example-live-"))
        self._db: _Database | None = None
        self._live: LiveServer | None = None
        self._demo_loaded = False

    @property
    def port(self) -> int:
        assert self._live is not None, "the server is not started"
        return self._live.port

    @property
    def base_url(self) -> str:
        assert self._live is not None, "the server is not started"
        return self._live.url

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE=self.settings_module,
            CIMD_DOCUMENTS_DIR=str(self._workdir / "cimd"),
            PYTHONPATH=str(ROOT),
            CACHE_KEY_PREFIX=f"example-live-{secrets.token_hex(6)}",
            DJANGO_DEBUG="0",
        )
        assert self._db is not None
        env.update(self._db.env)
        env.update(self.extra_env)
        return env

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def _load_demo(self, port: int) -> None:
        if not self._demo_loaded:
            self.load_data(port)
            self._demo_loaded = True

    def load_data(self, port: int) -> None:
        """Fill the fresh database (once, before the first start); ``port`` is the one it will serve on."""
        self.manage("setup_demo", "--port", str(port))  # --port only shapes the URLs the command prints

    def start(self) -> ExampleServer:
        if self.database_of is not None:
            assert self.database_of._db is not None, "start the server whose database this one serves first"
            self._db = self.database_of._db
            self._demo_loaded = True
        else:
            self._db = _Database(self._workdir, self.database_url)
            self.manage("migrate", "--noinput", "-v", "0")
        env = self.env
        options = dict(_KINDS[self.kind])
        if "app" in options:
            options["app"] = self.apps[self.kind]
        self._live = LiveServer(
            env["DJANGO_SETTINGS_MODULE"],
            env=env,
            ready_path="/.well-known/oauth-authorization-server",
            ready_status=200,
            prepare=self._load_demo,
            **{**options, **self.server_options},
        )
        try:
            self._live.start()
        except BaseException:
            self.stop()
            raise
        return self

    def publish_client_document(self, client_id: str, document: dict) -> None:
        """Serve a Client ID Metadata Document for ``client_id`` (see tests/example/live_settings.py)."""
        from tests.example.cimd_fetcher import document_path

        directory = self._workdir / "cimd"
        directory.mkdir(exist_ok=True)
        document_path(directory, client_id).write_text(json.dumps(document))

    def log(self) -> str:
        return self._live.log() if self._live is not None else ""

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
        if self._db is not None and self.database_of is None:
            self._db.drop()
        self._db = None
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> ExampleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# the person at the browser ------------------------------------------------------------------------
class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict] = {}
        self._current: dict | None = None
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._current = {"action": attributes.get("action", ""), "fields": {}, "submits": []}
            self.forms[attributes.get("id", f"form-{len(self.forms)}")] = self._current
        elif self._current is not None and tag in ("input", "button"):
            kind = attributes.get("type", "submit" if tag == "button" else "text")
            if kind == "submit":
                self._current["submits"].append((attributes.get("name"), attributes.get("value", "")))
            elif "name" in attributes:
                self._current["fields"][attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def parse_forms(html: str) -> dict[str, dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class Browser:
    """A person with a browser: a cookie jar, and the habit of reading the page before clicking."""

    def __init__(self, username: str = "demo", password: str = "demo") -> None:
        self.username = username
        self.password = password
        self.client = httpx.Client(timeout=30, follow_redirects=False)
        self.pages: list[httpx.Response] = []

    def close(self) -> None:
        self.client.close()

    def _get(self, url: str) -> httpx.Response:
        response = self.client.get(url)
        self.pages.append(response)
        return response

    def authorize(self, authorization_url: str, *, approve: bool = True) -> httpx.Response:
        """Follow the authorization URL until it leaves for the client's redirect URI; return that response.

        The returned response is either a redirect away from the server (the client's callback)
        or a page the flow stopped on (an error page).
        """
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorization_url))
        response = self._get(authorization_url)
        signed_in = False
        for _ in range(10):
            if response.status_code in (301, 302, 303):
                location = urljoin(str(response.url), response.headers["location"])
                if not location.startswith(origin):
                    return response
                response = self._get(location)
                continue
            if response.status_code != 200:
                return response
            forms = parse_forms(response.text)
            if "login-form" in forms:
                if signed_in:
                    return response  # the sign-in failed
                signed_in = True
                response = self._submit(
                    response, forms["login-form"], {"username": self.username, "password": self.password}
                )
            elif "consent-form" in forms:
                form = forms["consent-form"]
                assert len(forms) == 1, f"the consent page holds other forms: {list(forms)}"
                extra = {"allow": "Allow"} if approve else {}
                assert ("allow", "Allow") in form["submits"]
                response = self._submit(response, form, extra)
            else:
                return response
        raise AssertionError("too many steps in the authorization flow")

    def _submit(self, page: httpx.Response, form: dict, values: dict[str, str]) -> httpx.Response:
        url = urljoin(str(page.url), form["action"]) if form["action"] else str(page.url)
        data = {**form["fields"], **values}
        response = self.client.post(url, data=data, headers={"Referer": str(page.url)})
        self.pages.append(response)
        return response


class AdminSession:
    """A superuser in the real admin: signed in through its login form (with CSRF), running the
    scope changelist's bulk actions. ``base_url`` of each call may name any server of the same
    database (it signs in there first if it has not yet)."""

    def __init__(self, base_url: str, username: str = "admin", password: str = "admin") -> None:
        self.base_url = base_url
        self.username = username
        self.password = password
        # Idle connections are dropped before the server drops them (gunicorn after 2 s): a POST on
        # a connection the server is closing gets no answer.
        self.client = httpx.Client(timeout=30, follow_redirects=False, limits=httpx.Limits(keepalive_expiry=1.0))
        self._signed_in: set[str] = set()
        self._ids: dict[str, str] = {}

    def close(self) -> None:
        self.client.close()

    def sign_in(self, base_url: str) -> None:
        login = self.client.get(f"{base_url}/admin/login/?next=/admin/")
        if login.status_code == 302:  # the session cookie of another server of this database
            self._signed_in.add(base_url)
            return
        assert login.status_code == 200, login.status_code
        form = parse_forms(login.text)["login-form"]
        response = self.client.post(
            f"{base_url}/admin/login/?next=/admin/",
            data={**form["fields"], "username": self.username, "password": self.password},
            headers={"Referer": str(login.url)},
        )
        assert response.status_code == 302, f"the admin login failed ({response.status_code})"
        self._signed_in.add(base_url)

    def bulk_action(self, action: str, names: list[str], base_url: str | None = None) -> httpx.Response:
        """Run ``action`` (e.g. ``activate``, ``deactivate``) on the named scopes; the admin's answer."""
        base_url = base_url or self.base_url
        if base_url not in self._signed_in:
            self.sign_in(base_url)
        changelist = f"{base_url}/admin/mcp_scopes/scope/"
        if not all(name in self._ids for name in names):
            listing = self.client.get(changelist)
            assert listing.status_code == 200, listing.status_code
            for name in names:
                self._ids[name] = _scope_id(listing.text, name)
        token = self.client.cookies.get("csrftoken")
        return self.client.post(
            changelist,
            data={
                "action": action,
                "_selected_action": [self._ids[name] for name in names],
                "csrfmiddlewaretoken": token,
                "index": "0",
            },
            headers={"Referer": changelist},
        )


def _scope_id(html: str, name: str) -> str:
    import re

    match = re.search(r'href="/admin/mcp_scopes/scope/(\d+)/change/[^"]*">' + re.escape(name) + "<", html)
    assert match, f"scope {name} is not in the admin's list"
    return match.group(1)
