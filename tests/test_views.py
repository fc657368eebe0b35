"""RFC 9728 protected-resource metadata (django_mcp_scopes.views), through real Django requests.

The marked endpoints live in tests/urls.py: ``mcp/`` (whole baseline), ``narrow/mcp`` (operations
need ``journal:read``), ``tenant/a/mcp/`` under an include() prefix (operations need
``tenant:read``, named "Tenant A"), a marked class-based view, DRF views marked through their
authentication class, and unmarked views that must stay invisible.
"""

import hashlib
import http.client
import json
import logging
import types

import django
import pytest
from django.test import Client, override_settings
from django.urls import path, reverse

from django_mcp_scopes import resources, views
from django_mcp_scopes.models import Scope
from django_mcp_scopes.resources import ProtectedResource, mark_protected_resource, protected_resource_for
from django_mcp_scopes.urls import urlpatterns as metadata_urlpatterns
from tests.live import LiveServer, live_database_url

PRM = "/.well-known/oauth-protected-resource"

pytestmark = pytest.mark.django_db


@pytest.fixture
def scopes():
    """journal (broad) implies journal:read and journal:write; tenant:read; an unadvertised and an inactive scope."""
    journal = Scope.objects.create(name="journal", description="Everything in your journal", is_advertised=True)
    read = Scope.objects.create(name="journal:read", description="Read entries", is_advertised=True)
    write = Scope.objects.create(name="journal:write", description="Write entries", is_advertised=True)
    journal.implies.add(read, write)
    Scope.objects.create(name="tenant:read", description="Read tenant data", is_advertised=True)
    Scope.objects.create(name="admin:all", description="Administer", is_advertised=False)
    Scope.objects.create(name="legacy", description="Old", is_advertised=True, is_active=False)
    Scope.objects.create(name="offline_access", description="Stay signed in", is_advertised=False)
    return {"journal": journal, "read": read, "write": write}


def get_json(client, url, **extra):
    response = client.get(url, **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


# The document -----------------------------------------------------------------------------


def test_document_of_an_endpoint(client, scopes):
    data = get_json(client, f"{PRM}/mcp")
    assert data == {
        "resource": "http://testserver/mcp",
        "authorization_servers": ["http://testserver/o"],
        "scopes_supported": ["journal", "journal:read", "journal:write", "tenant:read"],
        "bearer_methods_supported": ["header"],
    }


def test_trailing_slash_names_the_same_resource(client, scopes):
    assert get_json(client, f"{PRM}/mcp/") == get_json(client, f"{PRM}/mcp")


def test_two_endpoints_each_have_their_own_document(client, scopes):
    mcp = get_json(client, f"{PRM}/mcp")
    tenant = get_json(client, f"{PRM}/tenant/a/mcp")
    assert mcp["resource"] == "http://testserver/mcp"
    assert tenant["resource"] == "http://testserver/tenant/a/mcp"
    assert tenant["resource_name"] == "Tenant A"
    assert "resource_name" not in mcp


def test_scopes_supported_narrowed_to_what_the_operations_need(client, scopes):
    # journal:read is needed; journal grants it through the hierarchy; journal:write does not.
    assert get_json(client, f"{PRM}/narrow/mcp")["scopes_supported"] == ["journal", "journal:read"]
    assert get_json(client, f"{PRM}/tenant/a/mcp")["scopes_supported"] == ["tenant:read"]


def test_scopes_supported_never_lists_unadvertised_inactive_or_offline_access(client, scopes):
    supported = get_json(client, f"{PRM}/mcp")["scopes_supported"]
    assert {"admin:all", "legacy", "offline_access"}.isdisjoint(supported)


def test_scopes_callable_naming_only_unadvertised_scopes_gives_empty_list(client, scopes):
    assert resources.scopes_supported(ProtectedResource(scopes=lambda: ["admin:all", "unknown"])) == []


def test_empty_registry_gives_empty_scopes_supported(client):
    assert get_json(client, f"{PRM}/mcp")["scopes_supported"] == []


@override_settings(
    MCP_SCOPES={
        "RESOURCE_NAME": "Journal",
        "RESOURCE_DOCUMENTATION": "https://docs.example.com/mcp",
        "RESOURCE_POLICY_URI": "https://example.com/policy",
        "RESOURCE_TOS_URI": "https://example.com/tos",
    }
)
def test_optional_fields_from_settings(client, scopes):
    data = get_json(client, f"{PRM}/mcp")
    assert data["resource_name"] == "Journal"
    assert data["resource_documentation"] == "https://docs.example.com/mcp"
    assert data["resource_policy_uri"] == "https://example.com/policy"
    assert data["resource_tos_uri"] == "https://example.com/tos"
    # The endpoint's own name wins over the project-wide one.
    assert get_json(client, f"{PRM}/tenant/a/mcp")["resource_name"] == "Tenant A"


def test_optional_fields_omitted_when_empty(client, scopes):
    data = get_json(client, f"{PRM}/mcp")
    for key in ("resource_name", "resource_documentation", "resource_policy_uri", "resource_tos_uri"):
        assert key not in data


def test_url_names_reverse():
    assert reverse("mcp_scopes:protected-resource-metadata", kwargs={"resource_path": "tenant/a/mcp"}) == (
        f"{PRM}/tenant/a/mcp"
    )
    assert reverse("mcp_scopes:protected-resource-metadata-root") in (PRM, PRM + "/")


# Which views count as protected resources ---------------------------------------------------


MARKED_ENDPOINTS = [
    "mcp",
    "narrow/mcp",
    "tenant/a/mcp",
    "class",  # marked view class
    "token-required",  # mcp_scopes_protected on the function
    "mixin",  # mcp_scopes_protected on the view class
    "drf/protected",  # DRF authentication class with mcp_scopes_protected
    "drf/initkwargs",  # ... given to as_view()
    "drf/function",  # ... through @api_view / @authentication_classes
    "configured",  # Django View given such authentication_classes in as_view()
]


@pytest.mark.parametrize("endpoint", MARKED_ENDPOINTS)
def test_marked_views_are_published(client, endpoint):
    assert get_json(client, f"{PRM}/{endpoint}")["resource"] == f"http://testserver/{endpoint}"


@pytest.mark.parametrize(
    "endpoint",
    [
        "plain",  # a view with no marker
        "drf/unprotected",  # DRF view without a marked authentication class
        "unconfigured",
        "admin",  # the admin is not a protected resource
        "o/token",  # nor is the authorization server
        "nowhere",  # resolves to nothing
        "tenant/a",  # a prefix of a protected endpoint
        "tenant/a/mcp/extra",
        "mcpx",
        ".well-known/oauth-protected-resource/mcp",  # the metadata view itself
    ],
)
def test_unmarked_or_unknown_paths_are_json_404(client, scopes, endpoint):
    response = client.get(f"{PRM}/{endpoint}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_marker_api():
    def view(request):
        raise AssertionError("not called")

    assert protected_resource_for(view) is None
    assert mark_protected_resource(view, scopes=("a", "b"), name="N") is view
    marker = protected_resource_for(view)
    assert marker is not None
    assert marker.name == "N"
    assert marker.operation_scopes() == frozenset({"a", "b"})
    assert protected_resource_for(mark_protected_resource(lambda r: r)).operation_scopes() is None
    with pytest.raises(TypeError):
        mark_protected_resource(view, scopes="a b")
    with pytest.raises(TypeError):
        mark_protected_resource(view, scopes=lambda: "a b").mcp_scopes_resource.operation_scopes()


@pytest.fixture
def api_resource():
    resources.register_protected_resource("/api/", scopes=["journal:write"], name="Journal API")
    yield
    resources.unregister_protected_resource("/api")


def test_registered_resource_that_is_no_single_view(client, scopes, api_resource):
    data = get_json(client, f"{PRM}/api")
    assert data["resource"] == "http://testserver/api"
    assert data["resource_name"] == "Journal API"
    assert data["scopes_supported"] == ["journal", "journal:write"]
    assert client.get(f"{PRM}/api/notes").status_code == 404


@pytest.mark.parametrize("bad", ["", "/", "a//b", "../api", "caf\u00e9", "a b"])
def test_register_refuses_malformed_paths(bad):
    with pytest.raises(ValueError):
        resources.register_protected_resource(bad)


# Root document --------------------------------------------------------------------------------


def test_root_document_is_404_unless_configured(client, scopes):
    for url in (PRM, PRM + "/"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


@override_settings(MCP_SCOPES={"ROOT_RESOURCE_PATH": "tenant/a/mcp/"})
def test_root_document_describes_the_configured_endpoint(client, scopes):
    assert get_json(client, PRM) == get_json(client, f"{PRM}/tenant/a/mcp")
    assert get_json(client, PRM + "/")["resource"] == "http://testserver/tenant/a/mcp"


@override_settings(MCP_SCOPES={"ROOT_RESOURCE_PATH": "plain"})
def test_root_document_for_an_unmarked_path_is_404(client, scopes):
    assert client.get(PRM).status_code == 404


# Canonical resource URI: configured or derived, behind proxies ---------------------------------


@override_settings(MCP_SCOPES={"BASE_URL": "https://api.example.com"})
def test_base_url_wins_over_the_request(client, scopes):
    data = get_json(client, f"{PRM}/tenant/a/mcp", HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="http")
    assert data["resource"] == "https://api.example.com/tenant/a/mcp"


@override_settings(
    MCP_SCOPES={"BASE_URL": "https://api.example.com", "AUTHORIZATION_SERVERS": ["https://auth.example.com/"]}
)
def test_fully_configured_document_does_not_vary_by_host(client, scopes):
    response = client.get(f"{PRM}/mcp")
    assert response.json()["authorization_servers"] == ["https://auth.example.com"]
    assert "Vary" not in response, response["Vary"]


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_https_behind_a_tls_terminating_proxy(client, scopes):
    # A proxy forwards the Host header (without it Django would add the backend port 80).
    response = client.get(f"{PRM}/mcp", HTTP_HOST="testserver", HTTP_X_FORWARDED_PROTO="https")
    assert response.json()["resource"] == "https://testserver/mcp"
    assert response.json()["authorization_servers"] == ["https://testserver/o"]
    assert "X-Forwarded-Proto" in response["Vary"]
    assert get_json(client, f"{PRM}/mcp")["resource"] == "http://testserver/mcp"


def test_forwarded_headers_ignored_unless_django_trusts_them(client, scopes):
    data = get_json(client, f"{PRM}/mcp", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="evil.example")
    assert data["resource"] == "http://testserver/mcp"


@override_settings(USE_X_FORWARDED_HOST=True, ALLOWED_HOSTS=["testserver", "api.example.com"])
def test_forwarded_host_when_django_trusts_it(client, scopes):
    response = client.get(f"{PRM}/mcp", HTTP_X_FORWARDED_HOST="API.example.com:443")
    # Scheme and host are canonicalised; a non-default port for http stays.
    assert response.json()["resource"] == "http://api.example.com:443/mcp"
    assert "X-Forwarded-Host" in response["Vary"]
    response = client.get(f"{PRM}/mcp", HTTP_X_FORWARDED_HOST="api.example.com")
    assert response.json()["resource"] == "http://api.example.com/mcp"


@override_settings(
    USE_X_FORWARDED_HOST=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    ALLOWED_HOSTS=["testserver", "api.example.com"],
)
def test_proxy_with_forwarded_host_and_proto(client, scopes):
    data = get_json(
        client, f"{PRM}/tenant/a/mcp", HTTP_X_FORWARDED_HOST="api.example.com", HTTP_X_FORWARDED_PROTO="https"
    )
    assert data["resource"] == "https://api.example.com/tenant/a/mcp"
    assert data["authorization_servers"] == ["https://api.example.com/o"]


def test_disallowed_host_is_not_a_500(client, scopes):
    response = client.get(f"{PRM}/mcp", HTTP_HOST="evil.example")
    assert response.status_code == 400


def test_script_prefix_is_part_of_the_resource(client, scopes):
    data = get_json(client, f"{PRM}/mcp", SCRIPT_NAME="/app")
    assert data["resource"] == "http://testserver/app/mcp"


def test_vary_host_when_derived_from_the_request(client, scopes):
    assert client.get(f"{PRM}/mcp")["Vary"] == "Host"


# Authorization servers ------------------------------------------------------------------------


def test_authorization_server_is_byte_identical_to_the_published_issuer(client, scopes):
    issuer = client.get("/o/.well-known/oauth-authorization-server").json()["issuer"]
    assert get_json(client, f"{PRM}/mcp")["authorization_servers"][0] == issuer
    assert not issuer.endswith("/")


@override_settings(OAUTH2_PROVIDER={"OIDC_ISS_ENDPOINT": "https://login.example.com"})
def test_authorization_server_follows_oidc_iss_endpoint(client, scopes):
    issuer = client.get("/o/.well-known/oauth-authorization-server").json()["issuer"]
    assert get_json(client, f"{PRM}/mcp")["authorization_servers"] == [issuer] == ["https://login.example.com"]


def test_no_authorization_server_is_logged_and_the_rest_is_served(client, scopes, caplog, monkeypatch):
    monkeypatch.setattr(views, "_reported_missing_servers", False)
    urlconf = types.ModuleType("discovery_without_authorization_server")
    endpoint = mark_protected_resource(lambda request: None)
    urlconf.urlpatterns = [*metadata_urlpatterns, path("mcp", endpoint)]
    with override_settings(ROOT_URLCONF=urlconf), caplog.at_level(logging.ERROR, "django_mcp_scopes.discovery"):
        data = get_json(client, f"{PRM}/mcp")
        get_json(client, f"{PRM}/mcp")
    assert "authorization_servers" not in data
    assert data["resource"] == "http://testserver/mcp"
    errors = [record for record in caplog.records if "no authorization server" in record.getMessage()]
    assert len(errors) == 1


# HTTP: CORS, caching, conditional requests, methods ------------------------------------------


def test_cors_on_get_from_any_origin(client, scopes):
    response = client.get(f"{PRM}/mcp", HTTP_ORIGIN="https://inspector.example")
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in response["Access-Control-Expose-Headers"]


def test_cors_preflight(client):
    response = client.options(
        f"{PRM}/mcp",
        HTTP_ORIGIN="http://localhost:6274",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="mcp-protocol-version",
    )
    assert response.status_code == 204
    assert response.content == b""
    assert response["Access-Control-Allow-Origin"] == "*"
    assert {"GET", "OPTIONS"} <= {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")}
    allowed_headers = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert "mcp-protocol-version" in allowed_headers
    assert int(response["Access-Control-Max-Age"]) > 0


def test_cache_control_uses_metadata_max_age(client, scopes):
    assert client.get(f"{PRM}/mcp")["Cache-Control"] == "public, max-age=60"
    with override_settings(MCP_SCOPES={"METADATA_MAX_AGE": 5}):
        assert client.get(f"{PRM}/mcp")["Cache-Control"] == "public, max-age=5"


def test_strong_etag_is_a_hash_of_the_body(client, scopes):
    response = client.get(f"{PRM}/mcp")
    etag = response["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert etag.strip('"') == hashlib.sha256(response.content).hexdigest()[: len(etag) - 2]
    assert client.get(f"{PRM}/mcp")["ETag"] == etag
    assert client.get(f"{PRM}/tenant/a/mcp")["ETag"] != etag


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"other", {etag}', '"a", W/{etag} ,"b"', "*"],
)
def test_304_when_if_none_match_matches(client, scopes, if_none_match):
    etag = client.get(f"{PRM}/mcp")["ETag"]
    response = client.get(f"{PRM}/mcp", HTTP_IF_NONE_MATCH=if_none_match.format(etag=etag))
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert response["Cache-Control"] == "public, max-age=60"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Vary"] == "Host"


@pytest.mark.parametrize("if_none_match", ['"nope"', 'W/"nope"', "garbage", '"unterminated', ",,,", ""])
def test_200_when_if_none_match_does_not_match(client, scopes, if_none_match):
    response = client.get(f"{PRM}/mcp", HTTP_IF_NONE_MATCH=if_none_match)
    assert response.status_code == 200
    assert response.json()["resource"] == "http://testserver/mcp"


def test_etag_changes_with_the_document(client, scopes):
    etag = client.get(f"{PRM}/mcp")["ETag"]
    Scope.objects.create(name="journal:export", description="Export", is_advertised=True)
    response = client.get(f"{PRM}/mcp", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] != etag


def test_head_is_get_without_body(client, scopes):
    get = client.get(f"{PRM}/mcp")
    head = client.head(f"{PRM}/mcp")
    assert head.status_code == 200
    assert head.content == b""
    assert head["ETag"] == get["ETag"]
    assert head["Content-Length"] == str(len(get.content))
    assert head["Access-Control-Allow-Origin"] == "*"
    assert client.head(f"{PRM}/nowhere").status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "trace"])
def test_other_methods_are_json_405(scopes, method):
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(f"{PRM}/mcp")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert response.json()["error"] == "method_not_allowed"
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.skipif(django.VERSION < (5, 1), reason="LoginRequiredMiddleware is Django 5.1+")
def test_served_to_anonymous_clients_under_login_required_middleware(client, scopes, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    assert client.get(f"{PRM}/mcp").status_code == 200
    assert client.options(f"{PRM}/mcp").status_code == 204


def test_unknown_method_is_405(client):
    response = client.generic("BREW", f"{PRM}/mcp")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


# Malformed paths: 404, never 500 -------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix",
    [
        "../mcp",
        "mcp/..",
        "tenant/../mcp",
        "tenant/a/./mcp",
        "./mcp",
        "tenant//a/mcp",
        "mcp//",
        "//mcp",
        "%2E%2E/mcp",
        "tenant%2F..%2Fmcp",
        "m%C3%A9p",  # non-ASCII once decoded
        "mcp%00",
        "mcp%0A",
        "mcp%0D%0Aset-cookie:x=1",
        "mcp\\",
        "mcp%5C",
        "mcp%25",
        "mcp%20",
        "mcp<script>",
        '"mcp"',
        "a" * 10_000,
        "a/" * 3_000 + "mcp",
    ],
)
def test_malformed_paths_are_404(client, scopes, suffix):
    response = client.get(f"{PRM}/{suffix}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_non_ascii_path_is_404(client, scopes):
    assert client.get(f"{PRM}/mcp\u00e9").status_code == 404
    assert client.get(f"{PRM}/\u65e5\u672c").status_code == 404


@pytest.mark.parametrize("raw", [f"{PRM}/tenant%2Fa%2Fmcp", f"{PRM}/tenant%2fa/mcp?x=1", f"{PRM}/tenant%5Ca/mcp"])
def test_encoded_separators_in_the_raw_target_are_404(client, scopes, raw):
    # Servers decode %2F before Django sees the path; gunicorn passes the raw target as RAW_URI.
    decoded = raw.replace("%2F", "/").replace("%2f", "/").split("?")[0]
    if "%5C" not in raw:
        assert client.get(decoded).status_code == 200
    assert client.get(decoded, RAW_URI=raw).status_code == 404
    assert client.get(decoded, REQUEST_URI=raw).status_code == 404


def test_query_string_is_ignored(client, scopes):
    assert get_json(client, f"{PRM}/mcp?resource=https://evil.example")["resource"] == "http://testserver/mcp"


# Speed and freshness ------------------------------------------------------------------------------


def test_warm_request_makes_no_database_query(client, scopes, django_assert_num_queries):
    client.get(f"{PRM}/mcp")
    client.get(f"{PRM}/narrow/mcp")
    with django_assert_num_queries(0):
        for url in (f"{PRM}/mcp", f"{PRM}/narrow/mcp", f"{PRM}/tenant/a/mcp", f"{PRM}/nowhere"):
            client.get(url)
        client.head(f"{PRM}/mcp")
        client.options(f"{PRM}/mcp")


@override_settings(MCP_SCOPES={"REGISTRY_REFRESH_SECONDS": 60})
def test_document_follows_scope_changes(client, scopes):
    # A long refresh interval: this process sees its own changes at once through the signals.
    assert "journal:export" not in get_json(client, f"{PRM}/mcp")["scopes_supported"]

    export = Scope.objects.create(name="journal:export", description="Export", is_advertised=True)
    assert "journal:export" in get_json(client, f"{PRM}/mcp")["scopes_supported"]

    export.is_advertised = False  # withdrawn
    export.save()
    assert "journal:export" not in get_json(client, f"{PRM}/mcp")["scopes_supported"]

    scopes["read"].is_active = False  # deactivated
    scopes["read"].save()
    assert get_json(client, f"{PRM}/mcp")["scopes_supported"] == ["journal", "journal:write", "tenant:read"]
    # An inactive scope is cut out of the hierarchy: nothing advertised grants journal:read now.
    assert get_json(client, f"{PRM}/narrow/mcp")["scopes_supported"] == []

    scopes["read"].is_active = True
    scopes["read"].save()
    assert get_json(client, f"{PRM}/narrow/mcp")["scopes_supported"] == ["journal", "journal:read"]

    scopes["journal"].delete()
    assert get_json(client, f"{PRM}/narrow/mcp")["scopes_supported"] == ["journal:read"]


def test_change_from_another_process_is_seen_after_refresh(client, scopes, settings):
    """Another process's change is seen once its scope version moved and the refresh interval passed."""
    from django.db import connection

    from django_mcp_scopes.epochs import epochs

    settings.MCP_SCOPES = {"REGISTRY_REFRESH_SECONDS": 0}
    assert "admin:all" not in get_json(client, f"{PRM}/mcp")["scopes_supported"]
    # Raw SQL moves no version: invisible, as documented ...
    with connection.cursor() as cursor:
        cursor.execute("UPDATE mcp_scopes_scope SET is_advertised = %s WHERE name = %s", [True, "admin:all"])
    assert "admin:all" not in get_json(client, f"{PRM}/mcp")["scopes_supported"]
    # ... until the version moves, as every write through the ORM (or invalidate()) does.
    epochs.bump_scopes()
    assert "admin:all" in get_json(client, f"{PRM}/mcp")["scopes_supported"]


def test_json_body_is_compact_and_stable(client, scopes):
    first = client.get(f"{PRM}/mcp").content
    assert json.loads(first)["bearer_methods_supported"] == ["header"]
    assert client.get(f"{PRM}/mcp").content == first


# Real servers (gunicorn WSGI, uvicorn ASGI) ------------------------------------------------------


@pytest.fixture(params=["wsgi", "asgi"])
def metadata_server(request, transactional_db):
    """A real server process running this worktree's code against the test database."""
    Scope.objects.create(name="journal:read", description="Read entries", is_advertised=True)
    if request.param == "wsgi":
        how = {"server": "gunicorn", "app": "django.core.wsgi:get_wsgi_application()"}
    else:
        how = {"server": "uvicorn", "app": "django.core.asgi:get_asgi_application", "extra_args": ["--factory"]}
    with LiveServer("tests.settings", env={"DATABASE_URL": live_database_url()}, **how) as server:
        yield server.port


def _request(port, method, target, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.live
def test_real_server(metadata_server):
    port = metadata_server
    status, headers, body = _request(port, "GET", f"{PRM}/tenant/a/mcp")
    assert status == 200, body
    data = json.loads(body)
    assert data["resource"] == f"http://127.0.0.1:{port}/tenant/a/mcp"
    assert data["scopes_supported"] == []  # tenant:read is not a registered scope here
    _, _, issuer_body = _request(port, "GET", "/o/.well-known/oauth-authorization-server")
    assert data["authorization_servers"] == [json.loads(issuer_body)["issuer"]]

    status, headers, body = _request(port, "GET", f"{PRM}/mcp")
    assert json.loads(body)["scopes_supported"] == ["journal:read"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    etag = headers["ETag"]

    status, headers, body = _request(port, "GET", f"{PRM}/mcp", {"If-None-Match": f'"x", W/{etag}'})
    assert (status, body) == (304, b"")
    assert headers["ETag"] == etag

    status, headers, body = _request(port, "HEAD", f"{PRM}/mcp")
    assert (status, body) == (200, b"")
    assert headers["ETag"] == etag

    status, headers, _ = _request(
        port, "OPTIONS", f"{PRM}/mcp", {"Origin": "http://localhost:6274", "Access-Control-Request-Method": "GET"}
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"

    status, headers, body = _request(port, "POST", f"{PRM}/mcp")
    assert status == 405
    assert json.loads(body)["error"] == "method_not_allowed"

    for target in (
        f"{PRM}/tenant%2Fa%2Fmcp",
        f"{PRM}/tenant/a%2fmcp",
        f"{PRM}/tenant/../mcp",
        f"{PRM}/%2E%2E/mcp",
        f"{PRM}/m%C3%A9p",
        f"{PRM}/mcp%00",
        f"{PRM}/" + "a/" * 2000 + "mcp",
    ):
        status, _, body = _request(port, "GET", target)
        assert status == 404, (target, status)
        assert json.loads(body)["error"] == "not_found"
