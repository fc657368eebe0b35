"""One issuer everywhere: the RFC 8414 document, ``iss`` in authorization responses (RFC 9207) and the
protected-resource metadata's ``authorization_servers``, with and without ``BASE_URL``, behind a
proxy and under a script prefix; and the tokens bound to the resource URI clients see there.
"""

from __future__ import annotations

import hashlib

import pytest
from django.urls import set_script_prefix
from oauth2_provider.models import AccessToken

from django_mcp_scopes.oauth.provider import oauth2_provider_settings
from tests.oauth_support import Flow, location_query, oauth_settings_on, user  # noqa: F401

pytestmark = pytest.mark.django_db


def _discovery(client, **extra):
    metadata = client.get("/.well-known/oauth-authorization-server", **extra)
    assert metadata.status_code == 200, metadata.content
    prm = client.get("/.well-known/oauth-protected-resource/mcp", **extra)
    assert prm.status_code == 200, prm.content
    return metadata.json(), prm.json()


def _iss_and_binding(client, user, resource, **extra):  # noqa: F811
    flow = Flow(client, user)
    params = flow.authorize_params(resource=None)
    form = {**params, "allow": "Allow"}
    from urllib.parse import urlencode

    response = client.post(f"/o/authorize/?{urlencode(params)}", form, **extra)
    assert response.status_code == 302, response.content
    query = location_query(response)
    token = flow.client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": params["redirect_uri"],
            "client_id": flow.client_id,
            "code_verifier": flow.verifier,
        },
        **extra,
    )
    assert token.status_code == 200, token.content
    checksum = hashlib.sha256(token.json()["access_token"].encode()).hexdigest()
    assert AccessToken.objects.get(token_checksum=checksum).resource == [resource]
    return query["iss"]


def test_the_root_document(client, oauth_settings_on):  # noqa: F811
    metadata, prm = _discovery(client)
    assert metadata["issuer"] == "http://testserver"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["token_endpoint_auth_methods_supported"] == ["none"]
    assert metadata["authorization_endpoint"] == "http://testserver/o/authorize/"
    assert metadata["registration_endpoint"] == "http://testserver/o/register/"
    assert metadata["revocation_endpoint"] == "http://testserver/o/revoke_token/"
    assert prm["authorization_servers"] == [metadata["issuer"]]


def test_another_prefix_keeps_the_document_at_the_root(client, oauth_settings_on):  # noqa: F811
    oauth_settings_on.ROOT_URLCONF = "tests.oauth_urls_two"
    metadata, prm = _discovery(client)
    assert metadata["issuer"] == "http://testserver"
    assert metadata["token_endpoint"] == "http://testserver/auth/token/"
    assert prm["authorization_servers"] == ["http://testserver"]


def test_with_base_url(client, oauth_settings_on, user):  # noqa: F811
    oauth_settings_on.OAUTH2_PROVIDER = oauth2_provider_settings(issuer="https://mcp.example.com/")
    oauth_settings_on.MCP_SCOPES = {"BASE_URL": "https://mcp.example.com"}
    metadata, prm = _discovery(client)
    assert metadata["issuer"] == "https://mcp.example.com"
    assert prm["authorization_servers"] == ["https://mcp.example.com"]
    assert prm["resource"] == "https://mcp.example.com/mcp"
    assert _iss_and_binding(client, user, "https://mcp.example.com/mcp") == "https://mcp.example.com"


def test_behind_a_proxy(client, oauth_settings_on, user):  # noqa: F811
    oauth_settings_on.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    oauth_settings_on.USE_X_FORWARDED_HOST = True
    oauth_settings_on.ALLOWED_HOSTS = ["testserver", "public.example"]
    proxy = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "public.example"}
    metadata, prm = _discovery(client, **proxy)
    assert metadata["issuer"] == "https://public.example"
    assert prm["authorization_servers"] == ["https://public.example"]
    assert prm["resource"] == "https://public.example/mcp"
    assert _iss_and_binding(client, user, "https://public.example/mcp", **proxy) == "https://public.example"


@pytest.fixture
def script_prefix():
    # Django's WSGI and ASGI handlers set the prefix from SCRIPT_NAME / root_path; the test client does not.
    set_script_prefix("/tenant/")
    yield {"SCRIPT_NAME": "/tenant"}
    set_script_prefix("/")


def test_under_a_script_prefix(client, oauth_settings_on, user, script_prefix):  # noqa: F811
    prefix = script_prefix
    metadata, prm = _discovery(client, **prefix)
    assert metadata["issuer"] == "http://testserver/tenant"
    assert metadata["token_endpoint"] == "http://testserver/tenant/o/token/"
    assert prm["authorization_servers"] == ["http://testserver/tenant"]
    assert prm["resource"] == "http://testserver/tenant/mcp"
    assert _iss_and_binding(client, user, "http://testserver/tenant/mcp", **prefix) == "http://testserver/tenant"


def test_the_machine_endpoints_answer_cors_preflights(client, oauth_settings_on):  # noqa: F811
    for path, method in [
        ("/.well-known/oauth-authorization-server", "GET"),
        ("/o/token/", "POST"),
        ("/o/register/", "POST"),
        ("/o/revoke_token/", "POST"),
    ]:
        response = client.options(path, HTTP_ORIGIN="http://localhost:6274", HTTP_ACCESS_CONTROL_REQUEST_METHOD=method)
        assert response.status_code == 204
        assert response["Access-Control-Allow-Origin"] == "*"
        assert method in response["Access-Control-Allow-Methods"]
        assert "Access-Control-Allow-Credentials" not in response
    assert "Access-Control-Allow-Origin" not in client.get("/o/login/", HTTP_ORIGIN="http://localhost:6274")
