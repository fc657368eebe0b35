"""The example's authorization server, over real HTTP against a live server process.

A test plays both the OAuth client (httpx) and the person at the browser (``Browser``: signs in
on the real login page, approves on the real consent page).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.example.live import Browser, ExampleServer, parse_forms

pytestmark = pytest.mark.live

REDIRECT_URI = "http://127.0.0.1:9/callback"


@pytest.fixture(scope="module")
def server():
    with ExampleServer("wsgi", DCR_PER_IP_PER_HOUR="1000") as running:
        yield running


@pytest.fixture(scope="module")
def metadata(server):
    return httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server").json()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(response: httpx.Response) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(response.headers["location"]).query).items()}


@dataclass
class OAuthClient:
    server: ExampleServer
    metadata: dict
    client_id: str = ""
    verifier: str = ""
    state: str = field(default_factory=lambda: secrets.token_urlsafe(8))

    def register(self, **extra) -> httpx.Response:
        body = {"redirect_uris": [REDIRECT_URI], "client_name": "Test client", **extra}
        response = httpx.post(self.metadata["registration_endpoint"], json=body)
        if response.status_code == 201:
            self.client_id = response.json()["client_id"]
        return response

    def authorization_url(self, scope: str = "user:read entries:read tags:read", **overrides) -> str:
        self.verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": self.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": scope,
            "resource": self.server.mcp_url,
        }
        params.update(overrides)
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return f"{self.metadata['authorization_endpoint']}?{query}"

    def token(self, code: str, **overrides) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
            "resource": self.server.mcp_url,
        }
        data.update(overrides)
        return httpx.post(self.metadata["token_endpoint"], data={k: v for k, v in data.items() if v is not None})

    def refresh(self, refresh_token: str, **overrides) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.client_id}
        data.update(overrides)
        return httpx.post(self.metadata["token_endpoint"], data=data)

    def code_for(self, browser: Browser, scope: str = "user:read entries:read tags:read", **overrides) -> str:
        response = browser.authorize(self.authorization_url(scope, **overrides))
        assert response.status_code == 302, response.text
        params = query_of(response)
        assert params["state"] == self.state
        return params["code"]


@pytest.fixture
def client(server, metadata):
    oauth_client = OAuthClient(server, metadata)
    assert oauth_client.register().status_code == 201
    return oauth_client


@pytest.fixture
def browser():
    person = Browser()
    yield person
    person.close()


# RFC 8414 metadata ---------------------------------------------------------------------------------
def test_metadata_at_the_root_with_a_bare_issuer(server, metadata):
    assert metadata["issuer"] == server.base_url
    assert metadata["authorization_endpoint"] == f"{server.base_url}/o/authorize/"
    assert metadata["token_endpoint"] == f"{server.base_url}/o/token/"
    assert metadata["registration_endpoint"] == f"{server.base_url}/o/register/"
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["token_endpoint_auth_methods_supported"] == ["none"]
    assert metadata["client_id_metadata_document_supported"] is True
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert {"user:read", "entries:read", "entries:write", "tags:read", "tags:write"} <= set(
        metadata["scopes_supported"]
    )
    assert "introspection_endpoint" not in metadata


def test_metadata_is_readable_cross_origin(server):
    response = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server")
    assert response.headers["access-control-allow-origin"] == "*"


def test_issuer_follows_the_host_the_client_used(server):
    localhost = server.base_url.replace("127.0.0.1", "localhost")
    assert httpx.get(f"{localhost}/.well-known/oauth-authorization-server").json()["issuer"] == localhost


# dynamic client registration ---------------------------------------------------------------------------
def test_registration_makes_a_public_client(server, metadata):
    response = OAuthClient(server, metadata).register(scope="user:read")
    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["redirect_uris"] == [REDIRECT_URI]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", None])
def test_registration_asking_for_a_secret_gets_a_public_client(server, metadata, method):
    extra = {"token_endpoint_auth_method": method} if method else {}
    response = OAuthClient(server, metadata).register(**extra)
    assert response.status_code == 201
    assert response.json()["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in response.json()


def test_registration_accepts_native_and_https_redirects(server, metadata):
    uris = ["http://localhost:33418/", "http://[::1]:8765/cb", "https://vscode.dev/redirect"]
    response = OAuthClient(server, metadata).register(redirect_uris=uris)
    assert response.status_code == 201, response.text
    assert response.json()["redirect_uris"] == uris


BAD_REGISTRATIONS = [
    (b"not json", "invalid_client_metadata", "valid JSON"),
    (b"[1, 2]", "invalid_client_metadata", "JSON object"),
    (b"{}", "invalid_redirect_uri", "non-empty array"),
    (b'{"redirect_uris": "https://a.example/cb"}', "invalid_redirect_uri", "non-empty array"),
    (b'{"redirect_uris": []}', "invalid_redirect_uri", "non-empty array"),
    (b'{"redirect_uris": [42]}', "invalid_redirect_uri", "non-empty string"),
    (b'{"redirect_uris": ["http://evil.example/cb"]}', "invalid_redirect_uri", "loopback"),
    (b'{"redirect_uris": ["javascript:alert(1)"]}', "invalid_redirect_uri", "scheme"),
    (b'{"redirect_uris": ["https://a.example/cb#frag"]}', "invalid_redirect_uri", "fragment"),
    (b'{"redirect_uris": ["https://user:pw@a.example/cb"]}', "invalid_redirect_uri", "user information"),
    (b'{"redirect_uris": ["https://a.example:99999/cb"]}', "invalid_redirect_uri", "not a valid URI"),
    (
        b'{"redirect_uris": ["https://a.example/1", "https://a.example/2", "https://a.example/3",'
        b' "https://a.example/4", "https://a.example/5", "https://a.example/6"]}',
        "invalid_redirect_uri",
        "At most 5",
    ),
    (
        b'{"redirect_uris": ["https://a.example/' + b"x" * 2100 + b'"]}',
        "invalid_redirect_uri",
        "at most 2000",
    ),
    (
        b'{"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}',
        "invalid_client_metadata",
        "grant",
    ),
    (
        b'{"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}',
        "invalid_client_metadata",
        "grant",
    ),
    (
        b'{"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}',
        "invalid_client_metadata",
        "grant",
    ),
    (b'{"redirect_uris": ["https://a.example/cb"], "grant_types": "x"}', "invalid_client_metadata", "grant"),
    (
        b'{"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}',
        "invalid_client_metadata",
        "code",
    ),
    (
        b'{"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}',
        "invalid_client_metadata",
        "public clients",
    ),
    (
        b'{"redirect_uris": ["https://a.example/cb"], "client_name": 7}',
        "invalid_client_metadata",
        "client_name",
    ),
    (b'{"redirect_uris": ["https://a.example/cb"], "scope": ["a"]}', "invalid_client_metadata", "scope"),
    (
        b'{"redirect_uris": ["https://a.example/cb"], "client_name": "' + b"n" * 300 + b'"}',
        "invalid_client_metadata",
        "255",
    ),
    (
        b'{"redirect_uris": ["https://a.example/cb"], "pad": "' + b"p" * 20000 + b'"}',
        "invalid_client_metadata",
        "bytes",
    ),
]


def _application_count(server: ExampleServer) -> int:
    out = server.manage(
        "shell",
        "-c",
        "from oauth2_provider.models import Application; print('COUNT', Application.objects.count())",
    )
    return int(out.split("COUNT")[1].split()[0])


def test_bad_registrations_are_refused_and_register_nothing(server, metadata):
    before = _application_count(server)
    for body, error, message in BAD_REGISTRATIONS:
        response = httpx.post(
            metadata["registration_endpoint"], content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (body[:80], response.text)
        assert response.json()["error"] == error, (body[:80], response.text)
        assert message in response.json()["error_description"], (body[:80], response.text)
    assert _application_count(server) == before


def test_registration_is_rate_limited_per_address():
    with ExampleServer("wsgi", DCR_PER_IP_PER_HOUR="2") as limited:
        endpoint = f"{limited.base_url}/o/register/"
        body = {"redirect_uris": [REDIRECT_URI]}
        assert [httpx.post(endpoint, json=body).status_code for _ in range(2)] == [201, 201]
        refused = httpx.post(endpoint, json=body)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "3600"
        assert refused.json()["error"] == "temporarily_unavailable"


def test_registration_management_applies_the_same_policy(server, metadata):
    response = OAuthClient(server, metadata).register()
    body = response.json()
    headers = {"Authorization": f"Bearer {body['registration_access_token']}"}
    bad = httpx.put(body["registration_client_uri"], json={"redirect_uris": ["http://evil.example/"]}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_redirect_uri"
    good = httpx.put(
        body["registration_client_uri"],
        json={
            "redirect_uris": ["http://127.0.0.1:5/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        headers=headers,
    )
    assert good.status_code == 200, good.text
    assert good.json()["token_endpoint_auth_method"] == "none"


# the authorization code flow -------------------------------------------------------------------------------
def test_full_flow_binds_the_token_to_the_mcp_endpoint(server, metadata, client, browser):
    response = browser.authorize(client.authorization_url("user:read entries:write"))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query_of(response)
    assert params["state"] == client.state
    assert params["iss"] == metadata["issuer"] == server.base_url

    # The person saw a login page, then a consent page listing the scopes with descriptions.
    consent = next(page for page in browser.pages if "consent-form" in page.text)
    assert 'data-scope="entries:write"' in consent.text
    assert "Create, change and delete your journal entries" in consent.text
    assert "See your username" in consent.text
    assert "includes entries:read" in consent.text
    assert set(parse_forms(consent.text)) == {"consent-form"}

    token = client.token(params["code"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["scope"] == "user:read entries:write"
    assert body["token_type"] == "Bearer"
    resources = server.manage(
        "shell",
        "-c",
        "from oauth2_provider.models import AccessToken; "
        "print('RES', [t.resource for t in AccessToken.objects.filter(scope='user:read entries:write')])",
    )
    assert f"'{server.mcp_url}'" in resources


def test_code_is_single_use(client, browser):
    code = client.code_for(browser)
    assert client.token(code).status_code == 200
    again = client.token(code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_refused(client, browser):
    code = client.code_for(browser)
    response = client.token(code, code_verifier=secrets.token_urlsafe(64))
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_refresh_rotates_and_a_replay_revokes_the_family(client, browser):
    first = client.token(client.code_for(browser)).json()
    second = client.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == first["scope"]
    replay = client.refresh(first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # Reuse detection: the whole family is gone, including the newest refresh token.
    assert client.refresh(second["refresh_token"]).status_code == 400


def test_deny_returns_access_denied_with_iss(server, client, browser):
    response = browser.authorize(client.authorization_url(), approve=False)
    assert response.status_code == 302
    params = query_of(response)
    assert params["error"] == "access_denied"
    assert params["state"] == client.state
    assert params["iss"] == server.base_url


def test_step_up_beyond_the_registered_scope(server, metadata, browser):
    oauth_client = OAuthClient(server, metadata)
    assert oauth_client.register(scope="user:read entries:read tags:read").status_code == 201
    first = oauth_client.token(oauth_client.code_for(browser)).json()
    assert first["scope"] == "user:read entries:read tags:read"
    code = oauth_client.code_for(browser, scope="user:read entries:read tags:read entries:write tags:write")
    stepped_up = oauth_client.token(code).json()
    assert set(stepped_up["scope"].split()) == {
        "user:read",
        "entries:read",
        "tags:read",
        "entries:write",
        "tags:write",
    }


def test_unknown_scope_is_refused(client, browser):
    response = browser.authorize(client.authorization_url("user:read admin:everything"))
    assert response.status_code == 302
    assert query_of(response)["error"] == "invalid_scope"


# resources (RFC 8707) --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "resource",
    [
        "http://elsewhere.example/mcp",
        "{base}/mcp-admin",
        "{base}",
        "{base}/mcp?x=1",
        "not a uri",
        "{base}/mcp#f",
    ],
)
def test_authorization_for_a_foreign_resource_is_refused_before_login(server, client, resource):
    anonymous = Browser()
    try:
        response = anonymous.authorize(client.authorization_url(resource=resource.format(base=server.base_url)))
    finally:
        anonymous.close()
    assert response.status_code == 302
    params = query_of(response)
    assert params["error"] == "invalid_target"
    assert params["state"] == client.state
    assert not any("/accounts/login/" in str(page.url) for page in anonymous.pages)


@pytest.mark.parametrize("variant", ["{base}/mcp/", "{upper}/mcp", "http://127.0.0.1:{port}/mcp"])
def test_equivalent_spellings_of_the_resource_are_accepted(server, client, browser, variant):
    resource = variant.format(
        base=server.base_url, upper=server.base_url.upper().replace("HTTP", "http"), port=server.port
    )
    code = client.code_for(browser, resource=resource)
    assert client.token(code, resource=resource).status_code == 200


def test_token_request_for_another_resource_is_refused(server, client, browser):
    code = client.code_for(browser)
    response = client.token(code, resource="http://elsewhere.example/mcp")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_without_a_resource_the_token_is_bound_to_the_mcp_endpoint(server, client, browser):
    code = client.code_for(browser, scope="tags:read", resource=None)
    token = client.token(code, resource=None)
    assert token.status_code == 200, token.text
    out = server.manage(
        "shell",
        "-c",
        "from oauth2_provider.models import AccessToken; "
        "print('RES', [t.resource for t in AccessToken.objects.filter(scope='tags:read')])",
    )
    assert f"[['{server.mcp_url}']]" in out
    # ... and asking for another resource at the token endpoint does not widen it.
    code = client.code_for(browser, scope="tags:read", resource=None)
    assert client.token(code, resource="http://elsewhere.example/mcp").json()["error"] == "invalid_target"


def test_refresh_for_another_resource_is_refused(client, browser):
    tokens = client.token(client.code_for(browser)).json()
    response = client.refresh(tokens["refresh_token"], resource="http://elsewhere.example/mcp")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


# the request is checked before anyone signs in ----------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unauthorized_client"),  # implicit grant: off
        ({"response_type": None}, "invalid_request"),
        ({"scope": "nonexistent"}, "invalid_scope"),
    ],
)
def test_bad_requests_go_back_to_the_client_before_login(server, client, overrides, error):
    anonymous = Browser()
    try:
        response = anonymous.authorize(client.authorization_url(**overrides))
    finally:
        anonymous.close()
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(REDIRECT_URI)
    params = query_of(response)
    assert params["error"] == error
    assert params["iss"] == server.base_url
    assert len(anonymous.pages) == 1  # no login page on the way


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "http://127.0.0.1:9/other"},
        {"redirect_uri": "https://evil.example/cb"},
        {"client_id": "no-such-client"},
        {"client_id": None},
        {"client_id": "https://localhost/client-metadata.json"},  # CIMD: SSRF-guarded fetch refuses loopback
    ],
)
def test_unknown_client_or_redirect_is_an_error_page_never_a_redirect(client, overrides):
    anonymous = Browser()
    try:
        response = anonymous.authorize(client.authorization_url(**overrides))
    finally:
        anonymous.close()
    assert response.status_code == 400
    assert 'id="oauth-error"' in response.text
    assert "location" not in response.headers
    assert parse_forms(response.text) == {}


def test_password_grant_is_off(client):
    response = httpx.post(
        client.metadata["token_endpoint"],
        data={
            "grant_type": "password",
            "username": "demo",
            "password": "demo",
            "client_id": client.client_id,
        },
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("unsupported_grant_type", "unauthorized_client", "invalid_grant")
    assert "access_token" not in response.json()


def test_client_credentials_grant_is_off(client):
    response = httpx.post(
        client.metadata["token_endpoint"],
        data={"grant_type": "client_credentials", "client_id": client.client_id},
    )
    assert response.status_code in (400, 401)
    assert "access_token" not in response.json()


def test_login_page_has_one_form(server):
    page = httpx.get(f"{server.base_url}/accounts/login/")
    assert page.status_code == 200
    assert set(parse_forms(page.text)) == {"login-form"}


def test_wrong_password_stays_on_the_login_page(client):
    intruder = Browser(password="wrong")
    try:
        response = intruder.authorize(client.authorization_url())
    finally:
        intruder.close()
    assert response.status_code == 200
    assert "did not match" in response.text


# CORS for browser-based clients ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/o/token/", "POST"),
        ("/o/register/", "POST"),
        ("/o/revoke_token/", "POST"),
        ("/.well-known/oauth-authorization-server", "GET"),
    ],
)
def test_browser_clients_may_call_the_machine_endpoints(server, path, method):
    origin = {"Origin": "http://localhost:6274"}
    preflight = httpx.options(
        server.base_url + path,
        headers={**origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert method in preflight.headers["access-control-allow-methods"]
    assert "Content-Type" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers
    response = httpx.request(method, server.base_url + path, headers=origin, data={} if method == "POST" else None)
    assert response.headers["access-control-allow-origin"] == "*"


def test_the_authorization_and_login_pages_get_no_cors(server):
    response = httpx.get(f"{server.base_url}/accounts/login/", headers={"Origin": "http://localhost:6274"})
    assert "access-control-allow-origin" not in response.headers


# Client ID Metadata Documents -----------------------------------------------------------------------------
def _cimd_document(url: str, **overrides) -> dict:
    return {
        "client_id": url,
        "client_name": "Metadata-document client",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **overrides,
    }


def test_a_client_identified_by_its_metadata_document(server, metadata, browser):
    client_id = "https://client.example/oauth/journal-client.json"
    server.publish_client_document(client_id, _cimd_document(client_id))
    oauth_client = OAuthClient(server, metadata, client_id=client_id)
    code = oauth_client.code_for(browser)
    consent = next(page for page in browser.pages if "consent-form" in page.text)
    assert "Metadata-document client" in consent.text
    token = oauth_client.token(code)
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "user:read entries:read tags:read"


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uris": ["http://evil.example/cb"]},
        {"redirect_uris": [REDIRECT_URI + "#frag"]},
        {"token_endpoint_auth_method": "client_secret_basic"},
        {"grant_types": ["client_credentials"]},
        {"client_id": "https://someone-else.example/client.json"},
    ],
)
def test_a_metadata_document_breaking_the_rules_makes_an_unknown_client(server, metadata, overrides):
    client_id = f"https://client.example/bad-{secrets.token_hex(4)}.json"
    server.publish_client_document(client_id, _cimd_document(client_id, **overrides))
    anonymous = Browser()
    try:
        response = anonymous.authorize(OAuthClient(server, metadata, client_id=client_id).authorization_url())
    finally:
        anonymous.close()
    assert response.status_code == 400
    assert 'id="oauth-error"' in response.text
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("resource", "http://elsewhere.example/mcp", "invalid_target"),
        ("scope", "user:read nonexistent", "invalid_scope"),
        ("code_challenge_method", "plain", "invalid_request"),
    ],
)
def test_a_tampered_consent_form_is_refused(server, client, browser, field, value, error):
    """The consent form's hidden fields are checked again when it comes back."""
    url = client.authorization_url()
    response = browser._get(url)
    if response.status_code == 302:  # not signed in yet: through the login page first
        login_page = browser._get(str(httpx.URL(url).join(response.headers["location"])))
        credentials = {"username": "demo", "password": "demo"}
        signed_in = browser._submit(login_page, parse_forms(login_page.text)["login-form"], credentials)
        response = browser._get(str(httpx.URL(url).join(signed_in.headers["location"])))
    consent = parse_forms(response.text)["consent-form"]
    tampered = browser._submit(response, consent, {"allow": "Allow", field: value})
    assert tampered.status_code == 302
    params = query_of(tampered)
    assert params["error"] == error
    assert "code" not in params
