"""The authorization server's sign-in and consent pages in a real browser (django_mcp_scopes.oauth).

A public client registered over HTTP (RFC 7591) asks for authorization with PKCE S256 and an RFC 8707
resource; the browser is sent to the login page, signs in, reads the consent page and allows or
denies. The client's redirect URI is a loopback address nobody listens on: the browser's request to
it is answered by Playwright, so the test reads exactly what the authorization server sent back.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from oauth2_provider.models import AccessToken, Grant
from playwright.sync_api import expect

from tests.oauth_support import REDIRECT_URI, oauth_settings_on, pkce, user  # noqa: F401

pytestmark = pytest.mark.usefixtures("oauth_settings_on", "user")


class Callback:
    """The client's redirect URI, answered inside the browser; remembers what it was sent."""

    def __init__(self, page) -> None:
        self.urls: list[str] = []
        page.route(re.compile(rf"^{re.escape(REDIRECT_URI)}(\?.*)?$"), self._answer)

    def _answer(self, route) -> None:
        self.urls.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="client callback reached")

    @property
    def query(self) -> dict[str, str]:
        assert len(self.urls) == 1, self.urls
        return {key: values[0] for key, values in parse_qs(urlsplit(self.urls[0]).query).items()}


@pytest.fixture
def client_id(live_server) -> str:
    response = httpx.post(
        f"{live_server.url}/o/register/",
        json={"redirect_uris": [REDIRECT_URI], "client_name": "Browser test client"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["client_id"]


@pytest.fixture
def authorization(live_server, client_id):
    """The authorization URL a client sends the browser to, and the PKCE verifier it keeps."""
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "browser-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "notes:write",
        "resource": f"{live_server.url}/mcp",
    }
    return {"url": f"/o/authorize/?{urlencode(params)}", "verifier": verifier}


def sign_in(page, username: str, password: str) -> None:
    form = page.locator("#login-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()


def test_sign_in_consent_and_allow_returns_a_code_that_buys_a_bound_token(
    page, live_server, client_id, authorization, screenshot
):
    callback = Callback(page)
    page.goto(authorization["url"])
    page.wait_for_url(re.compile(r"/o/login/\?next="))
    expect(page.locator("h1")).to_have_text("Sign in")
    screenshot("oauth-login-page")
    sign_in(page, "alice", "alice-pw")

    expect(page.locator("h1")).to_have_text("Allow Browser test client to act for you?")
    # The scope's human description from the database, and what it includes through the hierarchy.
    requested = page.locator("#requested-scopes li")
    expect(requested).to_have_count(1)
    expect(requested).to_have_attribute("data-scope", "notes:write")
    expect(requested).to_contain_text("Write notes for you")
    expect(requested).to_contain_text("includes notes:read")
    expect(page.locator("#client-unverified")).to_contain_text("registered itself")
    expect(page.locator("#redirect-host")).to_contain_text("127.0.0.1")
    expect(page.locator("#loopback-warning")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Signed in as alice")
    screenshot("oauth-consent-page")
    assert not Grant.objects.exists()  # nothing issued before the person decides

    page.locator("#consent-form").get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{REDIRECT_URI}?**")
    query = callback.query
    assert query["state"] == "browser-state"
    assert query["iss"] == live_server.url
    assert query["code"]
    assert "error" not in query
    grant = Grant.objects.get(application__client_id=client_id)
    assert (grant.user.username, grant.scope) == ("alice", "notes:write")

    # The client trades the code (with its verifier) for a token bound to the MCP endpoint.
    token = httpx.post(
        f"{live_server.url}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": authorization["verifier"],
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "notes:write"
    # (Registration gave the client an RFC 7592 management token too: that one has no user.)
    issued = AccessToken.objects.get(application__client_id=client_id, user__username="alice")
    assert issued.resource == [f"{live_server.url}/mcp"]
    assert issued.scope == "notes:write"


def test_deny_on_the_consent_page_returns_access_denied_and_issues_nothing(
    page, live_server, client_id, authorization, screenshot
):
    callback = Callback(page)
    page.goto(authorization["url"])
    sign_in(page, "alice", "alice-pw")
    expect(page.locator("#requested-scopes")).to_contain_text("Write notes for you")

    page.locator("#consent-form").get_by_role("button", name="Deny").click()
    page.wait_for_url(f"{REDIRECT_URI}?**")
    query = callback.query
    assert query["error"] == "access_denied"
    assert query["state"] == "browser-state"
    assert "code" not in query
    assert not Grant.objects.exists()
    assert not AccessToken.objects.filter(user__isnull=False).exists()


def test_a_wrong_password_keeps_the_browser_on_the_login_page(page, client_id, authorization, screenshot):
    callback = Callback(page)
    page.goto(authorization["url"])
    sign_in(page, "alice", "wrong-password")

    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("p.errors")).to_have_text("Your username and password did not match. Please try again.")
    # The username typed is kept, the password is not, and the form is still bound to the same request.
    expect(page.get_by_label("Username")).to_have_value("alice")
    expect(page.get_by_label("Password")).to_have_value("")
    assert page.locator("#login-form input[name=next]").input_value().startswith("/o/authorize/?")
    screenshot("oauth-login-wrong-password")
    assert callback.urls == []

    sign_in(page, "alice", "alice-pw")
    expect(page.locator("#consent-form")).to_be_visible()


def test_a_bad_request_is_refused_before_the_login_page(page, live_server, client_id, screenshot):
    """An unregistered redirect URI gets an error page, never a login form or a redirect."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": "https://attacker.example/cb",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        "scope": "notes:read",
    }
    response = page.goto(f"/o/authorize/?{urlencode(params)}")
    assert response is not None and response.status == 400
    expect(page.locator("#oauth-error")).to_be_visible()
    expect(page.locator("#login-form")).to_have_count(0)
    assert page.url.startswith(live_server.url)
    screenshot("oauth-error-unregistered-redirect-uri")
