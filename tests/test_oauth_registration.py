"""Anonymous registration of public clients (RFC 7591/7592) under ``django_mcp_scopes.oauth.registration``.

Bad bodies get the right error and register nothing; the per-IP limit holds under concurrent
requests against a real server; a cache that really is down (Redis on a closed port) gives a 503
with Retry-After, never a 500.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid

import httpx
import pytest
from django.test import override_settings
from oauth2_provider.models import get_application_model

from django_mcp_scopes.oauth.registration import RegistrationRateLimit, client_ip
from tests.oauth_support import REDIRECT_URI, MinimalServer, oauth_settings_on, register  # noqa: F401

pytestmark = pytest.mark.django_db
Application = get_application_model()
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

BAD_BODIES = [
    (b"not json", "invalid_client_metadata", "valid JSON"),
    (b"[1, 2]", "invalid_client_metadata", "JSON object"),
    (b"[" * 10_000, "invalid_client_metadata", "valid JSON"),
    (b"{}", "invalid_redirect_uri", "non-empty array"),
    (json.dumps({"redirect_uris": "https://a.example/cb"}).encode(), "invalid_redirect_uri", "non-empty array"),
    (
        json.dumps({"redirect_uris": [f"https://a.example/{i}" for i in range(6)]}).encode(),
        "invalid_redirect_uri",
        "At most 5",
    ),
    (json.dumps({"redirect_uris": ["https://a.example/" + "x" * 2001]}).encode(), "invalid_redirect_uri", "2000"),
    (json.dumps({"redirect_uris": ["http://evil.example/cb"]}).encode(), "invalid_redirect_uri", "loopback"),
    (json.dumps({"redirect_uris": ["http://127.0.0.1.evil.example/cb"]}).encode(), "invalid_redirect_uri", "loopback"),
    (json.dumps({"redirect_uris": ["https://a.example/cb#frag"]}).encode(), "invalid_redirect_uri", "fragment"),
    (json.dumps({"redirect_uris": ["https://user@a.example/cb"]}).encode(), "invalid_redirect_uri", "user information"),
    (json.dumps({"redirect_uris": ["https://a.example/c b"]}).encode(), "invalid_redirect_uri", "whitespace"),
    (
        json.dumps({"redirect_uris": ["https://a.example\\@evil.example/"]}).encode(),
        "invalid_redirect_uri",
        "backslash",
    ),
    (json.dumps({"redirect_uris": ["javascript:alert(1)"]}).encode(), "invalid_redirect_uri", "scheme"),
    (json.dumps({"redirect_uris": ["https://a.example:99999/cb"]}).encode(), "invalid_redirect_uri", "not a valid URI"),
    (json.dumps({"redirect_uris": [None]}).encode(), "invalid_redirect_uri", "non-empty string"),
    (
        json.dumps({"redirect_uris": [REDIRECT_URI], "grant_types": ["client_credentials"]}).encode(),
        "invalid_client_metadata",
        "grant_types",
    ),
    (
        json.dumps({"redirect_uris": [REDIRECT_URI], "response_types": ["token"]}).encode(),
        "invalid_client_metadata",
        "response_types",
    ),
    (
        json.dumps({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt"}).encode(),
        "invalid_client_metadata",
        "token_endpoint_auth_method",
    ),
    (json.dumps({"redirect_uris": [REDIRECT_URI], "client_name": 42}).encode(), "invalid_client_metadata", "string"),
    (
        json.dumps({"redirect_uris": [REDIRECT_URI], "client_name": "n" * 256}).encode(),
        "invalid_client_metadata",
        "255",
    ),
    (
        json.dumps({"redirect_uris": [REDIRECT_URI], "client_uri": "https://a.example/" + "x" * 3000}).encode(),
        "invalid_client_metadata",
        "client_uri",
    ),
    (b'{"redirect_uris": ["' + b"x" * 20_000 + b'"]}', "invalid_client_metadata", "at most 16384 bytes"),
]


@pytest.mark.parametrize(("body", "error", "message"), BAD_BODIES)
def test_bad_registrations_get_the_right_error_and_register_nothing(client, oauth_settings_on, body, error, message):  # noqa: F811
    response = client.post("/o/register/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == error
    assert message in response.json()["error_description"]
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:33418/callback",
        "http://[::1]/cb",
        "http://localhost:6274/oauth/callback",
        "https://a.example/cb",
    ],
)
def test_https_and_loopback_http_on_any_port_are_accepted(client, oauth_settings_on, uri):  # noqa: F811
    response = register(client, redirect_uris=[uri])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    application = Application.objects.get(client_id=body["client_id"])
    assert application.client_type == Application.CLIENT_PUBLIC
    assert application.user is None


def test_a_secret_method_is_replaced_by_none(client, oauth_settings_on):  # noqa: F811
    response = register(client, token_endpoint_auth_method="client_secret_basic")
    assert response.status_code == 201
    assert response.json()["token_endpoint_auth_method"] == "none"


def test_updates_follow_the_same_policy(client, oauth_settings_on):  # noqa: F811
    created = register(client).json()
    url = created["registration_client_uri"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {created['registration_access_token']}"}
    bad = client.put(url, json.dumps({"redirect_uris": ["http://evil.example/cb"]}), "application/json", **auth)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_redirect_uri"
    good = client.put(url, json.dumps({"redirect_uris": ["https://b.example/cb"]}), "application/json", **auth)
    assert good.status_code == 200, good.content
    assert Application.objects.get(client_id=created["client_id"]).redirect_uris == "https://b.example/cb"


def test_the_per_ip_limit_answers_429_and_counts_only_successes(client, oauth_settings_on):  # noqa: F811
    oauth_settings_on.MCP_SCOPES_OAUTH = {"REGISTRATION_RATE_LIMIT": 2}
    assert register(client, redirect_uris=["http://evil.example/cb"]).status_code == 400  # takes no slot
    assert register(client).status_code == 201
    assert register(client).status_code == 201
    refused = register(client)
    assert refused.status_code == 429
    assert refused.json()["error"] == "temporarily_unavailable"
    assert refused["Retry-After"] == "3600"
    other = (
        register(client, REMOTE_ADDR="10.0.0.2")
        if False
        else client.post(
            "/o/register/",
            json.dumps({"redirect_uris": [REDIRECT_URI]}),
            content_type="application/json",
            REMOTE_ADDR="10.0.0.2",
        )
    )
    assert other.status_code == 201
    assert Application.objects.count() == 3


def test_a_reserved_slot_is_given_back(oauth_settings_on):  # noqa: F811
    oauth_settings_on.MCP_SCOPES_OAUTH = {"REGISTRATION_RATE_LIMIT": 1}
    limit = RegistrationRateLimit("192.0.2.1")
    assert limit.reserve()
    assert not limit.reserve()
    limit.release()
    assert limit.reserve()


def test_the_client_ip_comes_from_the_configured_source(rf, settings):
    request = rf.post("/o/register/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7, 10.0.0.9")
    assert client_ip(request) == "10.0.0.1"
    settings.MCP_SCOPES_OAUTH = {"CLIENT_IP_META_KEY": "HTTP_X_FORWARDED_FOR", "CLIENT_IP_TRUSTED_PROXIES": 1}
    assert client_ip(request) == "203.0.113.7"  # the entry the one trusted proxy appended
    settings.MCP_SCOPES_OAUTH = {"CLIENT_IP_META_KEY": "HTTP_X_FORWARDED_FOR", "CLIENT_IP_TRUSTED_PROXIES": 5}
    assert client_ip(request) == "6.6.6.6"
    settings.MCP_SCOPES_OAUTH = {"CLIENT_IP_META_KEY": "HTTP_X_REAL_IP"}
    assert client_ip(request) == "10.0.0.1"  # header absent: the socket's address


def test_the_total_cap_answers_503(client, oauth_settings_on):  # noqa: F811
    oauth_settings_on.MCP_SCOPES_OAUTH = {"REGISTRATION_MAX_CLIENTS": 1}
    assert register(client).status_code == 201
    refused = register(client)
    assert refused.status_code == 503
    assert refused["Retry-After"]
    assert Application.objects.count() == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is


def test_a_cache_that_is_down_gives_503_with_retry_after(client, oauth_settings_on):  # noqa: F811
    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "KEY_PREFIX": f"oauth-down-{uuid.uuid4().hex[:8]}",
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    with override_settings(CACHES=down):
        response = register(client)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Retry-After"] == "5"
    assert not Application.objects.exists()


@pytest.mark.live
@pytest.mark.redis
def test_concurrent_registrations_never_exceed_the_per_ip_limit():
    limit, attempts = 3, 16
    env = {"REDIS_URL": REDIS_URL, "DCR_PER_IP_PER_HOUR": str(limit)}
    with MinimalServer("wsgi", **env) as server:
        barrier = threading.Barrier(attempts)
        statuses: list[int] = []

        def attempt() -> None:
            barrier.wait()
            response = httpx.post(f"{server.base_url}/o/register/", json={"redirect_uris": [REDIRECT_URI]}, timeout=60)
            statuses.append(response.status_code)

        threads = [threading.Thread(target=attempt) for _ in range(attempts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        registered = server.manage(
            "shell", "-c", "from oauth2_provider.models import Application; print(Application.objects.count())"
        )
    assert sorted(statuses) == [201] * limit + [429] * (attempts - limit)
    assert int(registered.split()[-1]) == limit
