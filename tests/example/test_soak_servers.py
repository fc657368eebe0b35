"""The oracle-checked soak over 4 real server processes (issue 11).

The example project runs as 2 gunicorn servers (gthread, 1 worker of 4 threads each) and 2 uvicorn
servers, 4 processes serving one database (the PostgreSQL server of ``DATABASE_URL``, else a SQLite
file) and one cache (Redis when ``REDIS_URL`` is set, else the example's file cache next to the
SQLite file), behind one public origin (``DJANGO_BASE_URL``), as behind a load balancer.
Threads with keep-alive HTTP clients (httpx) send the mix of ``tests/example/soak.py`` (every tool,
resource and prompt of the example, legacy and 2026-07-28 requests, tokens of every kind, 3 users,
6 clients), request ``i`` to server ``i % 4``. Concurrently, a superuser signed in to the real admin
(login form, CSRF) switches scopes off and on with the changelist's bulk actions, and tokens are
revoked through django-oauth-toolkit's ``/o/revoke_token/`` with their client's credentials, each
through any of the 4 servers. The oracle checks every answer against the state at that moment
within the documented propagation window; no answer may carry another user's data, and every
user's entry must be untouched by the others at the end.

``SOAK_REQUESTS`` (default 10^4 in ``make test``; ``make soak`` sends 10^5) and
``SOAK_SERVER_THREADS`` (8) set the size. The run prints a summary line and writes
``SOAK_SERVERS_REPORT`` (a temporary file unless set) with latency percentiles per outcome and per
server kind.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.example import soak
from tests.example.live import AdminSession, ExampleServer

pytestmark = pytest.mark.live

# The public origin the 4 processes share; tokens are bound to its /mcp.
PUBLIC_ORIGIN = "http://journal.soak.test"
RESOURCE = f"{PUBLIC_ORIGIN}/mcp"
SERVERS = [("wsgi", "gunicorn"), ("asgi", "uvicorn"), ("wsgi", "gunicorn"), ("asgi", "uvicorn")]
SEED = int(os.environ.get("SOAK_SEED", "11"))
POPULATE = f"from tests.example.soak import populate\nprint(json.dumps(populate({RESOURCE!r}, {SEED})))"
REQUEST_TIMEOUT = 30.0  # seconds: no single request may take longer (a hang, not a slow answer)


@pytest.fixture
def servers_and_data():
    """The 4 servers, and the soak's data (``soak.populate``) in their database."""
    prefix = f"soak-{secrets.token_hex(6)}"
    env = {"DJANGO_BASE_URL": PUBLIC_ORIGIN, "CACHE_KEY_PREFIX": prefix}

    def server(kind: str, first: ExampleServer | None) -> ExampleServer:
        options = {"workers": 1, "threads": 4} if kind == "wsgi" else {}
        return ExampleServer(kind, server_options=options, database_of=first, **env)

    started = [server(SERVERS[0][0], None).start()]
    try:
        # The others serve the first one's database: they start together once it is ready.
        others = [server(kind, started[0]) for kind, _ in SERVERS[1:]]
        with ThreadPoolExecutor(len(others) + 1) as pool:
            futures = [pool.submit(other.start) for other in others]
            populated = pool.submit(_shell_json, started[0], POPULATE)
        started += [other for other, future in zip(others, futures) if future.exception() is None]
        for future in futures:
            future.result()
        assert len({running.base_url for running in started}) == len(SERVERS)
        yield started, populated.result()
    finally:
        for running in reversed(started):  # the first one owns the database: it goes last
            running.stop()
        if os.environ.get("REDIS_URL"):
            import redis

            client = redis.Redis.from_url(os.environ["REDIS_URL"])
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)


def _failures(log: str) -> str:
    """The tracebacks and errors of a server's log (the last ones)."""
    lines = [line for line in log.splitlines() if "Traceback" in line or "Error" in line or "error" in line]
    return "\n".join(lines[-30:])


def _shell_json(server: ExampleServer, code: str) -> object:
    printed = server.manage("shell", "-c", f"import json\n{code}").strip().splitlines()
    return json.loads(printed[-1])


def test_soak_over_four_server_processes(servers_and_data, tmp_path):
    servers, data = servers_and_data
    total = int(os.environ.get("SOAK_REQUESTS", "10000"))
    threads = int(os.environ.get("SOAK_SERVER_THREADS", "8"))
    report_path = Path(os.environ.get("SOAK_SERVERS_REPORT", tmp_path / "soak-servers-report.json"))
    seed = SEED
    # Bounded in time as well as in count: at least 40 requests a second, or the run fails.
    deadline_seconds = 120 + total / 40
    mix, client_secrets = soak.load(data)  # type: ignore[arg-type]
    names = [f"{program}-{number}" for number, (_, program) in enumerate(SERVERS)]
    urls = [server.base_url for server in servers]
    rng = random.Random(seed)
    state = soak.State()
    results: list[soak.Result] = []
    results_lock = threading.Lock()
    counter = iter(range(total))
    counter_lock = threading.Lock()
    stop = threading.Event()
    problems: list[str] = []
    started = time.monotonic()

    def next_index() -> int | None:
        if time.monotonic() - started > deadline_seconds:
            return None
        with counter_lock:
            return next(counter, None)

    def worker(seed: int) -> None:
        local = random.Random(seed)
        # Idle connections are dropped well before the servers drop them (tests/live.py: after 15 s):
        # a POST on a connection the server is closing gets no answer, and is not retried.
        limits = httpx.Limits(keepalive_expiry=1.0)
        clients = [httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits) for url in urls]
        try:
            while (index := next_index()) is not None:
                modern = local.random() < 0.5
                token, operation, body, headers = mix.request(local, index, modern)
                target = index % len(clients)
                sent = time.monotonic()
                try:
                    response = clients[target].post("/mcp", content=json.dumps(body), headers=headers)
                    status, text, error = response.status_code, response.text, ""
                except httpx.HTTPError as exc:
                    status, text, error = None, "", f"{type(exc).__name__}: {exc}"
                done = time.monotonic()
                result = soak.Result(
                    sent, done, status, token, operation, modern,
                    mix.foreign_data(token, operation, status or 0, text), names[target], error,
                )  # fmt: skip
                with results_lock:
                    results.append(result)
        finally:
            for client in clients:
                client.close()

    def mutator() -> None:
        """The administrator and the clients, during the run: scope switches in the admin, revocations."""
        admin = AdminSession(urls[0])
        valid = [t for t in mix.tokens if t.kind == "valid"]
        active = dict.fromkeys(soak.TOGGLED, True)
        turn = 0
        try:
            while not stop.wait(0.3):
                turn += 1
                url = urls[turn % len(urls)]
                victim = rng.choice(valid)
                # Revoke at most a third of the valid tokens, so a long run keeps a real mix.
                room = len(state.revocations) < len(valid) // 3
                start = time.monotonic()
                if room and victim.value not in state.revocations and rng.random() < 0.5:
                    assert victim.client_id is not None
                    response = httpx.post(
                        f"{url}/o/revoke_token/",
                        data={"token": victim.value, "token_type_hint": "access_token"},
                        auth=(victim.client_id, client_secrets[victim.client_id]),
                        timeout=REQUEST_TIMEOUT,
                    )
                    if response.status_code != 200:
                        problems.append(f"revocation answered {response.status_code}: {response.text[:200]}")
                        return
                    state.revoke(victim.value, start, time.monotonic())
                else:
                    name = rng.choice(soak.TOGGLED)
                    action = "deactivate" if active[name] else "activate"
                    response = admin.bulk_action(action, [name], base_url=url)
                    if response.status_code != 302:
                        problems.append(f"the admin's {action} answered {response.status_code}")
                        return
                    active[name] = not active[name]
                    state.switch(name, active[name], start, time.monotonic())
        except Exception as exc:  # a failed change must fail the test, not end the thread quietly
            problems.append(f"the mutator stopped: {type(exc).__name__}: {exc}")
        finally:
            admin.close()

    workers = [threading.Thread(target=worker, args=(seed + number,)) for number in range(threads)]
    changer = threading.Thread(target=mutator)
    changer.start()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=deadline_seconds + REQUEST_TIMEOUT + 30)
    stop.set()
    changer.join(timeout=60)
    duration = time.monotonic() - started
    assert not any(thread.is_alive() for thread in [*workers, changer]), "a request loop did not finish in time"

    titles = _shell_json(
        servers[0],
        "from example_project.journal.models import Entry\n"
        "print(json.dumps({e.pk: e.title for e in Entry.objects.filter(title__startswith='secret-of-')}))",
    )
    touched = soak.untouched_entries(mix, {int(pk): title for pk, title in titles.items()})  # type: ignore[union-attr]
    database = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    cache = "Redis" if os.environ.get("REDIS_URL") else "file cache"
    summary = soak.summarize(
        results, state, duration, report_path,
        {"servers": dict(zip(names, urls)), "database": database, "cache": cache, "threads": threads,
         "entries_changed_by_others": touched, "mutator_problems": problems},
    )  # fmt: skip
    print(f"\n{summary.line} ({database}, {cache})")
    if problems or summary.errors:
        for name, server in zip(names, servers):
            print(f"--- {name}: what its log says went wrong ---\n{_failures(server.log())}")
    assert problems == []
    assert len(results) == total, f"only {len(results)} of {total} requests within {deadline_seconds:.0f}s"
    assert summary.errors == [], summary.report["first_errors"]
    assert summary.leaks == [], summary.report["first_leaks"]
    assert touched == []
    assert summary.wrong == [], summary.report["first_wrong"]
    for name in names:  # every process served, and served real answers
        answered = [r for r in results if r.server == name and r.status == 200]
        assert len(answered) > total / 40, f"{name} answered 200 only {len(answered)} times"
    assert state.revocations and any(state.switches.values()), "nothing changed during the run"
