"""The authorization and token endpoints of ``django_mcp_scopes.oauth``, in process, with real DOT rows.

Bad requests are refused before login, with the right OAuth error; tokens are bound to this
project's MCP endpoint; the token request must repeat ``redirect_uri``; a replayed code revokes
what it issued; no malformed request gets a 500.
"""

from __future__ import annotations

import pytest
from django.utils.html import escape
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from tests.oauth_support import REDIRECT_URI, Flow, location_query, oauth_settings_on, register, user  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow(client, oauth_settings_on, user):  # noqa: F811
    return Flow(client, user)


# authorization requests ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"resource": "http://elsewhere.example/mcp"}, "invalid_target"),
        ({"resource": "http://testserver/mcp-admin"}, "invalid_target"),
        ({"resource": "not a uri"}, "invalid_target"),
        ({"response_type": "token"}, "unauthorized_client"),
        ({"scope": "notes:read unknown:scope"}, "invalid_scope"),
    ],
)
def test_bad_authorization_requests_are_refused_before_login(flow, overrides, error):
    flow.client.logout()
    response = flow.client.get(flow.authorize_url(**overrides))
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT_URI)
    query = location_query(response)
    assert query["error"] == error
    assert query["state"] == "xyz"
    assert query["iss"] == "http://testserver"


@pytest.mark.parametrize(
    "overrides",
    [{"client_id": "no-such-client"}, {"redirect_uri": "https://attacker.example/cb"}, {"client_id": None}],
)
def test_unknown_client_or_redirect_uri_gets_an_error_page_not_a_redirect(flow, overrides):
    flow.client.logout()
    response = flow.client.get(flow.authorize_url(**overrides))
    assert response.status_code == 400
    assert b'id="oauth-error"' in response.content


def test_a_valid_request_from_an_anonymous_user_goes_to_the_packaged_login_page(flow):
    flow.client.logout()
    response = flow.client.get(flow.authorize_url())
    assert response.status_code == 302
    assert response["Location"].startswith("/o/login/?next=")
    page = flow.client.get(response["Location"])
    assert page.status_code == 200
    assert b'id="login-form"' in page.content
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("username", ['"><script>alert(1)</script>', "x" * 300, "\u00e9l\u00e8ve"])
def test_a_refused_sign_in_keeps_the_username_escaped(flow, username):
    flow.client.logout()
    response = flow.client.post("/o/login/", {"username": username, "password": "wrong"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "did not match" in html
    assert "<script>alert(1)" not in html
    assert f'value="{escape(username)}"' in html


def test_the_projects_own_login_url_is_used_when_it_resolves(flow, settings):
    settings.LOGIN_URL = "/o/authorize/"  # any URL of this project that resolves
    flow.client.logout()
    response = flow.client.get(flow.authorize_url())
    assert response["Location"].startswith("/o/authorize/?next=")


def test_the_consent_page_explains_client_redirect_host_and_scopes(flow):
    response = flow.client.get(flow.authorize_url(scope="notes:write"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="client-unverified"' in html
    assert 'id="loopback-warning"' in html
    assert "127.0.0.1" in html
    assert "Write notes for you" in html
    assert "includes notes:read" in html
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


def test_an_https_client_has_no_loopback_warning(client, oauth_settings_on, user):  # noqa: F811
    response = register(client, redirect_uris=["https://app.example/cb"])
    client_id = response.json()["client_id"]
    flow = Flow.__new__(Flow)
    flow.client, flow.prefix, flow.client_id = client, "/o/", client_id
    client.force_login(user)
    page = client.get(flow.authorize_url(redirect_uri="https://app.example/cb"))
    assert page.status_code == 200
    assert b'id="loopback-warning"' not in page.content
    assert b"app.example" in page.content


# token requests -----------------------------------------------------------------------------------------
def test_a_token_is_bound_to_the_mcp_endpoint_with_and_without_resource(flow):
    with_resource = flow.token(flow.code(), resource="http://testserver/mcp")
    assert with_resource.status_code == 200, with_resource.content
    without = flow.token(flow.code(resource=None))
    assert without.status_code == 200, without.content
    for body in (with_resource.json(), without.json()):
        assert body["expires_in"] <= 600
        token = AccessToken.objects.get(token_checksum=_checksum(body["access_token"]))
        assert token.resource == ["http://testserver/mcp"]


def test_refresh_keeps_the_binding_and_refuses_another_resource(flow):
    tokens = flow.token(flow.code()).json()
    foreign = flow.client.post(
        "/o/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": flow.client_id,
            "resource": "http://elsewhere.example/mcp",
        },
    )
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_target"
    refreshed = flow.client.post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": flow.client_id},
    )
    assert refreshed.status_code == 200, refreshed.content
    token = AccessToken.objects.get(token_checksum=_checksum(refreshed.json()["access_token"]))
    assert token.resource == ["http://testserver/mcp"]


def test_the_token_request_must_repeat_redirect_uri(flow):
    response = flow.token(flow.code(), redirect_uri=None)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "redirect_uri" in response.json()["error_description"]


def test_a_foreign_resource_at_the_token_endpoint_is_invalid_target(flow):
    response = flow.token(flow.code(), resource="http://elsewhere.example/mcp")
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"


def test_a_replayed_code_revokes_the_tokens_issued_for_it(flow):
    code = flow.code()
    first = flow.token(code)
    assert first.status_code == 200
    assert AccessToken.objects.filter(token_checksum=_checksum(first.json()["access_token"])).exists()
    replay = flow.token(code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(token_checksum=_checksum(first.json()["access_token"])).exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True, application__client_id=flow.client_id).exists()


def test_a_wrong_code_verifier_is_refused(flow):
    response = flow.token(flow.code(), code_verifier="x" * 50)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"grant_type": "password", "username": "alice", "password": "alice-pw"},
        {"grant_type": "client_credentials"},
        {"grant_type": "authorization_code"},
        {"grant_type": "authorization_code", "code": "nope", "redirect_uri": REDIRECT_URI},
        {"grant_type": "refresh_token", "refresh_token": "nope"},
        {"grant_type": "authorization_code", "code": "\x00" * 10, "redirect_uri": "\x00"},
        {"grant_type": "x" * 5000},
    ],
)
def test_malformed_token_requests_get_an_oauth_error(flow, data):
    data = {"client_id": flow.client_id, **data}
    before = (AccessToken.objects.count(), Grant.objects.count())
    response = flow.client.post("/o/token/", data)
    assert 400 <= response.status_code < 500
    assert "error" in response.json()
    assert (AccessToken.objects.count(), Grant.objects.count()) == before


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=authorization_code&code=%FF%FE&redirect_uri=%FF&client_id=%FF",
        b"\xff\xfe\x00garbage",
        b'{"grant_type": "authorization_code"}',
    ],
)
def test_undecodable_token_requests_get_no_500(flow, body):
    response = flow.client.post("/o/token/", body, content_type="application/x-www-form-urlencoded")
    assert 400 <= response.status_code < 500


def test_with_two_mcp_endpoints_a_request_must_name_one(client, oauth_settings_on, user):  # noqa: F811
    oauth_settings_on.ROOT_URLCONF = "tests.oauth_urls_two"
    from django_mcp_scopes.oauth import resources

    resources.forget_paths()
    flow = Flow(client, user, prefix="/auth/")
    response = client.get(flow.authorize_url(resource=None))
    query = location_query(response)
    assert query["error"] == "invalid_target"
    assert "http://testserver/mcp or http://testserver/mcp-admin" in query["error_description"]
    assert flow.token(flow.code(resource="http://testserver/mcp-admin")).status_code == 200


def _checksum(raw: str) -> str:
    import hashlib

    return hashlib.sha256(raw.encode()).hexdigest()


def test_a_consent_post_with_a_foreign_resource_is_refused_with_a_redirect(flow):
    from urllib.parse import urlencode

    params = flow.authorize_params(resource="http://elsewhere.example/mcp")
    response = flow.client.post(f"/o/authorize/?{urlencode(params)}", {**params, "allow": "Allow"})
    assert response.status_code == 302
    assert location_query(response)["error"] == "invalid_target"
    assert not Grant.objects.exists()


def test_the_login_url_is_found_under_a_script_prefix(flow, settings):
    from django.urls import set_script_prefix

    settings.LOGIN_URL = "oauth2_provider:token"  # a URL name of this project, reversed with the prefix
    set_script_prefix("/tenant/")
    try:
        from django_mcp_scopes.oauth.views import login_url

        assert login_url() == "/tenant/o/token/"
    finally:
        set_script_prefix("/")


@pytest.mark.parametrize(
    ("method", "url", "data", "content_type"),
    [
        ("post", "/o/token/", {"grant_type": "refresh_token", "refresh_token": "a\x00b"}, None),
        ("post", "/o/revoke_token/", {"token": "\x00"}, None),
        ("get", "/o/authorize/?response_type=code&client_id=%00", None, None),
        (
            "post",
            "/o/register/",
            '{"redirect_uris": ["http://127.0.0.1/cb"], "client_name": "a\\u0000"}',
            "application/json",
        ),
        ("get", "/o/register/abc%00/", None, None),
    ],
)
def test_nul_characters_are_refused_before_any_lookup(flow, django_assert_num_queries, method, url, data, content_type):
    """PostgreSQL text cannot hold NUL: a lookup with one was a 500 there (found by CI on PostgreSQL)."""
    kwargs = {"content_type": content_type} if content_type else {}
    with django_assert_num_queries(0):
        response = getattr(flow.client, method)(url, data, **kwargs) if data is not None else flow.client.get(url)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Request parameters must not contain NUL characters.",
    }
