"""Token authentication: every bad input of issue 3 against real requests and real DOT rows."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.core import checks
from django.test import RequestFactory
from oauth2_provider.models import AccessToken
from oauth2_provider.settings import oauth2_settings

from django_mcp_scopes import resources
from django_mcp_scopes.authentication import (
    MAX_AUTHORIZATION_LENGTH,
    authenticate_request,
    bearer_token_from_header,
    exact_resource_validator,
)
from django_mcp_scopes.exceptions import AuthServiceUnavailable, InvalidRequest, InvalidToken, TokenError
from django_mcp_scopes.token_cache import token_cache, token_checksum
from tests.enforcement_support import make_application, make_scopes, make_token, start_enforcement_server
from tests.live import shared_redis_cache

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.enforcement_views")]


def parse_challenge(value: str) -> dict[str, str]:
    """RFC 7235 auth-params of a Bearer challenge (quoted strings with escapes)."""
    assert value.startswith("Bearer")
    params: dict[str, str] = {}
    rest = value[len("Bearer") :].strip()
    while rest:
        name, _, rest = rest.partition("=")
        assert rest.startswith('"'), value
        index, chars = 1, []
        while rest[index] != '"':
            if rest[index] == "\\":
                index += 1
            chars.append(rest[index])
            index += 1
        params[name.strip()] = "".join(chars)
        rest = rest[index + 1 :].lstrip(", ")
    return params


@pytest.fixture
def scopes():
    return make_scopes()


def get(client, path, header=None, **extra):
    if header is not None:
        extra["HTTP_AUTHORIZATION"] = header
    return client.get(path, **extra)


def assert_401(response, error, *, path="/mcp"):
    assert response.status_code == 401, response.content
    params = parse_challenge(response["WWW-Authenticate"])
    assert params["resource_metadata"] == f"http://testserver/.well-known/oauth-protected-resource{path}"
    assert params["scope"] == "notes:read"  # the baseline: advertised active scopes
    body = response.json()
    if error is None:
        assert "error" not in params
        assert body["error"] == "unauthorized"
    else:
        assert params["error"] == error
        assert body["error"] == error
        assert params["error_description"] == body["error_description"]
        assert params["error_description"]
    assert response["Cache-Control"] == "no-store"
    return params


# --- the header ---------------------------------------------------------------------------


def test_missing_header_is_a_bare_challenge(client, scopes):
    assert_401(get(client, "/mcp"), None)


def test_valid_token_yields_the_principal(client, scopes):
    token, row = make_token("notes:write")
    response = get(client, "/mcp", f"Bearer {token}")
    assert response.status_code == 200
    data = response.json()
    assert data["client_id"] == row.application.client_id
    assert data["granted"] == ["notes:write"]
    assert data["effective"] == ["notes:read", "notes:write"]
    assert data["resource"] == "http://testserver/mcp"
    assert data["user_id"] == row.user_id


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_scheme_is_case_insensitive(client, scopes, scheme):
    token, _ = make_token()
    assert get(client, "/mcp", f"{scheme} {token}").status_code == 200


@pytest.mark.parametrize("template", ["Bearer   {t}", "Bearer\t{t}", " Bearer {t} ", "Bearer \t {t}\t"])
def test_extra_spaces_and_tabs_are_tolerated(client, scopes, template):
    token, _ = make_token()
    assert get(client, "/mcp", template.format(t=token)).status_code == 200


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("Bearer", "needs a token"),
        ("Bearer    ", "needs a token"),
        ("", "Bearer authentication scheme"),
        ("Basic dXNlcjpwYXNz", "Bearer authentication scheme"),
        ("Token abc", "Bearer authentication scheme"),
        ("Bearer abc def", "malformed"),
        ('Bearer a"b', "malformed"),
        ("Bearer =abc", "malformed"),
        ("Bearer abc, Bearer def", "exactly one Authorization header"),
        ("Bearer abc,def", "exactly one Authorization header"),
        ("Bearer tök€n", "printable ASCII"),
        ("Bearer abc\x00", "printable ASCII"),
        ("Bearer abc\r\nX-Injected: 1", "printable ASCII"),
    ],
)
def test_malformed_headers_are_invalid_request(client, scopes, header, fragment):
    response = get(client, "/mcp", header)
    params = assert_401(response, "invalid_request")
    assert fragment in params["error_description"]


def test_a_100_kb_header_is_refused_without_work(client, scopes, django_assert_num_queries):
    header = "Bearer " + "a" * 100_000
    with django_assert_num_queries(0), pytest.raises(InvalidRequest, match="longer than"):
        bearer_token_from_header(header)
    assert_401(get(client, "/mcp", header), "invalid_request")


def test_header_length_bound_admits_long_jwts():
    token = "a" * (MAX_AUTHORIZATION_LENGTH - len("Bearer "))
    assert bearer_token_from_header(f"Bearer {token}") == token


@pytest.mark.parametrize("name", ["access_token", "%61ccess_token", "access%5Ftoken", "access%5ftoken"])
@pytest.mark.parametrize("header", [True, False])
def test_token_in_query_string_is_refused_and_never_used(client, scopes, header, name):
    token, _ = make_token()
    response = client.get(f"/mcp?{name}={token}", **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if header else {}))
    params = assert_401(response, "invalid_request")
    assert "query" in params["error_description"]
    assert token not in response.content.decode()
    assert token not in response["WWW-Authenticate"]


def test_token_in_form_body_is_refused(client, scopes):
    token, _ = make_token()
    response = client.post("/mcp", data=f"access_token={token}", content_type="application/x-www-form-urlencoded")
    params = assert_401(response, "invalid_request")
    assert "body" in params["error_description"]


def test_json_body_mentioning_access_token_is_not_a_form_token(client, scopes):
    token, _ = make_token()
    response = client.post(
        "/mcp",
        data=json.dumps({"access_token": "x"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200


# --- the token ----------------------------------------------------------------------------


def test_unknown_token(client, scopes):
    params = assert_401(get(client, "/mcp", "Bearer not-a-real-token"), "invalid_token")
    assert "unknown" in params["error_description"]


def test_expired_token(client, scopes):
    token, _ = make_token(expires_in=-5)
    assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")


def test_token_expiring_while_cached_is_refused(client, scopes):
    token, _ = make_token(expires_in=3600)
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    from django.core.cache import caches

    facts = token_cache.get(token_checksum(token))
    facts["expires"] = time.time() - 1  # as if the entry had outlived the token
    token_cache.clear_local()
    caches["default"].set(token_cache._key("token", token_checksum(token)), facts, 30)
    params = assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")
    assert "expired" in params["error_description"]


def test_token_for_another_resource(client, scopes):
    token, _ = make_token(resource=["https://other.example/mcp"])
    params = assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")
    assert "not issued for this resource" in params["error_description"]


def test_token_for_mcp_does_not_open_mcp_admin(client, scopes):
    token, _ = make_token(resource=["http://testserver/mcp"])
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    assert_401(get(client, "/mcp-admin", f"Bearer {token}"), "invalid_token", path="/mcp-admin")


def test_token_for_the_origin_does_not_open_a_path(client, scopes):
    token, _ = make_token(resource=["http://testserver"])
    assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")


@pytest.mark.parametrize("bound", ["HTTP://TestServer/mcp", "http://testserver:80/mcp/", "http://testserver/mcp/"])
def test_resource_comparison_is_canonical(client, scopes, bound):
    token, _ = make_token(resource=[bound])
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200


@pytest.mark.parametrize(
    "bound",
    [
        "http://te\u017ftserver/mcp",  # LATIN SMALL LETTER LONG S: upper() is "S"
        "http://\u212aey.example/mcp",  # KELVIN SIGN: lower() is an ASCII "k"
        "http://\uff54\uff45\uff53\uff54server/mcp",  # fullwidth letters
    ],
)
def test_non_ascii_hosts_never_fold_into_an_ascii_audience(bound):
    # A URI is ASCII (RFC 3986): an internationalised host is compared in its A-label form
    # only, never case-folded by Unicode rules into some other ASCII host.
    assert not resources.same_resource("http://key.example/mcp", bound)
    assert not resources.same_resource("http://testserver/mcp", bound)
    with pytest.raises(ValueError):
        resources.canonicalize_resource(bound)
    assert resources.canonicalize_all([bound]) == [""]


def test_path_comparison_is_case_sensitive(client, scopes):
    token, _ = make_token(resource=["http://testserver/MCP"])
    assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")


@pytest.mark.parametrize("path", ["/files/a%3F", "/files/a%3Fx=1", "/files/a%23b", "/files/a%25"])
def test_encoded_delimiters_in_the_path_are_not_another_resources_audience(client, scopes, path):
    # Django decodes the path: "/files/a%3F" is the path "/files/a?", another URL than
    # "/files/a" (a different view argument), never the same resource.
    token, _ = make_token(resource=["http://testserver/files/a"])
    assert get(client, "/files/a", f"Bearer {token}").json()["name"] == "a"
    response = get(client, path, f"Bearer {token}")
    assert response.status_code == 401, response.content
    params = parse_challenge(response["WWW-Authenticate"])
    assert params["error"] == "invalid_token"
    assert params["resource_metadata"].startswith("http://testserver/.well-known/oauth-protected-resource/files/a%")


def test_the_resource_of_a_request_is_its_percent_encoded_path():
    factory = RequestFactory()
    assert resources.resource_uri(factory.get("/files/a%3F")) == "http://testserver/files/a%3F"
    assert resources.resource_uri(factory.get("/files/a%23b")) == "http://testserver/files/a%23b"
    assert resources.resource_uri(factory.get("/caf%C3%A9")) == "http://testserver/caf%C3%A9"
    assert resources.resource_uri(factory.get("/a;b=c/@:x")) == "http://testserver/a;b=c/@:x"
    assert resources.metadata_url(factory.get("/files/a%0A")) == (
        "http://testserver/.well-known/oauth-protected-resource/files/a%0A"
    )


def test_token_with_no_resource_is_refused_by_default(client, scopes, settings):
    token, _ = make_token(resource=[])
    params = assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")
    assert "not bound to a resource" in params["error_description"]
    settings.MCP_SCOPES = {"ALLOW_TOKENS_WITHOUT_RESOURCE": True}
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200


def test_allowing_unbound_tokens_is_a_deploy_warning(settings):
    ids = [message.id for message in checks.run_checks(include_deployment_checks=True)]
    assert "django_mcp_scopes.W005" not in ids
    settings.MCP_SCOPES = {"ALLOW_TOKENS_WITHOUT_RESOURCE": True}
    ids = [message.id for message in checks.run_checks(include_deployment_checks=True)]
    assert "django_mcp_scopes.W005" in ids
    assert "django_mcp_scopes.W005" not in [message.id for message in checks.run_checks()]


def test_registration_token_is_never_accepted(client, scopes, settings):
    token, _ = make_token(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
    params = assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")
    assert "registration" in params["error_description"]
    settings.MCP_SCOPES = {"ALLOW_TOKENS_WITHOUT_RESOURCE": True}
    token, _ = make_token(scope=f"notes:read {oauth2_settings.DCR_REGISTRATION_SCOPE}", resource=[])
    assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")


def test_token_of_an_inactive_user_is_refused(client, scopes):
    token, row = make_token()
    row.user.is_active = False
    row.user.save()
    assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")


def test_deactivating_a_user_refuses_their_cached_tokens_at_once(client, scopes, django_capture_on_commit_callbacks):
    token, row = make_token()
    other_token, _ = make_token()
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    assert get(client, "/mcp", f"Bearer {other_token}").status_code == 200
    user = row.user
    user.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    params = assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")
    assert "inactive user" in params["error_description"]
    assert get(client, "/mcp", f"Bearer {other_token}").status_code == 200  # another user's token


def test_deleted_token_is_refused_at_once_even_when_cached(client, scopes):
    token, row = make_token()
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    assert token_cache.get(token_checksum(token)) is not None
    row.delete()
    assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")


def test_revocation_racing_a_cold_validation_wins_in_this_process_too(client, scopes):
    # This request reads the token row; right after, another process revokes the token and
    # writes the tombstone. The request itself may finish, but what it read must not be kept:
    # the next request is refused, not served from this process's local copy.
    from django.db import connection

    token, _ = make_token()
    checksum = token_checksum(token)

    def revoke_elsewhere_after_the_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "oauth2_provider_accesstoken" in sql and sql.lstrip().upper().startswith("SELECT"):
            token_cache.drop(checksum, tombstone=True)
        return result

    with connection.execute_wrapper(revoke_elsewhere_after_the_read):
        get(client, "/mcp", f"Bearer {token}")
    assert token_cache.get(checksum) == "revoked"
    params = assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")
    assert "revoked" in params["error_description"]


def test_revocation_through_dots_endpoint_clears_the_cache(client, scopes, django_capture_on_commit_callbacks):
    application = make_application()
    token, _ = make_token(application=application)
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/o/revoke_token/",
            {"token": token, "client_id": application.client_id, "client_secret": "s3cret"},
        )
    assert response.status_code == 200
    assert not AccessToken.objects.filter(token_checksum=token_checksum(token)).exists()
    params = assert_401(get(client, "/mcp", f"Bearer {token}"), "invalid_token")
    assert "revoked" in params["error_description"]  # the tombstone answered, not the database


def test_changed_token_is_revalidated(client, scopes):
    token, row = make_token("notes:read")
    assert get(client, "/mcp", f"Bearer {token}").json()["granted"] == ["notes:read"]
    row.scope = "notes:write"
    row.save()
    assert get(client, "/mcp", f"Bearer {token}").json()["granted"] == ["notes:write"]


def test_cold_token_costs_one_query_warm_token_none(client, scopes, django_assert_num_queries):
    warm_up, _ = make_token()
    assert get(client, "/api/notes", f"Bearer {warm_up}").status_code == 401  # warms the scope registry
    token, _ = make_token(resource=["http://testserver/api/notes"])
    with django_assert_num_queries(1):
        assert get(client, "/api/notes", f"Bearer {token}").status_code == 200
    with django_assert_num_queries(0):
        assert get(client, "/api/notes", f"Bearer {token}").status_code == 200
    token_cache.clear_local()  # only the shared cache is warm now
    with django_assert_num_queries(0):
        assert get(client, "/api/notes", f"Bearer {token}").status_code == 200


def test_cache_never_holds_the_token_or_model_instances(client, scopes):
    token, _ = make_token()
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    from django.core.cache import caches

    facts = caches["default"].get(token_cache._key("token", token_checksum(token)))  # the shared entry
    assert token not in json.dumps(facts)
    plain = (str, int, float, list, type(None))
    assert all(
        isinstance(value, plain) or (isinstance(value, dict) and all(isinstance(v, plain) for v in value.values()))
        for value in facts.values()
    ), facts


def test_cache_entry_never_outlives_the_token(client, scopes, settings):
    settings.MCP_SCOPES = {"TOKEN_CACHE_SECONDS": 3600}
    token, _ = make_token(expires_in=2)
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    from django.core.cache import caches

    key = token_cache._key("token", token_checksum(token))
    cache = caches["default"]
    if hasattr(cache, "_expire_info"):  # LocMem exposes the expiry it was given
        assert cache._expire_info[cache.make_and_validate_key(key)] - time.time() <= 2.5


def test_resource_path_of_the_view(client, scopes):
    token, _ = make_token(resource=["http://testserver/api"])
    assert get(client, "/api/items/3", f"Bearer {token}").json() == {"pk": 3}
    response = get(client, "/api/items/3")
    assert response.status_code == 401
    assert parse_challenge(response["WWW-Authenticate"])["resource_metadata"] == (
        "http://testserver/.well-known/oauth-protected-resource/api"
    )
    # The document the challenge points to exists, and describes /api, not each URL under it.
    document = client.get("/.well-known/oauth-protected-resource/api")
    assert document.status_code == 200
    assert document.json()["resource"] == "http://testserver/api"
    assert client.get("/.well-known/oauth-protected-resource/api/items/3").status_code == 404


def test_base_url_setting_defines_the_resource(client, scopes, settings):
    settings.MCP_SCOPES = {"BASE_URL": "https://api.example.com"}
    token, _ = make_token(resource=["https://api.example.com/mcp"])
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    other, _ = make_token(resource=["http://testserver/mcp"])
    assert get(client, "/mcp", f"Bearer {other}").status_code == 401


def test_core_function_returns_none_without_header_only(scopes):
    factory = RequestFactory()
    assert authenticate_request(factory.get("/mcp")) is None
    with pytest.raises(InvalidRequest):
        authenticate_request(factory.get("/mcp?access_token=abc"))
    with pytest.raises(InvalidToken):
        authenticate_request(factory.get("/mcp", HTTP_AUTHORIZATION="Bearer nope"))
    token, _ = make_token(resource=["https://elsewhere.example/x"])
    principal = authenticate_request(
        factory.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}"), resource_uri="https://elsewhere.example/x/"
    )
    assert principal.resource == "https://elsewhere.example/x"


def test_exact_resource_validator_for_dot():
    assert exact_resource_validator("https://h/mcp", ["https://H:443/mcp/"])
    assert not exact_resource_validator("https://h/mcp-admin", ["https://h/mcp"])
    assert not exact_resource_validator("https://h/mcp/x", ["https://h/mcp"])
    assert not exact_resource_validator("https://h/mcp", ["urn:example:mcp"])
    assert not exact_resource_validator("https://h/mcp", [])


def test_dot_itself_uses_the_exact_validator_when_configured(client, scopes, settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR": "django_mcp_scopes.authentication.exact_resource_validator",
    }
    token, row = make_token(resource=["http://testserver/mcp"])
    assert row.allows_audience("http://testserver/mcp/")
    assert not row.allows_audience("http://testserver/mcp/admin")
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200


def test_nothing_leaks_in_any_refusal(client, scopes, caplog):
    caplog.set_level(logging.DEBUG)
    token, _ = make_token(resource=["https://other.example/mcp"])
    responses = [
        get(client, "/mcp", f"Bearer {token}"),
        get(client, "/mcp", f"Bearer {token}x"),
        client.get(f"/mcp?access_token={token}"),
        get(client, "/mcp", f"Basic {token}"),
    ]
    for response in responses:
        assert response.status_code == 401
        assert token not in response.content.decode()
        assert token not in response["WWW-Authenticate"]
    assert token not in caplog.text
    assert token_checksum(token) not in caplog.text  # a prefix of the hash at most
    assert token_checksum(token)[:12] in caplog.text


# --- introspection (a stand-in for the remote IdP) ----------------------------------------


class FakeIdP:
    """A real HTTP server on 127.0.0.1 standing in for a remote authorization server's RFC 7662
    introspection endpoint (the only thing here that cannot run for real)."""

    def __init__(self) -> None:
        self.answers: dict[str, dict] = {}
        self.calls: list[dict] = []
        self.delay = 0.0
        self.status = 200
        self.padding = 0  # extra bytes of whitespace after the JSON answer
        self.drip = 0.0  # seconds between chunks of the answer
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                idp.calls.append({"form": form, "authorization": self.headers.get("Authorization")})
                if idp.delay:
                    time.sleep(idp.delay)
                body = json.dumps(idp.answers.get(form.get("token"), {"active": False})).encode()
                body += b" " * idp.padding
                self.send_response(idp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not idp.drip:
                    self.wfile.write(body)
                    return
                try:
                    for index in range(0, len(body), 4):
                        self.wfile.write(body[index : index + 4])
                        self.wfile.flush()
                        time.sleep(idp.drip)
                except OSError:  # the client gave up: what the test wants
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp(settings):
    server = FakeIdP()
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "RESOURCE_SERVER_INTROSPECTION_URL": server.url,
        "RESOURCE_SERVER_AUTH_TOKEN": "rs-secret",
    }
    settings.MCP_SCOPES = {"INTROSPECTION_TIMEOUT_SECONDS": 0.5, "INTROSPECTION_CACHE_SECONDS": 60}
    yield server
    server.stop()


def active(**claims):
    return {
        "active": True,
        "scope": "notes:read",
        "client_id": "remote-client",
        "aud": "http://testserver/mcp",
        **claims,
    }


def test_introspection_accepts_an_active_bound_token(client, scopes, idp, django_assert_num_queries):
    idp.answers["remote-1"] = active(exp=int(time.time()) + 600, username="alice")
    response = get(client, "/mcp", "Bearer remote-1")
    assert response.status_code == 200
    assert response.json()["client_id"] == "remote-client"
    assert idp.calls[0]["form"] == {"token": "remote-1", "token_type_hint": "access_token"}
    assert idp.calls[0]["authorization"] == "Bearer rs-secret"
    with django_assert_num_queries(0):
        assert get(client, "/mcp", "Bearer remote-1").status_code == 200
    assert len(idp.calls) == 1  # cached
    assert not AccessToken.objects.exists()  # no ten-hour rows in the AccessToken table


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ({"active": False}, "not active"),
        (active(active="true"), "not active"),
        (active(exp=int(time.time()) - 10), "expired"),
        (active(exp="soon"), "malformed exp"),
        (active(nbf=int(time.time()) + 600), "not valid yet"),
        (active(nbf="later"), "malformed nbf"),
        (active(aud="http://testserver/mcp-admin"), "not issued for this resource"),
        (active(aud=["https://other.example/mcp"]), "not issued for this resource"),
        (active(aud={"x": 1}), "malformed aud"),
        (active(aud=None), "not bound to a resource"),
        (active(client_id=7), "malformed client_id"),
        (active(token_type="refresh_token"), "Only access tokens"),
        (active(scope=oauth2_settings.DCR_REGISTRATION_SCOPE), "registration"),
        # Sender-constrained tokens (RFC 9449 DPoP, RFC 8705 mTLS) need a proof this server
        # never checks: presented as plain Bearer tokens they would lose their binding.
        (active(token_type="DPoP", cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}), "sender-constrained"),
        (active(token_type="DPoP"), "sender-constrained"),
        (active(cnf={"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}), "sender-constrained"),
    ],
)
def test_introspection_refusals(client, scopes, idp, answer, fragment):
    if answer.get("aud", "") is None:
        del answer["aud"]
    idp.answers["remote-2"] = answer
    params = assert_401(get(client, "/mcp", "Bearer remote-2"), "invalid_token")
    assert fragment in params["error_description"]


def test_introspection_username_maps_to_a_local_user_on_first_use(scopes, idp):
    from django.contrib.auth import get_user_model

    idp.answers["remote-user"] = active(username="alice")
    principal = authenticate_request(RequestFactory().get("/mcp", HTTP_AUTHORIZATION="Bearer remote-user"))
    assert not get_user_model().objects.filter(username="alice").exists()  # nothing written yet
    assert principal.user.username == "alice"
    assert principal.user.pk == get_user_model().objects.get(username="alice").pk


def test_introspection_with_basic_credentials(client, scopes, idp, settings):
    import base64

    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "RESOURCE_SERVER_AUTH_TOKEN": None,
        "RESOURCE_SERVER_INTROSPECTION_CREDENTIALS": ("rs-client", "rs-secret"),
    }
    idp.answers["remote-basic"] = active()
    assert get(client, "/mcp", "Bearer remote-basic").status_code == 200
    assert idp.calls[0]["authorization"] == "Basic " + base64.b64encode(b"rs-client:rs-secret").decode()


def test_introspection_issuer_is_checked_when_configured(client, scopes, idp, settings):
    settings.MCP_SCOPES = {**settings.MCP_SCOPES, "INTROSPECTION_ISSUER": "https://idp.example"}
    idp.answers["remote-3"] = active(iss="https://evil.example")
    idp.answers["remote-4"] = active(iss="https://idp.example")
    idp.answers["remote-5"] = active()
    assert_401(get(client, "/mcp", "Bearer remote-3"), "invalid_token")
    assert get(client, "/mcp", "Bearer remote-4").status_code == 200
    assert_401(get(client, "/mcp", "Bearer remote-5"), "invalid_token")


def test_inactive_answers_are_cached_too(client, scopes, idp):
    for _ in range(3):
        assert get(client, "/mcp", "Bearer dead-token").status_code == 401
    assert len(idp.calls) == 1


def assert_503(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"] == "temporarily_unavailable"
    assert "Traceback" not in response.content.decode()


def test_introspection_endpoint_down_fails_closed(client, scopes, idp):
    idp.stop()
    assert_503(get(client, "/mcp", "Bearer remote-6"))
    assert_503(get(client, "/api/notes", "Bearer remote-6"))


def test_introspection_endpoint_slow_fails_closed(client, scopes, idp):
    idp.answers["remote-7"] = active()
    idp.delay = 2.0  # four times the configured timeout
    assert_503(get(client, "/mcp", "Bearer remote-7"))


def test_introspection_answer_trickling_in_fails_closed_within_the_timeout(client, scopes, idp):
    # Each chunk arrives well within the socket timeout; the whole answer never would.
    idp.answers["remote-10"] = active()
    idp.drip = 0.1
    assert_503(get(client, "/mcp", "Bearer remote-10"))  # 2.5 s for the answer, 0.5 s allowed


def test_huge_introspection_answer_fails_closed(client, scopes, idp):
    idp.answers["remote-11"] = active()
    idp.padding = 2 * 1024 * 1024
    assert_503(get(client, "/mcp", "Bearer remote-11"))


@pytest.mark.parametrize("status", [500, 401, 302])
def test_introspection_endpoint_errors_fail_closed(client, scopes, idp, status):
    idp.status = status
    assert_503(get(client, "/mcp", "Bearer remote-8"))


def test_introspection_cache_never_outlives_exp(scopes, idp, settings):
    from django.core.cache import caches

    idp.answers["remote-9"] = active(exp=int(time.time()) + 3)
    factory = RequestFactory()
    assert authenticate_request(factory.get("/mcp", HTTP_AUTHORIZATION="Bearer remote-9")) is not None
    cache = caches["default"]
    key = token_cache._key("introspection", token_checksum("remote-9"))
    if hasattr(cache, "_expire_info"):
        assert cache._expire_info[cache.make_and_validate_key(key)] - time.time() <= 3.5


def test_service_unavailable_core_exception(scopes, idp):
    idp.stop()
    with pytest.raises(AuthServiceUnavailable):
        authenticate_request(RequestFactory().get("/mcp", HTTP_AUTHORIZATION="Bearer x"))


# --- real server processes ----------------------------------------------------------------


def raw_request(url: str, headers: list[tuple[str, bytes]], path: str = "/mcp") -> tuple[int, dict, bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("GET", path)
    for name, value in headers:
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_live_server_answers_bad_input_with_challenges():
    make_scopes()
    token, _ = make_token(server="http://127.0.0.1:0")  # resource fixed below, once the port is known
    server = start_enforcement_server()
    try:
        AccessToken.objects.filter(token_checksum=token_checksum(token)).update(resource=[f"{server.url}/mcp"])
        ok = raw_request(server.url, [("Authorization", f"Bearer {token}".encode())])
        assert ok[0] == 200, ok
        cases = {
            "missing": [],
            "two headers": [("Authorization", f"Bearer {token}".encode()), ("Authorization", b"Bearer other")],
            "basic": [("Authorization", b"Basic dXNlcjpwYXNz")],
            "non-ascii": [("Authorization", "Bearer tök".encode())],
            "no token": [("Authorization", b"Bearer")],
        }
        for name, headers in cases.items():
            status, response_headers, body = raw_request(server.url, headers)
            assert status == 401, (name, body)
            challenge = parse_challenge(response_headers["WWW-Authenticate"])
            assert challenge["resource_metadata"] == f"{server.url}/.well-known/oauth-protected-resource/mcp"
            assert (name == "missing") == ("error" not in challenge), name
            assert token.encode() not in body
        status, _, body = raw_request(server.url, [], path=f"/mcp?access_token={token}")
        assert status == 401 and b"invalid_request" in body
        # A 100 KB header: gunicorn refuses it itself (400/431) before Django runs; never a 500.
        status, _, _ = raw_request(server.url, [("Authorization", b"Bearer " + b"a" * 100_000)])
        assert status in (400, 431)
    finally:
        output = server.stop()
    assert "Traceback" not in output
    assert token not in output


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_live_server_with_database_down_answers_503():
    server = start_enforcement_server(env={"DATABASE_URL": "postgres://postgres@127.0.0.1:9/nowhere"})
    try:
        status, headers, body = raw_request(server.url, [("Authorization", b"Bearer some-token")])
        assert status == 503, body
        assert headers["Retry-After"] == "5"
        assert json.loads(body)["error"] == "temporarily_unavailable"
        assert b"Traceback" not in body
        status, headers, body = raw_request(server.url, [("Authorization", b"Bearer some-token")], path="/api/notes")
        assert status == 503, body
        assert headers["Retry-After"] == "5"
        status, headers, _ = raw_request(server.url, [])
        assert status == 401  # no token: still the challenge (without a scope hint)
        assert "resource_metadata" in headers["WWW-Authenticate"]
    finally:
        server.stop()


@pytest.mark.live
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_revocation_reaches_another_process_through_the_shared_cache():
    """A token cached by a server process is refused there as soon as this process deletes it."""
    import json as _json
    import os

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    with shared_redis_cache(redis_url) as cache_env:
        make_scopes()
        server = start_enforcement_server(
            env={**cache_env, "MCP_TEST_SCOPES": _json.dumps({"TOKEN_LOCAL_CACHE_SECONDS": 0})}
        )
        try:
            token, row = make_token(resource=[f"{server.url}/mcp"])
            header = [("Authorization", f"Bearer {token}".encode())]
            assert raw_request(server.url, header)[0] == 200
            assert token_cache.get(token_checksum(token)) is not None  # the server's entry, seen from here
            row.delete()  # what DOT's revocation does; the receiver writes the tombstone on commit
            status, _, body = raw_request(server.url, header)
            assert status == 401
            assert b"revoked" in body
        finally:
            server.stop()


def test_form_check_leaves_the_body_to_drf(client, scopes):
    token, _ = make_token(resource=["http://testserver/api/notes"])
    response = client.post(
        "/api/notes",
        data="title=hello",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"title": "hello"}
    response = client.post("/api/notes", data=f"access_token={token}", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 401
    assert parse_challenge(response["WWW-Authenticate"])["error"] == "invalid_request"


def test_two_authorization_headers_under_asgi_are_refused(scopes):
    """Django's ASGI handler joins repeated headers with a comma, as WSGI servers do."""
    from io import BytesIO

    from django.core.handlers.asgi import ASGIRequest

    token, _ = make_token()
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/mcp",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"authorization", b"Bearer another"),
        ],
    }
    request = ASGIRequest(scope, BytesIO())
    assert request.META["HTTP_AUTHORIZATION"] == f"Bearer {token},Bearer another"
    with pytest.raises(InvalidRequest) as caught:
        authenticate_request(request)
    assert caught.value.reason == "multiple_credentials"


def test_shared_cache_down_degrades_to_the_database_and_never_breaks_revocation(scopes, settings):
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"},
    }
    token, row = make_token()
    checksum = token_checksum(token)
    settings.MCP_SCOPES = {"CACHE_ALIAS": "broken", "TOKEN_LOCAL_CACHE_SECONDS": 0}
    assert token_cache.get(checksum) is None  # a miss, not an exception
    token_cache.put(checksum, {"x": 1}, 10)
    # The scope registry falls back to the database when its cache is down, so a valid token
    # still authenticates (validated against the database), never a 500.
    principal = authenticate_request(RequestFactory().get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}"))
    assert principal is not None and principal.user.pk == row.user_id
    row.delete()  # the receiver cannot reach the cache: DOT's revocation must still succeed
    assert not AccessToken.objects.filter(pk=row.pk).exists()
    with pytest.raises(TokenError):
        authenticate_request(RequestFactory().get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}"))


def test_disallowed_host_is_still_refused_after_an_allowed_one(client, scopes):
    token, _ = make_token()
    assert get(client, "/mcp", f"Bearer {token}").status_code == 200
    response = get(client, "/mcp", f"Bearer {token}", HTTP_HOST="evil.example")
    assert response.status_code == 400  # Django's DisallowedHost: the origin memo never skips validation
    response = get(client, "/mcp", HTTP_HOST="evil.example")
    assert response.status_code == 400


def test_principal_user_and_application_load_lazily(scopes, django_assert_num_queries):
    token, row = make_token()
    request = RequestFactory().get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}")
    authenticate_request(request)  # cold: caches the facts
    request = RequestFactory().get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}")
    with django_assert_num_queries(0):
        principal = authenticate_request(request)
        assert principal.user.pk == row.user_id
        assert principal.user.id == row.user_id
        assert principal.user.is_authenticated
        # The username comes with the cached facts too.
        assert principal.user.username == row.user.username
        assert principal.user.get_username() == row.user.username
    with django_assert_num_queries(1):
        assert principal.user.date_joined == row.user.date_joined
    # So do the application's id and the fields the scopes backend reads (a warm listing).
    with django_assert_num_queries(0):
        assert principal.application.pk == row.application_id
        assert principal.application.client_id == row.application.client_id
        assert principal.application.client_type == row.application.client_type
        assert principal.application.authorization_grant_type == row.application.authorization_grant_type
    with django_assert_num_queries(1):
        assert principal.application.redirect_uris == row.application.redirect_uris
    assert principal.application == row.application
    assert principal.user == row.user
    assert isinstance(principal.user, type(row.user))


def test_forwarded_host_counts_only_when_django_trusts_it(client, scopes, settings):
    # A token for another host this server also answers to: only the host Django itself
    # resolves (X-Forwarded-Host only with USE_X_FORWARDED_HOST) defines the audience.
    settings.ALLOWED_HOSTS = ["testserver", "other.example"]
    token, _ = make_token(resource=["http://other.example/mcp"])
    assert_401(get(client, "/mcp", f"Bearer {token}", HTTP_X_FORWARDED_HOST="other.example"), "invalid_token")
    settings.USE_X_FORWARDED_HOST = True
    response = get(client, "/mcp", f"Bearer {token}", HTTP_X_FORWARDED_HOST="other.example")
    assert response.status_code == 200
    settings.USE_X_FORWARDED_HOST = False  # the origin memo forgets what the proxy said
    response = get(client, "/mcp", f"Bearer {token}", HTTP_X_FORWARDED_HOST="other.example")
    assert response.status_code == 401


def test_base_url_overrides_any_host_header(client, scopes, settings):
    settings.ALLOWED_HOSTS = ["testserver", "other.example"]
    settings.MCP_SCOPES = {"BASE_URL": "https://api.example"}
    token, _ = make_token(resource=["http://other.example/mcp"])
    assert get(client, "/mcp", f"Bearer {token}", HTTP_HOST="other.example").status_code == 401
    token, _ = make_token(resource=["https://api.example/mcp"])
    assert get(client, "/mcp", f"Bearer {token}", HTTP_HOST="other.example").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_auser_loads_the_user_outside_the_event_loop():
    from asgiref.sync import async_to_sync
    from django.core.exceptions import SynchronousOnlyOperation

    make_scopes()
    token, row = make_token()
    request = RequestFactory().get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}")
    principal = authenticate_request(request)

    async def in_a_tool():
        assert principal.user.username == row.user.username  # carried by the token's facts: no query
        with pytest.raises(SynchronousOnlyOperation):
            _ = principal.user.date_joined  # what an async tool could not do before
        user = await principal.auser()
        return user.date_joined, (await principal.auser()) is user

    assert async_to_sync(in_a_tool)() == (row.user.date_joined, True)
