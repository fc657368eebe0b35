"""Property-based tests (Hypothesis, issue 11): the Authorization header parser, the WWW-Authenticate
builder through a strict RFC 9110 challenge parser, JSON-RPC classification against what the SDK
dispatches, resource URI matching, scope-name validation.

A few dozen examples each in ``make test``; ``HYPOTHESIS_PROFILE=soak`` runs 10^5 of each.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mcp.server.mcpserver import MCPServer

from django_mcp_scopes import declarations
from django_mcp_scopes.authentication import MAX_AUTHORIZATION_LENGTH, bearer_token_from_header
from django_mcp_scopes.challenges import bearer_challenge
from django_mcp_scopes.exceptions import InvalidRequest
from django_mcp_scopes.mcp import mcp_path, open_to_any_token, requires_scopes
from django_mcp_scopes.mcp.operations import NAMED_METHODS
from django_mcp_scopes.requirements import ScopeRequirement
from django_mcp_scopes.validators import SCOPE_NAME_MAX_LENGTH, is_valid_scope_name, validate_scope_name
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, ensure_scopes

settings.register_profile("default", max_examples=60, deadline=None)
settings.register_profile("soak", max_examples=100_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

NQCHAR = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]")
TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


# the Authorization header -------------------------------------------------------------------------
@given(
    token=st.from_regex(TOKEN68, fullmatch=True).filter(lambda t: len(t) < 4000),
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]),
    before=st.sampled_from(["", " ", "\t"]),
    between=st.sampled_from([" ", "  ", "\t", " \t "]),
    after=st.sampled_from(["", " ", "\t"]),
)
def test_a_well_formed_bearer_header_yields_its_token(token, scheme, before, between, after):
    assert bearer_token_from_header(f"{before}{scheme}{between}{token}{after}") == token


@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_header_value_yields_a_token68_from_it_or_an_invalid_request(value):
    try:
        token = bearer_token_from_header(value)
    except InvalidRequest as exc:
        assert exc.reason  # every refusal says why
        return
    assert TOKEN68.fullmatch(token)
    assert token in value
    assert "," not in value
    assert value.split()[0].lower() == "bearer"


@given(st.integers(min_value=1, max_value=1000).map(lambda extra: "a" * (MAX_AUTHORIZATION_LENGTH + extra)))
@settings(max_examples=3)
def test_an_overlong_header_is_refused(value):
    with pytest.raises(InvalidRequest):
        bearer_token_from_header("Bearer " + value)


# WWW-Authenticate through a strict RFC 9110 parser ------------------------------------------------
_TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TOKEN = re.compile(rf"{_TCHAR}+")
_QUOTED = re.compile(r'"((?:[\t \x21\x23-\x5B\x5D-\x7E\x80-\xFF]|\\[\t \x21-\x7E\x80-\xFF])*)"')


def parse_challenge_strictly(header: str) -> tuple[str, list[tuple[str, str]]]:
    """RFC 9110 section 11.2: ``auth-scheme [ 1*SP #auth-param ]``; raises ValueError otherwise."""
    header.encode("latin-1")  # a field value is octets; anything else cannot be sent
    scheme = _TOKEN.match(header)
    if scheme is None:
        raise ValueError("no auth-scheme")
    rest, params = header[scheme.end() :], []
    if not rest:
        return scheme.group(), params
    if not rest.startswith(" "):
        raise ValueError("no SP after the scheme")
    rest = rest.lstrip(" ")
    while True:
        name = _TOKEN.match(rest)
        if name is None:
            raise ValueError(f"no parameter name at {rest[:20]!r}")
        rest = rest[name.end() :].lstrip(" \t")
        if not rest.startswith("="):
            raise ValueError("no =")
        rest = rest[1:].lstrip(" \t")
        quoted = _QUOTED.match(rest)
        if quoted is not None:
            value = re.sub(r"\\(.)", r"\1", quoted.group(1))
            rest = rest[quoted.end() :]
        else:
            token = _TOKEN.match(rest)
            if token is None:
                raise ValueError(f"no value at {rest[:20]!r}")
            value, rest = token.group(), rest[token.end() :]
        params.append((name.group(), value))
        rest = rest.lstrip(" \t")
        if not rest:
            return scheme.group(), params
        if not rest.startswith(","):
            raise ValueError(f"junk after a parameter: {rest[:20]!r}")
        rest = rest[1:].lstrip(" \t")


PARAM_NAMES = st.sampled_from(["error", "scope", "resource_metadata", "error_description", "realm"])


@given(st.lists(st.tuples(PARAM_NAMES, st.text(max_size=80)), max_size=5))
def test_every_challenge_parses_strictly(params):
    scheme, parsed = parse_challenge_strictly(bearer_challenge(params))
    assert scheme == "Bearer"
    assert [name for name, _ in parsed] == [name for name, _ in params]


@given(
    st.lists(
        st.tuples(PARAM_NAMES, st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E))), max_size=5
    )
)
def test_printable_values_round_trip_exactly(params):
    _, parsed = parse_challenge_strictly(bearer_challenge(params))
    assert parsed == params


@given(st.lists(st.from_regex(r"[\x21\x23-\x5B\x5D-\x7E]{1,20}", fullmatch=True), min_size=1, max_size=6))
def test_the_scope_parameter_names_every_scope(names):
    requirement = ScopeRequirement.all_of(*names)
    _, parsed = parse_challenge_strictly(bearer_challenge([("scope", " ".join(requirement.challenge_scopes()))]))
    assert set(dict(parsed)["scope"].split(" ")) == set(names)


# scope names --------------------------------------------------------------------------------------
@given(st.text(max_size=SCOPE_NAME_MAX_LENGTH + 5) | st.from_regex(r"[\x21-\x7E]{1,101}", fullmatch=True))
def test_scope_names_are_exactly_rfc6749_scope_tokens(name):
    expected = 0 < len(name) <= SCOPE_NAME_MAX_LENGTH and all(NQCHAR.fullmatch(ch) for ch in name)
    assert is_valid_scope_name(name) == expected
    try:
        validate_scope_name(name)
    except ValidationError:
        assert not expected
    else:
        assert expected


# JSON-RPC classification and resource URI matching against what the SDK dispatches -----------------
_declared_before = set(declarations.declared_scopes())
probe = MCPServer("property-probe", subscriptions=False)
_ran: list[tuple[str, Any]] = []
_ran_lock = threading.Lock()


def _record(name: str, detail: Any = None) -> str:
    with _ran_lock:
        _ran.append((name, detail))
    return name


@probe.tool()
@requires_scopes("entries:read")
def alpha() -> str:
    return _record("alpha")


@probe.tool(name="b\u00e9ta")
@open_to_any_token
def beta() -> str:
    return _record("b\u00e9ta")


@probe.prompt()
@requires_scopes("entries:read")
def gamma(topic: str = "") -> str:
    return _record("gamma")


@probe.resource("notes://items/{item}")
@requires_scopes("entries:read")
def item(item: str) -> str:
    return _record("notes://items/{item}", {"item": item})


@probe.resource("notes://fixed")
@open_to_any_token
def fixed() -> str:
    return _record("notes://fixed")


@probe.resource("notes://items/{item}/parts/{part}")
@requires_scopes("entries:read")
def part(item: str, part: str) -> str:
    return _record("notes://items/{item}/parts/{part}", {"item": item, "part": part})


@probe.resource("files://{+path}")
@requires_scopes("entries:read")
def file(path: str) -> str:
    return _record("files://{+path}", {"path": path})


@probe.resource("docs://d{/parts*}")
@requires_scopes("entries:read")
def doc(parts: list[str]) -> str:
    return _record("docs://d{/parts*}", {"parts": parts})


@probe.resource("search://q{?term,page}")
@open_to_any_token
def search(term: str | None = None, page: str | None = None) -> str:
    given = {"term": term, "page": page}  # what the URI held: absent query variables stay absent
    return _record("search://q{?term,page}", {key: value for key, value in given.items() if value is not None})


urlpatterns = [*mcp_path("mcp", probe, method_scopes=LISTINGS_OPEN, authentication_classes=[StaticTokenAuthentication])]
# As in tests/mcp_app.py: the declaration registry is global and other tests expect it untouched.
for _name in set(declarations.declared_scopes()) - _declared_before:
    declarations._forget(_name)
ENDPOINT = urlpatterns[0].callback.mcp_endpoint  # type: ignore[attr-defined]

NAMES = st.sampled_from(
    ["alpha", "b\u00e9ta", "gamma", "ALPHA", "alpha ", " alpha", "alpha\u200b", "beta", "be\u0301ta"]
)
URIS = st.sampled_from(["notes://fixed", "notes://fixed/", "NOTES://fixed"]) | st.builds(
    "notes://items/{}".format,
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)


@st.composite
def messages(draw: Any) -> tuple[str, dict[str, Any]]:
    method = draw(st.sampled_from(sorted(NAMED_METHODS)))
    key, _ = NAMED_METHODS[method]
    known = {"tools/call": ["alpha", "b\u00e9ta"], "prompts/get": ["gamma"], "resources/read": ["notes://fixed"]}
    name = draw(st.sampled_from(known[method]) | (URIS if key == "uri" else NAMES | st.text(max_size=10)))
    params: dict[str, Any] = {key: name}
    if method == "tools/call":
        params["arguments"] = {}
    elif method == "prompts/get":
        params["arguments"] = draw(st.sampled_from([{}, {"topic": "x"}]))
    return method, params


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=messages())
def test_the_view_and_the_sdk_agree_on_the_operation_called(message):
    """Whatever the SDK ran is what the view decided on, with the same template variables."""
    _agree(*message)


# Pieces of URIs near the templates: the schemes in any case, separators, dot segments (the SDK's
# path-safety policy), percent-escapes, query parts, and any text.
_URI_PIECES = st.sampled_from(
    ["notes://", "NOTES://", "files://", "docs://d", "search://q", "notes://items/", "/", "//", "..", ".", "%2F",
     "%2e%2e", "?", "&", "=", "term=", "page=", "#", "{", "}", "parts/", "\\", "\x00", " "]
) | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)  # fmt: skip


_SEGMENT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8) | st.sampled_from(
    ["", ".", "..", "%2e%2e", "a/b", "a%2Fb", "C:", "~"]
)
_SHAPED_URIS = st.one_of(
    st.builds("notes://items/{}/parts/{}".format, _SEGMENT, _SEGMENT),
    st.builds("files://{}".format, st.lists(_SEGMENT, max_size=4).map("/".join)),
    st.builds("docs://d{}".format, st.lists(_SEGMENT, max_size=4).map(lambda parts: "".join("/" + p for p in parts))),
    st.builds(
        "search://q{}".format,
        st.lists(st.tuples(st.sampled_from(["term", "page", "other"]), _SEGMENT), max_size=3).map(
            lambda pairs: ("?" + "&".join(f"{k}={v}" for k, v in pairs)) if pairs else ""
        ),
    ),
)


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uri=_SHAPED_URIS | st.lists(_URI_PIECES, min_size=1, max_size=8).map("".join))
def test_resource_uri_matching_agrees_with_what_the_sdk_reads(uri):
    """Resource URI matching: for any URI, the template the view decided on (and its variables) is
    the one the SDK read, or the SDK read nothing."""
    _agree("resources/read", {"uri": uri})


def _agree(method: str, params: dict[str, Any]) -> None:
    ensure_scopes()
    with _ran_lock:
        _ran.clear()
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = Client().post(
        "/mcp",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer t-read",
        HTTP_ACCEPT="application/json, text/event-stream",
        HTTP_MCP_PROTOCOL_VERSION="2025-11-25",
    )
    assert response.status_code < 500, response.content
    decision = ENDPOINT.decide(method, params, None)
    with _ran_lock:
        ran = list(_ran)
    event(f"{method} {'ran' if ran else 'did not run'}")
    if not ran:
        return
    ((name, detail),) = ran
    assert decision.operation is not None, (method, params, name)
    assert decision.operation.name == name
    if detail is not None:
        assert dict(decision.operation.template_arguments) == detail
