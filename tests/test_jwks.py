"""The JWKS cache: fetched once, refreshed on rotation (rate-limited), bounded fetches, outages, the
shared cache, discovery, and which published keys may be used. A real JWKS endpoint on 127.0.0.1."""

# Fixtures come from tests.jwt_support by import; a test naming one as an argument is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.tokens.jwks import jwks_cache
from tests.jwt_support import (  # noqa: F401 (fixtures)
    ISSUER,
    _setup,
    alice,
    b64,
    call,
    claims,
    configure,
    forge_hs256,
    key_server,
    keys,
    provider,
    refused,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.enforcement_views")]


def test_keys_are_fetched_once_then_reused(client, configure, keys, alice, provider):
    configure()
    for _ in range(3):
        assert call(client, keys["a"].sign(claims())).status_code == 200
    assert provider.fetches() == 1


def test_rotation_a_new_kid_fetches_the_keys_again(client, configure, keys, alice, provider):
    configure()
    assert call(client, keys["a"].sign(claims())).status_code == 200
    provider.keys = [keys["b"].jwk, keys["a"].jwk]
    assert call(client, keys["b"].sign(claims())).status_code == 200
    assert call(client, keys["a"].sign(claims())).status_code == 200
    assert provider.fetches() == 2


def test_made_up_kids_do_not_become_a_flood_of_fetches(client, configure, keys, alice, provider):
    configure({"JWKS_MIN_REFRESH_SECONDS": 60})
    assert call(client, keys["a"].sign(claims())).status_code == 200
    for index in range(5):
        refused(call(client, keys["a"].sign(claims(), kid=f"made-up-{index}")), "does not publish")
    assert provider.fetches() == 1  # at most one fetch per JWKS_MIN_REFRESH_SECONDS


def test_a_removed_key_stops_working_after_the_refresh_interval(client, configure, keys, alice, provider):
    configure({"JWKS_REFRESH_SECONDS": 1})
    assert call(client, keys["a"].sign(claims())).status_code == 200
    provider.keys = [keys["b"].jwk]
    time.sleep(1.1)
    refused(call(client, keys["a"].sign(claims())), "does not publish")


def test_known_keys_are_served_while_the_provider_is_down_for_a_bounded_time(client, configure, keys, alice, provider):
    configure({"JWKS_REFRESH_SECONDS": 1, "JWKS_MAX_STALE_SECONDS": 1.5})
    assert call(client, keys["a"].sign(claims())).status_code == 200
    provider.down = True
    time.sleep(1.1)
    assert call(client, keys["a"].sign(claims())).status_code == 200  # stale but within the bound
    # A rotated key cannot be had while the provider is down: 503, try again later.
    response = call(client, keys["b"].sign(claims()))
    assert response.status_code == 503
    time.sleep(1.5)
    response = call(client, keys["a"].sign(claims()))
    assert response.status_code == 503
    assert response["Retry-After"] == str(mcp_scopes_settings.SERVICE_UNAVAILABLE_RETRY_AFTER)
    assert response.json()["error"] == "temporarily_unavailable"
    provider.down = False
    time.sleep(0.05)
    assert call(client, keys["a"].sign(claims())).status_code == 200


def test_a_provider_never_reached_is_a_503(client, configure, keys, alice, provider):
    configure()
    provider.down = True
    response = call(client, keys["a"].sign(claims()))
    assert response.status_code == 503
    assert "identity provider" in response.json()["error_description"]


def test_a_provider_that_does_not_listen_is_a_503(client, keys, alice):
    with key_server() as gone:
        url = gone.url
    with override_settings(MCP_SCOPES={"JWT_ISSUERS": [{"ISSUER": ISSUER, "JWKS_URI": url + "/jwks"}]}):
        assert call(client, keys["a"].sign(claims())).status_code == 503


def test_an_oversized_key_set_is_refused(client, configure, keys, alice, provider):
    configure({"JWKS_MAX_BYTES": 4096})
    provider.padding = 10_000
    assert call(client, keys["a"].sign(claims())).status_code == 503


def test_a_trickling_provider_is_cut_at_the_timeout(client, configure, keys, alice, provider):
    configure({"JWKS_TIMEOUT_SECONDS": 0.3})
    provider.delay = 0.05
    started = time.monotonic()
    assert call(client, keys["a"].sign(claims())).status_code == 503
    assert time.monotonic() - started < 2


def test_keys_are_shared_across_processes_through_the_cache(client, configure, keys, alice, provider):
    configure()
    assert call(client, keys["a"].sign(claims())).status_code == 200
    jwks_cache.clear_local()  # another process: nothing in memory
    provider.down = True
    assert call(client, keys["a"].sign(claims())).status_code == 200
    assert provider.fetches() == 1


def test_discovery_finds_the_jwks_uri(client, keys, alice, provider):
    provider.discovery_issuer = ISSUER
    entry = {"ISSUER": ISSUER, "DISCOVERY_URL": provider.url + "/.well-known/openid-configuration"}
    with override_settings(MCP_SCOPES={"JWT_ISSUERS": [entry]}):
        assert call(client, keys["a"].sign(claims())).status_code == 200
    assert provider.requests[:2] == ["/.well-known/openid-configuration", "/jwks"]


def test_discovery_naming_another_issuer_is_not_trusted(client, keys, alice, provider):
    provider.discovery_issuer = "https://evil.example"
    entry = {"ISSUER": ISSUER, "DISCOVERY_URL": provider.url + "/.well-known/openid-configuration"}
    with override_settings(MCP_SCOPES={"JWT_ISSUERS": [entry]}):
        assert call(client, keys["a"].sign(claims())).status_code == 503
    assert "/jwks" not in provider.requests


@pytest.mark.parametrize(
    "published",
    [
        {"use": "enc"},
        {"key_ops": ["encrypt"]},
        {"alg": "RS512"},
    ],
)
def test_keys_not_meant_for_this_signature_are_not_used(client, configure, keys, alice, provider, published):
    provider.keys = [{**keys["a"].jwk, **published}]
    configure()
    refused(call(client, keys["a"].sign(claims())), "does not publish")


def test_a_symmetric_key_in_the_jwks_is_never_used(client, configure, keys, alice, provider):
    secret = b"shared"
    provider.keys = [{"kty": "oct", "kid": "key-a", "k": b64(secret)}]
    configure(ALGORITHMS=["RS256"])
    header = {"alg": "HS256", "typ": "at+jwt", "kid": "key-a"}
    refused(call(client, forge_hs256(header, claims(), secret)), "algorithm")
