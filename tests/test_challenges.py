"""Challenges: exact shape per issue 3, safe quoting, and parsed by the official mcp client's code."""

from __future__ import annotations

import json

import httpx2
import pytest
from django.test import RequestFactory
from mcp.client.auth.utils import (
    extract_field_from_www_auth,
    extract_resource_metadata_from_www_auth,
    extract_scope_from_www_auth,
)

from django_mcp_scopes import challenges
from django_mcp_scopes.models import Scope
from django_mcp_scopes.requirements import ScopeRequirement
from tests.enforcement_support import make_scopes, make_token
from tests.test_authentication import parse_challenge

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.enforcement_views")]


def as_client_sees_it(response) -> httpx2.Response:
    return httpx2.Response(response.status_code, headers={"WWW-Authenticate": response["WWW-Authenticate"]})


@pytest.fixture
def scopes():
    return make_scopes()


def test_401_without_token_exact_header(client, scopes):
    response = client.get("/mcp")
    assert response["WWW-Authenticate"] == (
        'Bearer resource_metadata="http://testserver/.well-known/oauth-protected-resource/mcp", scope="notes:read"'
    )
    seen = as_client_sees_it(response)
    assert extract_resource_metadata_from_www_auth(seen) == (
        "http://testserver/.well-known/oauth-protected-resource/mcp"
    )
    assert extract_scope_from_www_auth(seen) == "notes:read"
    assert extract_field_from_www_auth(seen, "error") is None


def test_401_bad_token_exact_header(client, scopes):
    response = client.get("/mcp", HTTP_AUTHORIZATION="Bearer nope")
    assert response["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token is unknown, expired or revoked.", '
        'resource_metadata="http://testserver/.well-known/oauth-protected-resource/mcp", scope="notes:read"'
    )
    seen = as_client_sees_it(response)
    assert extract_field_from_www_auth(seen, "error") == "invalid_token"
    assert extract_scope_from_www_auth(seen) == "notes:read"
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token is unknown, expired or revoked.",
    }


def test_baseline_lists_every_advertised_active_scope(client, scopes):
    Scope.objects.filter(name="notes:write").update(is_advertised=True)
    scopes["admin"].is_advertised = True
    scopes["admin"].save()
    assert parse_challenge(client.get("/mcp")["WWW-Authenticate"])["scope"] == "admin notes:read notes:write"


def test_no_baseline_means_no_scope_parameter(client):
    assert client.get("/mcp")["WWW-Authenticate"] == (
        'Bearer resource_metadata="http://testserver/.well-known/oauth-protected-resource/mcp"'
    )


def test_403_exact_header_and_the_client_steps_up(client, scopes):
    token, _ = make_token("notes:read", resource=["http://testserver/api/by-method"])
    response = client.delete("/api/by-method", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="notes:delete notes:write", '
        'resource_metadata="http://testserver/.well-known/oauth-protected-resource/api/by-method", '
        'error_description="The access token does not grant what this operation needs; '
        'ask for the scopes named in the challenge."'
    )
    seen = as_client_sees_it(response)
    # What mcp.client.auth.OAuthClientProvider checks before re-authorizing with these scopes.
    assert seen.status_code == 403
    assert extract_field_from_www_auth(seen, "error") == "insufficient_scope"
    assert extract_scope_from_www_auth(seen) == "notes:delete notes:write"
    assert extract_resource_metadata_from_www_auth(seen).endswith("/oauth-protected-resource/api/by-method")


def test_403_says_when_a_needed_scope_is_disabled(client, scopes):
    token, _ = make_token("notes:read", resource=["http://testserver/api/by-method"])
    Scope.objects.filter(name="notes:delete").update(is_active=False)
    response = client.delete("/api/by-method", HTTP_AUTHORIZATION=f"Bearer {token}")
    params = parse_challenge(response["WWW-Authenticate"])
    assert params["scope"] == "notes:delete notes:write"  # the challenge still names what is needed
    assert params["error_description"] == (
        "This operation needs notes:delete, which this server has disabled: no token can grant it until "
        "an administrator enables it again."
    )
    assert response.json()["error_description"] == params["error_description"]


HOSTILE = [
    'quote " and backslash \\ and scope="admin" error="x"',
    "newline\r\nX-Injected: yes",
    "insufficient_scope=admin resource_metadata=https://evil.example",
    "ünïcödé and \x00 control",
    "x" * 5000,
]


@pytest.mark.parametrize("description", HOSTILE)
def test_hostile_descriptions_never_break_the_header(rf, scopes, description):
    request = rf.get("/mcp")
    response = challenges.insufficient_scope_response(
        request, ScopeRequirement.all_of("notes:write"), description=description
    )
    header = response["WWW-Authenticate"]
    seen = as_client_sees_it(response)
    assert extract_scope_from_www_auth(seen) == "notes:write"
    assert extract_field_from_www_auth(seen, "error") == "insufficient_scope"
    assert extract_resource_metadata_from_www_auth(seen) == "http://testserver/.well-known/oauth-protected-resource/mcp"
    assert "\r" not in header and "\n" not in header and header.isascii()
    params = parse_challenge(header)
    assert set(params) == {"error", "scope", "resource_metadata", "error_description"}
    assert "=" not in params["error_description"] and len(params["error_description"]) <= 300
    response = challenges.unauthorized_response(request, error="invalid_token", description=description)
    seen = as_client_sees_it(response)
    assert extract_field_from_www_auth(seen, "error") == "invalid_token"
    assert extract_scope_from_www_auth(seen) == "notes:read"


def test_scope_names_with_odd_but_legal_characters_are_quoted(rf):
    Scope.objects.create(name="a!#$%&'()*+,-./:;<>?@[]^_`{|}~z", description="odd", is_advertised=True)
    response = challenges.unauthorized_response(rf.get("/mcp"))
    params = parse_challenge(response["WWW-Authenticate"])
    assert params["scope"] == "a!#$%&'()*+,-./:;<>?@[]^_`{|}~z"


def test_path_inserted_metadata_url_follows_base_url_and_script_prefix(settings, scopes):
    settings.MCP_SCOPES = {"BASE_URL": "https://api.example.com"}
    request = RequestFactory().get("/mcp")
    response = challenges.unauthorized_response(request)
    assert parse_challenge(response["WWW-Authenticate"])["resource_metadata"] == (
        "https://api.example.com/.well-known/oauth-protected-resource/mcp"
    )


def test_service_unavailable_has_retry_after(rf, settings):
    settings.MCP_SCOPES = {"SERVICE_UNAVAILABLE_RETRY_AFTER": 17}
    response = challenges.service_unavailable_response(rf.get("/mcp"))
    assert response.status_code == 503
    assert response["Retry-After"] == "17"
    assert json.loads(response.content)["error"] == "temporarily_unavailable"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
def test_401_bodies_are_the_same_for_drf_views_plain_views_and_decorated_functions(client, scopes, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    bodies = [client.get(path, **extra).json() for path in ("/api/notes", "/plain/scoped", "/mcp")]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["error"] == ("invalid_token" if authorization else "unauthorized")


@pytest.mark.django_db
@pytest.mark.urls("tests.enforcement_views")
def test_a_challenge_for_a_non_ascii_path_stays_ascii(client):
    """A metadata URL built from a non-ASCII path is percent-encoded (the metadata URL already is;
    bearer_challenge now makes sure of it for any value, see tests/test_properties.py)."""
    response = client.get("/files/caf\u00e9")
    assert response.status_code == 401
    header = response["WWW-Authenticate"]
    assert header.isascii()
    assert "caf%C3%A9" in parse_challenge(header)["resource_metadata"]
