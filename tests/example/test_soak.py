"""An oracle-checked soak of the example's MCP endpoint, in process (issue 11).

Threads send the mix of ``tests/example/soak.py`` (every tool, resource and prompt of the example,
legacy and 2026-07-28 requests, tokens of every kind: valid with various scopes, expired, revoked
mid-run, for another audience, unbound, malformed, unknown) for 3 users and 6 clients through
Django's test client, while another thread revokes tokens and switches scopes off and on through
the models. The oracle (``soak.expected_statuses``) checks every answer against the state when the
request was sent, within the documented propagation window; no answer may carry another user's
data, and every user's entry must be untouched by the others at the end.

``SOAK_REQUESTS`` (default 10^4 in ``make test``; ``make soak`` sends 10^5) and ``SOAK_THREADS``
set the size. The run prints a summary line and writes ``SOAK_REPORT`` (a temporary file unless
set) with latency percentiles per outcome.

The same mix against 4 real server processes (gunicorn and uvicorn, the admin over HTTP, DOT's
revocation endpoint) is ``tests/example/test_soak_servers.py``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import close_old_connections
from django.test import Client, override_settings
from oauth2_provider.models import AccessToken

from django_mcp_scopes.models import Scope
from example_project.journal.models import Entry
from tests.example import soak

MCP_RESOURCE = "http://testserver/mcp"


@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db(transaction=True)
def test_soak_every_answer_matches_the_oracle(tmp_path):
    total = int(os.environ.get("SOAK_REQUESTS", "10000"))
    threads = int(os.environ.get("SOAK_THREADS", "4"))
    report_path = Path(os.environ.get("SOAK_REPORT", tmp_path / "soak-report.json"))
    call_command("setup_demo", "--no-admin", verbosity=0, stdout=None)
    seed = int(os.environ.get("SOAK_SEED", "11"))
    mix, _ = soak.load(soak.populate(MCP_RESOURCE, seed))
    rng = random.Random(seed)
    state = soak.State()
    results: list[soak.Result] = []
    results_lock = threading.Lock()
    counter = iter(range(total))
    counter_lock = threading.Lock()
    stop = threading.Event()

    def next_index() -> int | None:
        with counter_lock:
            return next(counter, None)

    def worker(seed: int) -> None:
        local = random.Random(seed)
        client = Client()
        try:
            while (index := next_index()) is not None:
                modern = index % 2 == 0
                token, operation, body, headers = mix.request(local, index, modern)
                extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
                extra.pop("HTTP_CONTENT_TYPE")
                sent = time.monotonic()
                response = client.post("/mcp", data=json.dumps(body), content_type="application/json", **extra)
                done = time.monotonic()
                text = response.content.decode("utf-8", "replace")
                result = soak.Result(
                    sent, done, response.status_code, token, operation, modern,
                    mix.foreign_data(token, operation, response.status_code, text),
                )  # fmt: skip
                with results_lock:
                    results.append(result)
        finally:
            close_old_connections()

    def mutator() -> None:
        """Admin-like changes during the run: revocations, scopes off and on again."""
        valid = [t for t in mix.tokens if t.kind == "valid"]
        try:
            while not stop.is_set():
                stop.wait(0.3)
                victim = rng.choice(valid)
                # Revoke at most a third of the valid tokens, so a long run keeps a real mix.
                room = len(state.revocations) < len(valid) // 3
                start = time.monotonic()
                if room and victim.value not in state.revocations and rng.random() < 0.5:
                    AccessToken.objects.get(token=victim.value).revoke()
                    state.revoke(victim.value, start, time.monotonic())
                else:
                    scope = Scope.objects.get(name=rng.choice(soak.TOGGLED))
                    scope.is_active = not scope.is_active
                    scope.save()
                    state.switch(scope.name, scope.is_active, start, time.monotonic())
        finally:
            close_old_connections()

    with override_settings(
        # The refusal record stays on (its default): it writes at most once a second per process.
        MCP_SCOPES={
            "TOKEN_LOCAL_CACHE_SECONDS": 0.5,
            "REGISTRY_REFRESH_SECONDS": 0.5,
            "TOKEN_CACHE_SECONDS": 30,
        }
    ):
        started = time.monotonic()
        workers = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads)]
        changer = threading.Thread(target=mutator)
        changer.start()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=max(600, total / 5))
        stop.set()
        changer.join(timeout=30)
        duration = time.monotonic() - started
    assert not any(thread.is_alive() for thread in workers), "a request loop did not finish in time"

    titles = dict(Entry.objects.filter(pk__in=[p.entry for p in mix.principals.values()]).values_list("pk", "title"))
    touched = soak.untouched_entries(mix, titles)
    summary = soak.summarize(results, state, duration, report_path, {"entries_changed_by_others": touched})
    print("\n" + summary.line)
    assert len(results) == total
    assert summary.errors == [], summary.report["first_errors"]
    assert summary.leaks == [], summary.report["first_leaks"]
    assert touched == []
    assert summary.wrong == [], summary.report["first_wrong"]
