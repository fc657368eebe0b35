"""DatabaseScopes through django-oauth-toolkit itself: validator, consent page, token, metadata."""

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import get_scopes_backend
from oauthlib.common import Request as OAuthlibRequest

from django_mcp_scopes.backends import DatabaseScopes
from django_mcp_scopes.models import Scope

pytestmark = pytest.mark.django_db

REDIRECT_URI = "http://127.0.0.1:9/callback"
VERIFIER = "v" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture
def scopes():
    read = Scope.objects.create(name="entries:read", description="Read your entries", is_advertised=True)
    write = Scope.objects.create(name="entries:write", description="Create and change your entries")
    Scope.objects.create(name="profile", description="See your name", is_advertised=True)
    Scope.objects.create(name="legacy", description="Old", is_active=False, is_advertised=True)
    write.implies.add(read)


@pytest.fixture
def application():
    user = get_user_model().objects.create_user("owner", password="pw")
    return get_application_model().objects.create(
        name="client",
        user=user,
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris=REDIRECT_URI,
        skip_authorization=False,
    )


@pytest.fixture
def signed_in(client):
    user = get_user_model().objects.create_user("alice", password="pw")
    client.force_login(user)
    return client


def oauthlib_request(application):
    request = OAuthlibRequest("https://as.example.com/o/authorize/")
    request.client = application
    return request


def test_dot_uses_our_backend():
    assert isinstance(get_scopes_backend(), DatabaseScopes)


def test_validator_accepts_only_active_registered_scopes(scopes, application):
    validator = OAuth2Validator()
    req = oauthlib_request(application)
    cid = application.client_id
    assert validator.validate_scopes(cid, ["entries:read", "entries:write"], application, req)
    assert validator.validate_scopes(cid, ["profile"], application, req)
    assert not validator.validate_scopes(cid, ["legacy"], application, req)  # inactive
    assert not validator.validate_scopes(cid, ["unknown"], application, req)
    assert not validator.validate_scopes(cid, ["Entries:Read"], application, req)  # case-sensitive
    assert not validator.validate_scopes(cid, ["profile", "unknown"], application, req)


def test_default_scopes_are_the_baseline_never_all(scopes, application):
    defaults = OAuth2Validator().get_default_scopes(application.client_id, oauthlib_request(application))
    assert defaults == ["entries:read", "profile"]


def test_deactivation_reaches_validation_at_once(scopes, application):
    validator = OAuth2Validator()
    req = oauthlib_request(application)
    assert validator.validate_scopes(application.client_id, ["entries:write"], application, req)
    Scope.objects.filter(name="entries:write").update(is_active=False)
    from django_mcp_scopes.registry import scope_registry

    scope_registry.invalidate()
    assert not validator.validate_scopes(application.client_id, ["entries:write"], application, req)


def test_descriptions_come_from_the_database(scopes):
    backend = DatabaseScopes()
    assert backend.get_all_scopes() == {
        "entries:read": "Read your entries",
        "entries:write": "Create and change your entries",
        "profile": "See your name",
    }
    assert set(backend.get_available_scopes()) <= set(backend.get_all_scopes())
    # A scope deactivated between validation and the consent page reads as its name, not a KeyError.
    assert backend.get_all_scopes()["legacy"] == "legacy"


def _authorize_params(application, **extra):
    params = {
        "response_type": "code",
        "client_id": application.client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "state": "xyz",
    }
    params.update(extra)
    return params


def test_consent_page_shows_database_descriptions(scopes, application, signed_in):
    response = signed_in.get("/o/authorize/", _authorize_params(application, scope="entries:write profile"))
    assert response.status_code == 200
    assert response.context["scopes_descriptions"] == ["Create and change your entries", "See your name"]
    assert "Create and change your entries" in response.content.decode()


def test_consent_page_refuses_inactive_scope(scopes, application, signed_in):
    response = signed_in.get("/o/authorize/", _authorize_params(application, scope="legacy"))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query)["error"] == ["invalid_scope"]


def test_token_without_requested_scope_gets_the_baseline(scopes, application, signed_in):
    page = signed_in.get("/o/authorize/", _authorize_params(application))
    assert page.status_code == 200
    assert page.context["scopes"] == ["entries:read", "profile"]
    data = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    data["allow"] = "Authorize"
    redirect = signed_in.post("/o/authorize/", data)
    assert redirect.status_code == 302, redirect.content
    code = parse_qs(urlsplit(redirect["Location"]).query)["code"][0]
    token = signed_in.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": application.client_id,
            "code_verifier": VERIFIER,
        },
    )
    assert token.status_code == 200, token.content
    assert token.json()["scope"] == "entries:read profile"
    assert get_access_token_model().objects.get().scope == "entries:read profile"


def test_as_metadata_lists_active_scopes(scopes, client):
    response = client.get("/o/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.json()["scopes_supported"] == ["entries:read", "entries:write", "profile"]
    Scope.objects.create(name="tags:read")
    Scope.objects.filter(name="profile").delete()
    assert client.get("/o/.well-known/oauth-authorization-server").json()["scopes_supported"] == [
        "entries:read",
        "entries:write",
        "tags:read",
    ]


def test_as_metadata_with_settings_scopes_is_not_ours(scopes, client):
    """Sanity check of the test above: without our backend, the table is ignored."""
    with override_settings(OAUTH2_PROVIDER={"SCOPES": {"x": "X"}}):
        assert client.get("/o/.well-known/oauth-authorization-server").json()["scopes_supported"] == ["x"]


@pytest.mark.parametrize("name", ["oauth2_provider:registration", "introspection"])
def test_machinery_scopes_never_reach_a_public_client(scopes, application, name):
    Scope.objects.create(name=name, description="DOT machinery", is_advertised=True)
    backend = DatabaseScopes()
    assert name not in backend.get_available_scopes(application=application)
    assert name not in backend.get_default_scopes(application=application)
    request = OAuthlibRequest("https://as.example/o/authorize")
    assert not OAuth2Validator().validate_scopes(application.client_id, [name], application, request)


def test_introspection_is_for_confidential_client_credentials_clients_only(scopes):
    Scope.objects.create(name="introspection", description="Check other clients' tokens")
    user = get_user_model().objects.create_user("rs", password="pw")
    resource_server = get_application_model().objects.create(
        name="resource server",
        user=user,
        client_type="confidential",
        authorization_grant_type="client-credentials",
    )
    backend = DatabaseScopes()
    assert "introspection" in backend.get_available_scopes(application=resource_server)
    assert "oauth2_provider:registration" not in backend.get_available_scopes(application=resource_server)
