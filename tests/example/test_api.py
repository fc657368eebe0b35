"""The example's REST endpoint answers the enforcement challenges (issue 3) through DRF permissions."""

import re

import pytest
from django.core.management import call_command

from example_project.journal.models import Entry
from tests.enforcement_support import make_token

API = "/api/entries"
RESOURCE = "http://testserver/api/entries"

pytestmark = [pytest.mark.django_db, pytest.mark.urls("example_project.urls")]


@pytest.fixture(autouse=True)
def demo_scopes():
    call_command("setup_demo", "--no-admin", verbosity=0, stdout=None)


def _params(header):
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def test_no_token_gets_the_baseline_challenge(client):
    response = client.get(API)
    assert response.status_code == 401
    params = _params(response["WWW-Authenticate"])
    assert params["resource_metadata"] == "http://testserver/.well-known/oauth-protected-resource/api/entries"
    assert params["scope"] == "entries:read tags:read user:read"
    assert "error" not in params


def test_metadata_document_exists_for_the_endpoint(client):
    response = client.get("/.well-known/oauth-protected-resource/api/entries")
    assert response.status_code == 200
    assert response.json()["resource"] == RESOURCE


def test_read_token_reads_and_is_challenged_to_write(client):
    token, row = make_token("entries:read", [RESOURCE])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    Entry.objects.create(owner=row.user, title="Mine", content="x")
    listed = client.get(API, **auth)
    assert listed.status_code == 200
    assert [entry["title"] for entry in listed.json()["entries"]] == ["Mine"]

    denied = client.post(API, {"title": "t", "content": "c"}, content_type="application/json", **auth)
    assert denied.status_code == 403
    params = _params(denied["WWW-Authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "entries:write"
    assert denied.json()["error"] == "insufficient_scope"
    assert Entry.objects.filter(owner=row.user).count() == 1


def test_write_token_creates_and_implies_read(client):
    token, row = make_token("entries:write", [RESOURCE])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    created = client.post(API, {"title": "New", "content": "Body"}, content_type="application/json", **auth)
    assert created.status_code == 201
    assert Entry.objects.get(owner=row.user).title == "New"
    assert client.get(API, **auth).status_code == 200  # entries:write implies entries:read


def test_bad_body_is_a_400_and_writes_nothing(client):
    token, row = make_token("entries:write", [RESOURCE])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    for body in ([1, 2], {"title": "", "content": ""}):
        response = client.post(API, body, content_type="application/json", **auth)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
    assert not Entry.objects.filter(owner=row.user).exists()


def test_token_for_the_mcp_endpoint_is_refused_here(client):
    token, _ = make_token("entries:read", ["http://testserver/mcp"])
    response = client.get(API, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert _params(response["WWW-Authenticate"])["error"] == "invalid_token"


def test_deactivated_scope_is_refused_at_once(client):
    from django_mcp_scopes.models import Scope

    token, _ = make_token("entries:write", [RESOURCE])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get(API, **auth).status_code == 200
    Scope.objects.filter(name="entries:write").update(is_active=False)
    from django_mcp_scopes.registry import scope_registry

    scope_registry.invalidate()
    response = client.get(API, **auth)
    assert response.status_code == 403
    assert _params(response["WWW-Authenticate"])["scope"] == "entries:read"
