"""JWT access tokens from external issuers: every refusal, users and claims, the order of token
sources, metadata, settings and checks (the key set: tests/test_jwks.py).

The provider here is a real HTTP server on 127.0.0.1 publishing real public keys (``tests.jwt_support``);
tokens are signed with PyJWT or, for the attacks PyJWT refuses to produce, written by hand. The
same rules against a real OpenID provider: ``tests/test_jwt_live.py``.
"""

# Fixtures come from tests.jwt_support by import; a test naming one as an argument is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, modify_settings, override_settings
from oauth2_provider.models import AccessToken

from django_mcp_scopes.authentication import authenticate_request
from django_mcp_scopes.conf import mcp_scopes_settings
from django_mcp_scopes.exceptions import InvalidToken
from django_mcp_scopes.tokens.jwks import jwks_cache
from tests.conftest import clear_cache
from tests.enforcement_support import make_token
from tests.jwt_support import (  # noqa: F401 (fixtures)
    ISSUER,
    RESOURCE,
    _setup,
    alice,
    b64,
    call,
    claims,
    configure,
    forge,
    forge_hs256,
    issuer_settings,
    keys,
    provider,
    refused,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.enforcement_views")]

# --- accepted tokens --------------------------------------------------------------------------------


def test_a_valid_token_is_accepted_and_the_principal_carries_the_claims(client, configure, keys, alice):
    configure()
    response = call(client, keys["a"].sign(claims()))
    assert response.status_code == 200, response.content
    assert response.json()["granted"] == ["notes:read"]
    assert response.json()["client_id"] == "agent"
    assert response.json()["user_id"] == alice.pk

    request = RequestFactory().get("/api/notes", HTTP_AUTHORIZATION=f"Bearer {keys['a'].sign(claims(tid='t-1'))}")
    principal = authenticate_request(request)
    assert principal.user == alice
    assert principal.claims["tid"] == "t-1"
    assert principal.claims["sub"] == "alice"
    assert principal.extra["source"] == "jwt"
    assert principal.extra["issuer"] == ISSUER
    assert principal.token_id == "jti-1"
    with pytest.raises(TypeError):
        principal.claims["sub"] = "mallory"  # read-only


def test_insufficient_scope_is_the_usual_403_challenge(client, configure, keys, alice):
    configure()
    response = call(client, keys["a"].sign(claims(scope="notes:delete")))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert 'scope="notes:read"' in response["WWW-Authenticate"]


def test_the_scope_hierarchy_applies_to_jwt_scopes(client, configure, keys, alice):
    configure()
    assert call(client, keys["a"].sign(claims(scope="admin"))).status_code == 200  # admin > write > read


@pytest.mark.parametrize(
    ("scope_claim", "value"),
    [("scp", ["notes:read", "other"]), ("scp", "notes:read other"), ("permissions", ["notes:read"])],
)
def test_the_scope_claim_is_configurable_string_or_array(client, configure, keys, alice, scope_claim, value):
    configure(SCOPE_CLAIM=scope_claim)
    token = keys["a"].sign(claims(scope=None, **{scope_claim: value}))
    assert call(client, token).status_code == 200


def test_the_default_scope_claim_ignores_scp(client, configure, keys, alice):
    configure()
    response = call(client, keys["a"].sign(claims(scope=None, scp=["notes:read"])))
    assert response.status_code == 403  # no scopes where it looks: a step-up challenge, not a 401


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], ["notes:read "], 7])
def test_a_malformed_scope_claim_is_refused(client, configure, keys, alice, value):
    configure()
    refused(call(client, keys["a"].sign(claims(scope=value))), "scope claim is malformed")


def test_an_accepted_audience_covers_entra_style_tokens(client, configure, keys, alice):
    app_id = "00000000-1111-2222-3333-444444444444"
    configure(AUDIENCES=[app_id], REQUIRE_AT_JWT_TYPE=False, SCOPE_CLAIM="scp")
    token = keys["a"].sign(claims(aud=app_id, scope=None, scp="notes:read"), typ="JWT")
    assert call(client, token).status_code == 200
    refused(call(client, keys["a"].sign(claims(aud="11111111-0000-0000-0000-000000000000"))), "another audience")


def test_the_audience_may_be_a_list_and_is_compared_canonically(client, configure, keys, alice):
    configure()
    token = keys["a"].sign(claims(aud=["https://other.example", "HTTP://TestServer:80/api/notes/"]))
    assert call(client, token).status_code == 200


def test_es256_keys_work_when_allowed(client, configure, keys, provider, alice):
    provider.keys = [keys["a"].jwk, keys["ec"].jwk]
    configure(ALGORITHMS=["RS256", "ES256"])
    assert call(client, keys["ec"].sign(claims())).status_code == 200


def test_plain_jwt_typ_is_accepted_only_when_allowed(client, configure, keys, alice):
    configure(REQUIRE_AT_JWT_TYPE=False)
    assert call(client, keys["a"].sign(claims(), typ="JWT")).status_code == 200
    assert call(client, keys["a"].sign(claims(), typ=None)).status_code == 200
    assert call(client, keys["a"].sign(claims(), typ="application/at+jwt")).status_code == 200
    refused(call(client, keys["a"].sign(claims(), typ="dpop+jwt")), "typ")
    # An ID token of the same issuer is never an access token.
    refused(call(client, keys["a"].sign(claims(nonce="n-1"), typ="JWT")), "ID token")
    refused(call(client, keys["a"].sign(claims(at_hash="abc"), typ=None)), "ID token")


# --- refusals ---------------------------------------------------------------------------------------


def _refusals(keys) -> dict[str, tuple[str, str]]:
    now = int(time.time())
    key = keys["a"]
    header = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid}
    return {
        "expired": (key.sign(claims(exp=now - 120, iat=now - 600)), "expired"),
        "not yet valid (nbf)": (key.sign(claims(nbf=now + 600)), "not valid yet"),
        "issued in the future (iat)": (key.sign(claims(iat=now + 600)), "not valid yet"),
        "no exp": (key.sign(claims(exp=None)), "lacks a required claim"),
        "no aud": (key.sign(claims(aud=None)), "lacks a required claim"),
        "another audience": (key.sign(claims(aud="http://testserver/api/other")), "another audience"),
        "aud prefix of this resource": (key.sign(claims(aud="http://testserver/api")), "another audience"),
        "malformed aud": (key.sign(claims(aud=[1])), "audience"),
        "typ JWT where at+jwt is required": (key.sign(claims(), typ="JWT"), "typ"),
        "no typ where at+jwt is required": (key.sign(claims(), typ=None), "typ"),
        "alg none": (forge({**header, "alg": "none"}, claims()), "algorithm"),
        "alg None (case)": (forge({**header, "alg": "None"}, claims()), "algorithm"),
        "HS256 keyed with the public key": (
            forge_hs256({**header, "alg": "HS256"}, claims(), key.public_pem()),
            "algorithm",
        ),
        "unknown crit": (key.sign(claims(), crit=["urn:example:unknown"], **{"urn:example:unknown": 1}), "crit"),
        "crit b64": (forge({**header, "crit": ["b64"], "b64": False}, claims(), b"x"), "crit"),
        "jwk in the header": (key.sign(claims(), jwk=keys["b"].jwk), "key"),
        "jku in the header": (key.sign(claims(), jku="https://evil.example/jwks"), "jku"),
        "x5u in the header": (key.sign(claims(), x5u="https://evil.example/cert"), "x5u"),
        "x5c in the header": (key.sign(claims(), x5c=["MIIB"]), "x5c"),
        "signed by a key the issuer does not publish": (keys["b"].sign(claims(), kid="key-a"), "signature"),
        "unknown kid": (keys["b"].sign(claims()), "does not publish"),
        "kid not a string": (forge({**header, "kid": 5}, claims(), b"x"), "kid"),
        "tampered claims": (
            ".".join(
                [
                    key.sign(claims()).split(".")[0],
                    b64(b'{"iss":"' + ISSUER.encode() + b'","scope":"admin"}'),
                    key.sign(claims()).split(".")[2],
                ]
            ),
            "signature",
        ),
        "sender-constrained (cnf)": (key.sign(claims(cnf={"jkt": "abc"})), "sender-constrained"),
        "no sub": (key.sign(claims(sub=None)), "no sub claim"),
        "sub not a string": (key.sign(claims(sub=12)), "subject (sub) is not a string"),
        "jti not a string": (key.sign(claims(jti=12)), "(jti) is not a string"),
        "unknown user": (key.sign(claims(sub="nobody")), "not known"),
    }


REFUSALS = [
    "expired", "not yet valid (nbf)", "issued in the future (iat)", "no exp", "no aud", "another audience",
    "aud prefix of this resource", "malformed aud", "typ JWT where at+jwt is required",
    "no typ where at+jwt is required", "alg none", "alg None (case)", "HS256 keyed with the public key",
    "unknown crit", "crit b64", "jwk in the header", "jku in the header", "x5u in the header",
    "x5c in the header", "signed by a key the issuer does not publish", "unknown kid", "kid not a string",
    "tampered claims", "sender-constrained (cnf)", "no sub", "sub not a string", "jti not a string", "unknown user",
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_refused(client, configure, keys, alice, case, caplog):
    configure()
    token, words = _refusals(keys)[case]
    with caplog.at_level(logging.DEBUG):
        response = call(client, token)
    refused(response, words or "")
    assert token not in caplog.text
    signature = token.split(".")[2]
    assert not signature or signature not in caplog.text  # not even the signature


def test_the_clock_skew_applies_to_exp(client, configure, keys, alice):
    now = int(time.time())
    configure()  # JWT_LEEWAY_SECONDS defaults to 60
    assert call(client, keys["a"].sign(claims(exp=now - 30, iat=now - 300))).status_code == 200
    configure({"JWT_LEEWAY_SECONDS": 0})
    refused(call(client, keys["a"].sign(claims(exp=now - 30, iat=now - 300))), "expired")


def test_a_token_without_kid_uses_the_only_key(client, configure, keys, alice, provider):
    configure()
    assert call(client, keys["a"].sign(claims(), kid=None)).status_code == 200
    provider.keys = [keys["a"].jwk, keys["b"].jwk]
    jwks_cache.clear_local()
    clear_cache(cache)  # this run's keys only, never FLUSHDB on a shared Redis
    refused(call(client, keys["a"].sign(claims(), kid=None)), "names no key")


def test_wrong_iss_is_never_sent_to_the_jwt_rules_nor_accepted(client, configure, keys, alice):
    configure()
    token = keys["a"].sign(claims(iss="https://evil.example"))
    body = refused(call(client, token), "does not trust")
    assert "iss" in body["error_description"]


@pytest.mark.urls("tests.urls")
def test_an_issuer_spelled_with_a_trailing_slash_is_used_verbatim(client, provider, keys, alice):
    auth0_style = "https://tenant.auth0.example/"
    entry = {"ISSUER": auth0_style, "JWKS_URI": provider.url + "/jwks", "AUDIENCES": ["https://api.example/x"]}
    with override_settings(MCP_SCOPES={"JWT_ISSUERS": [entry]}):
        document = client.get("/.well-known/oauth-protected-resource/narrow/mcp").json()
        assert document["authorization_servers"] == [auth0_style]  # byte-identical to the provider's issuer
        token = keys["a"].sign(claims(iss=auth0_style, aud=["https://api.example/x", "https://tenant/userinfo"]))
        request = RequestFactory().get("/narrow/mcp", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert authenticate_request(request).extra["issuer"] == auth0_style
        with pytest.raises(InvalidToken):
            bad = keys["a"].sign(claims(iss=auth0_style.rstrip("/"), aud="https://api.example/x"))
            authenticate_request(RequestFactory().get("/narrow/mcp", HTTP_AUTHORIZATION=f"Bearer {bad}"))


def test_an_issuer_with_a_trailing_slash_is_not_the_same_issuer(client, configure, keys, alice):
    configure()
    refused(call(client, keys["a"].sign(claims(iss=ISSUER + "/"))), "does not trust")


def test_an_oversized_jwt_is_refused_before_parsing(client, configure, keys, alice, provider):
    configure({"JWT_MAX_TOKEN_BYTES": 1024})
    token = keys["a"].sign(claims(padding="x" * 2000))
    refused(call(client, token), "longer than 1024 bytes")
    assert provider.requests == []  # not even the keys were fetched
    # The Authorization header's own bound (8192 characters) comes first for anything longer.
    response = call(client, keys["a"].sign(claims(padding="x" * 9000)))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_request"


def test_inactive_users_are_refused_at_once(client, configure, keys, alice):
    configure()
    token = keys["a"].sign(claims())
    assert call(client, token).status_code == 200
    alice.is_active = False
    alice.save()
    refused(call(client, token), "inactive user")


def test_users_are_created_on_first_sight_when_asked(client, configure, keys):
    configure(CREATE_USERS=True)
    assert call(client, keys["a"].sign(claims(sub="bob"))).status_code == 200
    bob = get_user_model().objects.get(username="bob")
    assert not bob.has_usable_password()
    assert call(client, keys["a"].sign(claims(sub="bob"))).status_code == 200
    assert get_user_model().objects.filter(username="bob").count() == 1
    refused(call(client, keys["a"].sign(claims(sub="x" * 200))), "not known")  # longer than the username field


def test_a_custom_user_claim_and_resolver(client, configure, keys, alice):
    seen = []

    def by_email(token_claims, issuer):
        seen.append((token_claims["email"], issuer.issuer))
        return get_user_model().objects.filter(email=token_claims["email"]).first()

    alice.email = "alice@example.com"
    alice.save()
    configure(USER_CLAIM="email", USER_RESOLVER=by_email)
    assert call(client, keys["a"].sign(claims(sub="opaque-1", email="alice@example.com"))).status_code == 200
    assert seen == [("alice@example.com", ISSUER)]
    refused(call(client, keys["a"].sign(claims(email="eve@example.com"))), "not known")


def test_no_user_claim_means_no_django_user(client, configure, keys):
    configure(USER_CLAIM=None)
    request = RequestFactory().get("/api/notes", HTTP_AUTHORIZATION=f"Bearer {keys['a'].sign(claims(sub=None))}")
    principal = authenticate_request(request)
    assert principal.user is None
    assert call(client, keys["a"].sign(claims(sub="anyone"))).status_code == 200


def test_a_resolver_that_fails_is_a_503_not_a_500(client, configure, keys):
    def broken(token_claims, issuer):
        raise RuntimeError("directory down")

    configure(USER_RESOLVER=broken)
    response = call(client, keys["a"].sign(claims()))
    assert response.status_code == 503
    assert response["Retry-After"]


def test_dot_tokens_still_work_beside_jwts(client, configure, keys, alice):
    configure()
    token, _row = make_token("notes:read", resource=[RESOURCE])
    assert call(client, token).status_code == 200
    assert call(client, keys["a"].sign(claims())).status_code == 200
    refused(call(client, token + "x"), "unknown")


def test_introspection_and_jwts_together_each_token_goes_to_one_source(client, settings, keys, alice, provider):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "RESOURCE_SERVER_INTROSPECTION_URL": provider.url + "/introspect",
        "RESOURCE_SERVER_AUTH_TOKEN": "rs-secret",
    }
    settings.MCP_SCOPES = issuer_settings(provider)
    provider.introspection["opaque-1"] = {"active": True, "scope": "notes:read", "aud": RESOURCE, "client_id": "x"}
    jwt_token = keys["a"].sign(claims())
    assert call(client, jwt_token).status_code == 200
    assert call(client, "opaque-1").status_code == 200
    refused(call(client, keys["a"].sign(claims(aud="http://testserver/other"))), "another audience")
    # A JWT naming a trusted issuer is never sent to the introspection endpoint, even when refused.
    assert provider.introspected == ["opaque-1"]
    # One from an untrusted issuer is not the JWT rules' to judge: the introspection endpoint decides.
    foreign = keys["b"].sign(claims(iss="https://elsewhere.example"))
    refused(call(client, foreign), "not active")
    assert provider.introspected == ["opaque-1", foreign]


def test_a_jwt_shaped_dot_token_of_an_untrusted_issuer_goes_to_dot(client, configure, keys, alice):
    # A project whose django-oauth-toolkit itself issues JWT-shaped tokens keeps them working.
    configure()
    own = keys["b"].sign(claims(iss="https://this-server.example"))
    _token, row = make_token("notes:read", resource=[RESOURCE])
    AccessToken.objects.filter(pk=row.pk).update(token=own, token_checksum=hashlib.sha256(own.encode()).hexdigest())
    assert call(client, own).status_code == 200


def test_a_project_without_django_oauth_toolkit_accepts_jwts_only(client, configure, keys, alice):
    configure()
    with modify_settings(INSTALLED_APPS={"remove": ["oauth2_provider"]}):
        assert call(client, keys["a"].sign(claims())).status_code == 200
        refused(call(client, "opaque-token-of-nobody"), "unknown")
        refused(call(client, keys["a"].sign(claims(iss="https://evil.example"))), "does not trust")
        errors = {message.id for message in checks.run_checks(tags=["mcp_scopes"])}
        assert "django_mcp_scopes.E002" not in errors  # the JWT issuers are the authorization servers


# --- metadata, settings, checks -----------------------------------------------------------------------


@pytest.mark.urls("tests.urls")
def test_the_metadata_lists_the_external_issuers(client, configure):
    configure()
    document = client.get("/.well-known/oauth-protected-resource/narrow/mcp").json()
    assert document["authorization_servers"] == [ISSUER]
    assert document["resource"] == "http://testserver/narrow/mcp"


@pytest.mark.urls("tests.urls")
def test_configured_authorization_servers_come_first(client, configure):
    configure({"AUTHORIZATION_SERVERS": ["https://as.example"]})
    document = client.get("/.well-known/oauth-protected-resource/narrow/mcp").json()
    assert document["authorization_servers"] == ["https://as.example", ISSUER]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"ISSUER": ISSUER}, "JWKS_URI"),
        ({"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks", "DISCOVERY_URL": "https://a/d"}, "exactly one"),
        ({"ISSUER": "not a url", "JWKS_URI": "https://a/jwks"}, "ISSUER"),
        ({"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks", "ALGORITHMS": ["HS256"]}, "never none or HMAC"),
        ({"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks", "ALGORITHMS": ["none"]}, "never none or HMAC"),
        ({"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks", "ALGORITHMS": []}, "ALGORITHMS"),
        ({"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks", "AUDIENCES": "api://x"}, "AUDIENCES"),
        ({"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks", "SCOPES": "scp"}, "keys"),
        ({"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks", "USER_CLAIM": ""}, "USER_CLAIM"),
        ({"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks", "REQUIRE_AT_JWT_TYPE": "yes"}, "REQUIRE_AT_JWT_TYPE"),
        ("https://idp.example", "dict"),
    ],
)
def test_malformed_issuer_settings_are_e001(value, words):
    with override_settings(MCP_SCOPES={"JWT_ISSUERS": [value]}):
        with pytest.raises(ImproperlyConfigured, match="JWT_ISSUERS") as raised:
            mcp_scopes_settings.JWT_ISSUERS
        assert words in str(raised.value)
        errors = [message for message in checks.run_checks(tags=["mcp_scopes"]) if message.id.endswith("E001")]
        assert errors and words in errors[0].msg


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"JWT_ISSUERS": "https://idp.example"}, "list of dicts"),
        ({"JWT_LEEWAY_SECONDS": 3600}, "at most 300"),
        ({"JWT_MAX_TOKEN_BYTES": 10}, ">= 256"),
        ({"JWKS_TIMEOUT_SECONDS": 0}, ">= 0.001"),
        ({"JWKS_MAX_BYTES": "big"}, "integer"),
    ],
)
def test_malformed_global_jwt_settings_are_e001(value, words):
    with override_settings(MCP_SCOPES=value):
        errors = [message for message in checks.run_checks(tags=["mcp_scopes"]) if message.id.endswith("E001")]
        assert errors and words in errors[0].msg


def test_an_issuer_listed_twice_is_e001():
    entry = {"ISSUER": ISSUER, "JWKS_URI": "https://a/jwks"}
    with override_settings(MCP_SCOPES={"JWT_ISSUERS": [entry, entry]}):
        errors = [message for message in checks.run_checks(tags=["mcp_scopes"]) if message.id.endswith("E001")]
        assert errors and "once" in errors[0].msg


def deploy_ids(mcp_scopes: dict[str, Any]) -> dict[str, str]:
    with override_settings(MCP_SCOPES={"BASE_URL": "https://api.example", **mcp_scopes}):
        found = checks.run_checks(tags=["mcp_scopes"], include_deployment_checks=True)
        return {message.id: message.msg for message in found}


def test_deploy_checks_explain_the_risks_of_jwt_settings():
    safe = {"ISSUER": ISSUER, "JWKS_URI": "https://idp.example/jwks"}
    assert not {"django_mcp_scopes.E008", "django_mcp_scopes.W009", "django_mcp_scopes.W010"} & set(
        deploy_ids({"JWT_ISSUERS": [safe]})
    )
    found = deploy_ids(
        {"JWT_ISSUERS": [{**safe, "JWKS_URI": "http://idp.example/jwks", "AUDIENCES": ["api://x"],
                          "REQUIRE_AT_JWT_TYPE": False}]}
    )  # fmt: skip
    assert "not https" in found["django_mcp_scopes.E008"]
    assert "replay" in found["django_mcp_scopes.W009"]
    assert "ID token" in found["django_mcp_scopes.W010"]
    http_issuer = deploy_ids({"JWT_ISSUERS": [{**safe, "ISSUER": "http://idp.example"}]})
    assert "django_mcp_scopes.E004" in http_issuer


def test_a_malformed_jwt_of_a_trusted_issuer_never_500s(client, configure, keys, alice):
    configure()
    good = keys["a"].sign(claims())
    head, body, signature = good.split(".")
    truncated_header = b64(b'{"alg": "RS256"')
    for token in [
        f"{head}.{body}.",
        f"{head}.{body}.{signature}==",
        f"{b64(b'[]')}.{body}.{signature}",
        f"{truncated_header}.{body}.{signature}",
        f"{head}.{body}.{signature[:-4]}",
        f"{b64(b'{}')}.{body}.{signature}",
    ]:
        response = call(client, token)
        assert response.status_code == 401, (token, response.content)
