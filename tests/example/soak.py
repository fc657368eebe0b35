"""The soak's load mix, its oracle and its report (issue 11), shared by both soaks.

``tests/example/test_soak.py`` sends the mix in process (Django's test client);
``tests/example/test_soak_servers.py`` sends it over HTTP to 4 real server processes. Both build
each request with ``Mix.request``, record a ``Result`` per answer, and hand the results to
``summarize``, which checks every answer against the oracle and writes the report.

The oracle is written from the example's declarations (example_project/journal/mcp.py, read by a
person), not from the package's decisions: what each operation needs, what each scope implies, and
the state (revocations, scope switches) recorded by the test as it changed it. A change is
recorded as an interval (from the call that makes it to its return): an answer that ended before
the change began must follow the old state, a request sent ``PROPAGATION_SECONDS`` after the
change returned must follow the new one, and anything in between may follow either.
"""

from __future__ import annotations

import itertools
import json
import random
import statistics
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
# Token facts reach every process within TOKEN_LOCAL_CACHE_SECONDS, scope changes within
# REGISTRY_REFRESH_SECONDS (docs/enforcement.md, docs/faults.md): 0.5 s each by default, 1 s
# together, plus scheduling slack on a loaded 2-core machine.
PROPAGATION_SECONDS = 1.5
IMPLIES = {"entries:write": {"entries:read"}, "tags:write": {"tags:read"}}
# The scopes the admin switches off and on during a run: one that implies another, one implied.
TOGGLED = ("entries:write", "tags:read")
GRANTS = ["user:read", "entries:read", "entries:write", "tags:read", "tags:write", "entries:write tags:write user:read"]
# Token kinds the server must refuse with 401 whatever the state (malformed: invalid_request).
REFUSED_KINDS = frozenset({"malformed", "expired", "audience", "unbound", "unknown"})
MISSING = 999_999  # an id no user has


@dataclass(frozen=True)
class Operation:
    """One operation of the example and what it needs, as declared next to it."""

    method: str
    name: str
    arguments: dict[str, Any]
    needed: frozenset[str]
    label: str = ""
    # Allowed, and then refused by its handler with a JSON-RPC error (not a tool error): a missing
    # or foreign resource. The 2026-07-28 transport maps that error to an HTTP status (400 for
    # -32602), the legacy one answers 200.
    handler_error: bool = False

    @property
    def title(self) -> str:
        return self.label or f"{self.method} {self.name}".strip()


def _op(
    method: str, target: str, needed: Iterable[str], label: str = "", handler_error: bool = False, **arguments: Any
) -> Operation:
    return Operation(method, target, arguments, frozenset(needed), label, handler_error)


# Every tool, resource and prompt of the example (and the listings). ENTRY / TAG stand for the
# token's user's own entry and tag, FOREIGN_ENTRY for another user's entry: reading, changing or
# deleting it must fail inside a 200 and never show or touch it.
OPERATIONS: list[Operation] = [
    _op("tools/call", "whoami", {"user:read"}),
    _op("tools/call", "list_entries", {"entries:read"}),
    _op("tools/call", "get_entry", {"entries:read"}, entry_id="ENTRY"),
    _op("tools/call", "get_entry", {"entries:read"}, "tools/call get_entry (another user's)", entry_id="FOREIGN_ENTRY"),
    _op("tools/call", "create_entry", {"entries:write"}, title="soak", content="x"),
    _op("tools/call", "update_entry", {"entries:write"}, entry_id="ENTRY", content="changed by the soak"),
    _op("tools/call", "update_entry", {"entries:write"}, "tools/call update_entry (another user's)",
        entry_id="FOREIGN_ENTRY", title="stolen"),
    _op("tools/call", "delete_entry", {"entries:write"}, "tools/call delete_entry (another user's)",
        entry_id="FOREIGN_ENTRY"),
    _op("tools/call", "delete_entry", {"entries:write"}, "tools/call delete_entry (missing)", entry_id=MISSING),
    _op("tools/call", "list_tags", {"tags:read"}),
    _op("tools/call", "get_tag", {"tags:read"}, tag_id="TAG"),
    _op("tools/call", "create_tag", {"tags:write"}, name="UNIQUE"),
    _op("tools/call", "update_tag", {"tags:write"}, tag_id="TAG", description="changed by the soak"),
    _op("tools/call", "delete_tag", {"tags:write"}, "tools/call delete_tag (missing)", tag_id=MISSING),
    _op("tools/call", "add_tag_to_entry", {"tags:write", "entries:write"}, entry_id="ENTRY", tag_id="TAG"),
    _op("resources/read", "journal://entries/ENTRY", {"entries:read"}),
    _op("resources/read", "journal://entries/FOREIGN_ENTRY", {"entries:read"}, "resources/read (another user's entry)",
        handler_error=True),
    _op("resources/read", "journal://tags/TAG", {"tags:read"}),
    _op("resources/read", f"journal://tags/{MISSING}", {"tags:read"}, "resources/read (missing tag)",
        handler_error=True),
    _op("prompts/get", "suggest_tags", {"entries:read", "tags:read"}, entry_id="ENTRY"),
    _op("tools/list", "", ()),
    _op("resources/list", "", ()),
    _op("resources/templates/list", "", ()),
    _op("prompts/list", "", ()),
]  # fmt: skip


@dataclass
class Principal:
    """A user of the soak: the secret in their entry's title, their entry and tag."""

    username: str
    secret: str
    entry: int
    tag: int


@dataclass
class Token:
    kind: str
    value: str
    scopes: frozenset[str]
    user: str | None  # username
    client_id: str | None = None


class Mix:
    """Builds each request: a token of any kind, an operation, its arguments for that token's user."""

    def __init__(self, principals: dict[str, Principal], tokens: list[Token]) -> None:
        self.principals = principals
        self.tokens = tokens

    def request(self, rng: random.Random, index: int, modern: bool) -> tuple[Token, Operation, dict[str, Any], dict]:
        """The token, the operation, the JSON-RPC body and the extra headers of request ``index``."""
        token = rng.choice(self.tokens)
        operation = rng.choice(OPERATIONS)
        own = self.principals.get(token.user or "") or next(iter(self.principals.values()))
        others = [p for name, p in sorted(self.principals.items()) if name != own.username]
        foreign = rng.choice(others)
        values = {"ENTRY": own.entry, "TAG": own.tag, "FOREIGN_ENTRY": foreign.entry, "UNIQUE": f"t{index}"}
        arguments = {k: values.get(v, v) if isinstance(v, str) else v for k, v in operation.arguments.items()}
        if operation.method == "tools/call":
            params: dict[str, Any] = {"name": operation.name, "arguments": arguments}
            mcp_name = operation.name
        elif operation.method == "resources/read":
            uri = operation.name
            for placeholder in ("FOREIGN_ENTRY", "ENTRY", "TAG"):
                uri = uri.replace(placeholder, str(values[placeholder]))
            params, mcp_name = {"uri": uri}, uri
        elif operation.method == "prompts/get":
            params = {"name": operation.name, "arguments": {k: str(v) for k, v in arguments.items()}}
            mcp_name = operation.name
        else:
            params, mcp_name = {}, ""
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token.value}",
        }
        if modern:
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            headers.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": operation.method})
            if mcp_name:
                headers["Mcp-Name"] = mcp_name
        else:
            headers["MCP-Protocol-Version"] = LEGACY
        body = {"jsonrpc": "2.0", "id": index, "method": operation.method, "params": params}
        return token, operation, body, headers

    def foreign_data(self, token: Token, operation: Operation, status: int, text: str) -> list[str]:
        """What in an answer belongs to a principal other than the token's (empty when nothing)."""
        found = [
            f"{p.username}'s entry" for name, p in self.principals.items() if name != token.user and p.secret in text
        ]
        compact = text.replace(" ", "").replace("\\", "")
        answered = operation.name == "whoami" and status == 200 and '"isError":true' not in compact
        if answered and f'"username":"{token.user}"' not in compact:
            found.append(f"whoami did not answer {token.user}")
        return found


@dataclass
class Change:
    start: float
    end: float
    active: bool = False


class State:
    """What the oracle knows: revocations and scope switches, each over the interval it took."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.revocations: dict[str, Change] = {}
        self.switches: dict[str, list[Change]] = defaultdict(list)

    def revoke(self, token: str, start: float, end: float) -> None:
        with self.lock:
            self.revocations[token] = Change(start, end, True)

    def switch(self, scope: str, active: bool, start: float, end: float) -> None:
        with self.lock:
            self.switches[scope].append(Change(start, end, active))

    def _states(self, changes: list[Change], initial: bool, sent: float, done: float) -> set[bool]:
        states = {initial}
        for change in changes:  # in the order they were made, one at a time
            if change.end + PROPAGATION_SECONDS <= sent:
                states = {change.active}
            elif change.start < done:
                states |= {change.active}
        return states

    def revoked(self, token: str, sent: float, done: float) -> set[bool]:
        with self.lock:
            change = self.revocations.get(token)
        return self._states([change] if change else [], False, sent, done)

    def scope_active(self, name: str, sent: float, done: float) -> set[bool]:
        with self.lock:
            changes = list(self.switches.get(name, ()))
        return self._states(changes, True, sent, done)


def effective(granted: Iterable[str], inactive: set[str]) -> set[str]:
    """What ``granted`` gives when ``inactive`` scopes are switched off (cut out of the graph)."""
    result: set[str] = set()
    for name in set(granted) - inactive:
        result |= {name} | (IMPLIES.get(name, set()) - inactive)
    return result


def expected_statuses(
    token: Token, operation: Operation, modern: bool, state: State, sent: float, done: float
) -> set[int]:
    needed = operation.needed
    allowed = 400 if modern and operation.handler_error else 200
    if token.kind in REFUSED_KINDS:
        return {401}
    outcomes: set[int] = set()
    for revoked in state.revoked(token.value, sent, done):
        if revoked:
            outcomes.add(401)
            continue
        choices = [sorted(state.scope_active(name, sent, done)) for name in TOGGLED]
        for actives in itertools.product(*choices):
            inactive = {name for name, active in zip(TOGGLED, actives) if not active}
            outcomes.add(allowed if needed <= effective(token.scopes, inactive) else 403)
    return outcomes


@dataclass
class Result:
    sent: float
    done: float
    status: int | None  # None: no HTTP answer
    token: Token
    operation: Operation
    modern: bool
    foreign: list[str] = field(default_factory=list)
    server: str = "in-process"
    error: str = ""


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 2)


def _latencies(results: Iterable[Result]) -> dict[str, dict[str, float]]:
    by_outcome: dict[str, list[float]] = defaultdict(list)
    for result in results:
        by_outcome[str(result.status)].append(result.done - result.sent)
    return {
        outcome: {
            "count": len(values),
            "p50": _percentile(values, 0.5),
            "p95": _percentile(values, 0.95),
            "p99": _percentile(values, 0.99),
            "max": round(max(values) * 1000, 2),
            "mean": round(statistics.fmean(values) * 1000, 2),
        }
        for outcome, values in sorted(by_outcome.items())
    }


@dataclass
class Summary:
    report: dict[str, Any]
    wrong: list[dict[str, Any]]
    leaks: list[Result]
    errors: list[Result]
    line: str


def summarize(
    results: list[Result], state: State, duration: float, report_path: Path, extra: dict[str, Any] | None = None
) -> Summary:
    """Check every answer against the oracle; write the JSON report; build the summary line."""
    wrong: list[dict[str, Any]] = []
    leaks = [result for result in results if result.foreign]
    errors = [result for result in results if result.status is None or result.status >= 500]
    for result in results:
        allowed = expected_statuses(result.token, result.operation, result.modern, state, result.sent, result.done)
        if result.status not in allowed:
            wrong.append(
                {
                    "status": result.status, "expected": sorted(allowed), "kind": result.token.kind,
                    "scopes": sorted(result.token.scopes), "operation": result.operation.title,
                    "modern": result.modern, "server": result.server, "sent": round(result.sent, 3),
                    "error": result.error,
                }
            )  # fmt: skip
    servers = sorted({result.server for result in results})
    kinds = sorted({result.server.split("-")[0] for result in results})
    revocations = len(state.revocations)
    switches = sum(len(changes) for changes in state.switches.values())
    report = {
        "requests": len(results),
        "seconds": round(duration, 2),
        "requests_per_second": round(len(results) / duration, 1) if duration else None,
        "wrong_decisions": len(wrong),
        "foreign_data": len(leaks),
        "server_errors": len(errors),
        "revocations": revocations,
        "scope_switches": switches,
        "outcomes": dict(sorted(Counter(str(result.status) for result in results).items())),
        "token_kinds": dict(sorted(Counter(result.token.kind for result in results).items())),
        "operations": dict(sorted(Counter(result.operation.title for result in results).items())),
        "requests_per_server": {server: sum(r.server == server for r in results) for server in servers},
        "latency_ms": _latencies(results),
        "latency_ms_per_server_kind": {
            kind: _latencies(r for r in results if r.server.split("-")[0] == kind) for kind in kinds
        },
        "first_wrong": wrong[:5],
        "first_leaks": [
            {"operation": r.operation.title, "user": r.token.user, "found": r.foreign, "server": r.server}
            for r in leaks[:5]
        ],
        "first_errors": [{"status": r.status, "error": r.error, "server": r.server} for r in errors[:5]],
        **(extra or {}),
    }
    report_path.write_text(json.dumps(report, indent=2, default=str))
    line = (
        f"soak: {len(results)} requests over {len(servers)} {'processes' if len(servers) > 1 else 'process'} "
        f"in {duration:.1f}s, {len(wrong)} wrong decisions, {len(leaks)} with another principal's data, "
        f"{len(errors)} 5xx or unanswered; {revocations} revocations, {switches} scope switches; report {report_path}"
    )
    return Summary(report, wrong, leaks, errors, line)


# the data of a run --------------------------------------------------------------------------------
def populate(resource: str, seed: int = 11) -> dict[str, Any]:
    """Create the soak's users, entries, tags, clients and tokens; return them as plain data.

    Runs in the test process (in-process soak) or in ``manage.py shell`` against a server's
    database (the soak over server processes). ``resource`` is the MCP endpoint's resource URI.
    """
    import secrets
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    from example_project.journal.models import Entry, Tag

    rng = random.Random(seed)
    principals: dict[str, dict[str, Any]] = {}
    users = []
    for letter in "abc":
        user = get_user_model().objects.create_user(username=f"soak-{letter}")
        secret = f"secret-of-soak-{letter}-{secrets.token_hex(4)}"
        entry = Entry.objects.create(owner=user, title=secret, content="x")
        tag = Tag.objects.create(owner=user, name=f"tag-of-{letter}")
        principals[user.username] = {"username": user.username, "secret": secret, "entry": entry.pk, "tag": tag.pk}
        users.append(user)
    owner = get_user_model().objects.create_user(username=f"soak-clients-{secrets.token_hex(4)}")
    clients = {}
    for number in range(6):
        plain = secrets.token_urlsafe(24)
        application = Application.objects.create(
            name=f"soak-client-{number}", user=owner, client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris="https://client.example/cb", client_secret=plain,
        )  # fmt: skip
        clients[application.client_id] = {"application": application, "secret": plain}
    base = resource.rsplit("/", 1)[0]
    tokens: list[dict[str, Any]] = []

    def token(kind: str, scope: str, bound_to: list[str], expires: timedelta) -> None:
        user = rng.choice(users)
        client_id = rng.choice(sorted(clients))
        value = secrets.token_urlsafe(32)
        AccessToken.objects.create(
            user=user, application=clients[client_id]["application"], token=value, scope=scope,
            expires=timezone.now() + expires, resource=bound_to,
        )  # fmt: skip
        tokens.append(
            {"kind": kind, "value": value, "scopes": scope.split(), "user": user.username, "client_id": client_id}
        )

    for scope in GRANTS * 3:
        token("valid", scope, [resource], timedelta(hours=2))
    for _ in range(3):
        token("expired", "entries:read user:read", [resource], timedelta(seconds=-5))
        token("audience", "entries:read user:read", [f"{base}/api/entries"], timedelta(hours=2))
        token("unbound", "entries:read user:read", [], timedelta(hours=2))
    for kind, value in (("malformed", "not a token!"), ("unknown", secrets.token_urlsafe(32))):
        tokens.append({"kind": kind, "value": value, "scopes": [], "user": None, "client_id": None})
    return {
        "principals": principals,
        "clients": {client_id: client["secret"] for client_id, client in clients.items()},
        "tokens": tokens,
    }


def load(data: dict[str, Any]) -> tuple[Mix, dict[str, str]]:
    """The mix and the clients' secrets from what ``populate`` returned."""
    principals = {name: Principal(**fields) for name, fields in data["principals"].items()}
    tokens = [
        Token(t["kind"], t["value"], frozenset(t["scopes"]), t["user"], t.get("client_id")) for t in data["tokens"]
    ]
    return Mix(principals, tokens), dict(data["clients"])


def untouched_entries(mix: Mix, titles: dict[int, str]) -> list[str]:
    """Each principal's entry still exists with its secret title (no other user changed or deleted it)."""
    return [
        f"{p.username}'s entry {p.entry}: {titles.get(p.entry, 'deleted')!r}"
        for p in mix.principals.values()
        if titles.get(p.entry) != p.secret
    ]
