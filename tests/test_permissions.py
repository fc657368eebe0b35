"""Scope permissions: all-of, alternatives, per method, hierarchy, inactive scopes, composition."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from django_mcp_scopes.authentication import authenticate_request
from django_mcp_scopes.exceptions import InsufficientScope, MissingToken
from django_mcp_scopes.permissions import ScopeDenied, as_requirement, require_scopes, scopes_required
from django_mcp_scopes.requirements import ScopeRequirement
from tests.enforcement_support import make_scopes, make_token
from tests.test_authentication import parse_challenge

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.enforcement_views")]


@pytest.fixture
def scopes():
    return make_scopes()


def call(client, method, path, scope, **extra):
    token, _ = make_token(scope, resource=[f"http://testserver{path.split('?')[0]}"])
    return getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def assert_403(response, scope, *, path):
    assert response.status_code == 403, response.content
    params = parse_challenge(response["WWW-Authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == scope
    assert params["resource_metadata"] == f"http://testserver/.well-known/oauth-protected-resource{path}"
    assert "scope=" not in params["error_description"]
    body = response.json()
    assert body["error"] == "insufficient_scope"
    assert body["required_scopes"] == scope.split()
    assert body["error_description"] == params["error_description"]
    return body


# --- all of a set, hierarchy, inactive ----------------------------------------------------


def test_exact_scope_passes(client, scopes):
    assert call(client, "get", "/api/notes", "notes:read").status_code == 200


def test_broader_scope_satisfies_narrower_requirement(client, scopes):
    assert call(client, "get", "/api/notes", "notes:write").status_code == 200
    assert call(client, "get", "/api/notes", "admin").status_code == 200  # two levels up


def test_missing_scope_is_a_403_challenge(client, scopes):
    assert_403(call(client, "get", "/api/notes", "notes:delete"), "notes:read", path="/api/notes")


def test_unknown_granted_scope_grants_nothing(client, scopes):
    assert_403(call(client, "get", "/api/notes", "notes:read:all"), "notes:read", path="/api/notes")


def test_scope_deactivated_an_instant_ago(client, scopes):
    token, _ = make_token("notes:read", resource=["http://testserver/api/notes"])
    assert client.get("/api/notes", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200  # principal cached
    scopes["notes:read"].is_active = False
    scopes["notes:read"].save()
    response = client.get("/api/notes", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    assert parse_challenge(response["WWW-Authenticate"])["error"] == "insufficient_scope"


def test_deactivated_middle_of_hierarchy_passes_nothing_on(client, scopes):
    scopes["notes:write"].is_active = False
    scopes["notes:write"].save()
    assert_403(call(client, "get", "/api/notes", "admin"), "notes:read", path="/api/notes")


def test_no_token_on_a_scoped_drf_view_is_a_401(client, scopes):
    response = client.get("/api/notes")
    assert response.status_code == 401
    params = parse_challenge(response["WWW-Authenticate"])
    assert params == {
        "resource_metadata": "http://testserver/.well-known/oauth-protected-resource/api/notes",
        "scope": "notes:read",
    }
    assert response.json()["error"] == "unauthorized"


def test_view_without_requirement_is_a_configuration_error(client, scopes):
    token, _ = make_token("admin", resource=["http://testserver/api/no-requirement"])
    with pytest.raises(ImproperlyConfigured, match="declares no required_scopes"):
        client.get("/api/no-requirement", HTTP_AUTHORIZATION=f"Bearer {token}")


# --- alternatives -------------------------------------------------------------------------


def test_alternatives_any_one_set_passes(client, scopes):
    assert call(client, "post", "/api/alternatives", "notes:write").status_code == 200  # write implies read
    assert call(client, "post", "/api/alternatives", "admin").status_code == 200


def test_alternatives_challenge_the_one_missing_fewest(client, scopes):
    # Holding notes:read: [notes:write, notes:read] misses one, [admin] misses one: tie, first declared.
    body = assert_403(
        call(client, "post", "/api/alternatives", "notes:read"), "notes:read notes:write", path="/api/alternatives"
    )
    assert body["alternatives"] == [["notes:read", "notes:write"], ["admin"]]
    # Holding nothing useful: [admin] misses one, the other two: fewest missing wins.
    assert_403(call(client, "post", "/api/alternatives", "notes:delete"), "admin", path="/api/alternatives")


def test_alternatives_per_method(client, scopes):
    assert call(client, "get", "/api/alternatives", "notes:read").status_code == 200
    response = call(client, "put", "/api/alternatives", "admin")
    assert response.status_code == 405  # no handler and no alternative for PUT: no scope can help
    assert response["Allow"] == "GET, POST, HEAD"
    assert "WWW-Authenticate" not in response


def test_empty_alternatives_refuse_rather_than_open(scopes):
    from types import SimpleNamespace

    from django_mcp_scopes.permissions import HasAlternativeScopes

    request = SimpleNamespace(method="GET")
    for declared in ({"GET": []}, []):
        view = SimpleNamespace(required_alternate_scopes=declared)
        assert HasAlternativeScopes().get_requirement(request, view) is None
    view = SimpleNamespace(required_alternate_scopes={"GET": ["a", "b"]})
    assert HasAlternativeScopes().get_requirement(request, view) == ScopeRequirement.all_of("a", "b")


def test_alternatives_given_as_a_string_are_scope_names_not_characters(scopes):
    from types import SimpleNamespace

    from django_mcp_scopes.permissions import HasAlternativeScopes

    request = SimpleNamespace(method="GET")
    for declared in ("notes:read notes:write", {"GET": "notes:read notes:write"}):
        view = SimpleNamespace(required_alternate_scopes=declared)
        expected = ScopeRequirement.all_of("notes:read", "notes:write")
        assert HasAlternativeScopes().get_requirement(request, view) == expected


def test_requirement_algebra():
    requirement = ScopeRequirement.all_of("a") & ScopeRequirement.any_of(["b"], ["c", "d"])
    assert requirement.describe() == [["a", "b"], ["a", "c", "d"]]
    assert as_requirement("a b") == ScopeRequirement.all_of("a", "b")
    assert as_requirement([["a"], ["b"]]) == ScopeRequirement.any_of(["a"], ["b"])
    with pytest.raises(ImproperlyConfigured):
        as_requirement(["bad scope"])
    for empty in ("", "   ", [[]], [["a"], []], []):
        with pytest.raises(ImproperlyConfigured):
            as_requirement(empty)


def test_an_empty_alternative_is_a_configuration_error_everywhere():
    # An alternative that names no scope is met by every token: it would silently open the
    # operation whatever the other alternatives say.
    with pytest.raises(ImproperlyConfigured):
        ScopeRequirement.any_of(["admin"], [])
    with pytest.raises(ImproperlyConfigured):
        ScopeRequirement.any_of([])
    with pytest.raises(ImproperlyConfigured):
        scopes_required(any_of=[["admin"], []])
    with pytest.raises(ImproperlyConfigured):
        scopes_required("notes:read", any_of=[[]])


@pytest.mark.parametrize("path", ["/api/notes", "/plain/scoped"])
def test_scope_table_unreadable_is_a_503_not_a_500(client, scopes, path):
    from django.db import OperationalError, connection

    from django_mcp_scopes.registry import scope_registry

    token, _ = make_token("notes:write", resource=[f"http://testserver{path}"])
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200  # token now cached

    def refuse(execute, sql, params, many, context):
        if "mcp_scopes_scope" in sql:
            raise OperationalError("connection refused")
        return execute(sql, params, many, context)

    scope_registry.invalidate()
    with connection.execute_wrapper(refuse):
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503, response.content
    assert response["Retry-After"]


# --- per HTTP method ----------------------------------------------------------------------


def test_per_method_requirements(client, scopes):
    assert call(client, "get", "/api/by-method", "notes:read").status_code == 200
    assert call(client, "head", "/api/by-method", "notes:read").status_code == 200  # HEAD uses GET's
    assert_403(
        call(client, "delete", "/api/by-method", "notes:write"), "notes:delete notes:write", path="/api/by-method"
    )
    assert call(client, "delete", "/api/by-method", "admin").status_code == 200
    assert call(client, "put", "/api/by-method", "admin").status_code == 403  # method not declared


# --- composition --------------------------------------------------------------------------


def test_or_composition_passes_when_either_passes(client, scopes):
    assert call(client, "get", "/api/composed-or", "notes:write").status_code == 200


def test_or_composition_keeps_the_challenge(client, scopes):
    assert_403(call(client, "get", "/api/composed-or", "notes:read"), "notes:write", path="/api/composed-or")


def test_not_composition(client, scopes):
    assert call(client, "get", "/api/composed-not", "notes:read").status_code == 200
    response = call(client, "get", "/api/composed-not", "admin")
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response  # denied because it HAS the scope: no step-up helps


def test_negated_scope_permission_still_needs_a_token(client, scopes):
    # DRF's NOT turns "no token, so no admin scope" into a grant; a scope permission has no
    # meaning without a token, so ~HasScopes means "a valid token that lacks the scopes".
    response = client.get("/api/bare-not")
    assert response.status_code == 401, response.content
    assert "WWW-Authenticate" in response
    response = client.get("/api/bare-not", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401
    assert call(client, "get", "/api/bare-not", "notes:read").status_code == 200
    assert call(client, "get", "/api/bare-not", "admin").status_code == 403


def test_composed_without_handler_is_a_plain_403(client, scopes):
    response = call(client, "get", "/api/composed-and", "notes:read")
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response  # documented: set the exception handler


def test_composed_with_the_exception_handler_setting(client, scopes, settings):
    settings.REST_FRAMEWORK = {"EXCEPTION_HANDLER": "django_mcp_scopes.permissions.exception_handler"}
    assert_403(call(client, "get", "/api/composed-and", "notes:read"), "notes:write", path="/api/composed-and")
    assert call(client, "get", "/api/composed-and", "admin").status_code == 200


def test_exception_handler_renders_contract_exceptions(client, scopes, settings):
    """InsufficientScope raised by code (e.g. the MCP layer) inside a DRF view gets the challenge."""
    from rest_framework.views import APIView

    from django_mcp_scopes.permissions import exception_handler

    exc = InsufficientScope(ScopeRequirement.all_of("notes:delete"))
    token, _ = make_token("notes:read", resource=["http://testserver/api/notes"])
    request = RequestFactory().get("/api/notes", HTTP_AUTHORIZATION=f"Bearer {token}")
    from django_mcp_scopes.principal import set_principal

    set_principal(request, authenticate_request(request, resource_uri="http://testserver/api/notes"))
    response = exception_handler(exc, {"request": request, "view": APIView()})
    assert response.status_code == 403
    assert parse_challenge(response["WWW-Authenticate"])["scope"] == "notes:delete"


# --- dynamic decisions --------------------------------------------------------------------


def test_require_scopes_in_a_drf_view(client, scopes):
    assert call(client, "get", "/api/dynamic?need=notes:read", "notes:write").status_code == 200
    assert_403(
        call(client, "get", "/api/dynamic?need=notes:read+notes:delete", "notes:read"),
        "notes:delete notes:read",
        path="/api/dynamic",
    )


def test_require_scopes_with_a_principal(scopes):
    token, _ = make_token("notes:write")
    principal = authenticate_request(RequestFactory().get("/mcp", HTTP_AUTHORIZATION=f"Bearer {token}"))
    assert require_scopes(principal, "notes:read") is principal
    with pytest.raises(InsufficientScope) as caught:
        require_scopes(principal, "notes:delete")
    assert not isinstance(caught.value, ScopeDenied)
    assert caught.value.requirement == ScopeRequirement.all_of("notes:delete")
    with pytest.raises(MissingToken):
        require_scopes(RequestFactory().get("/mcp"), "notes:read")
    with pytest.raises(ImproperlyConfigured):
        require_scopes(principal)


# --- plain Django views -------------------------------------------------------------------


def test_plain_decorator(client, scopes):
    assert call(client, "get", "/plain/scoped", "admin").status_code == 200
    assert_403(call(client, "get", "/plain/scoped", "notes:delete"), "notes:read", path="/plain/scoped")
    response = client.get("/plain/scoped")
    assert response.status_code == 401
    assert "error" not in parse_challenge(response["WWW-Authenticate"])


def test_plain_decorator_alternatives(client, scopes):
    assert call(client, "get", "/plain/alternatives", "notes:write").status_code == 200
    assert_403(call(client, "get", "/plain/alternatives", "notes:read"), "notes:write", path="/plain/alternatives")


def test_plain_dynamic_check(client, scopes):
    assert call(client, "get", "/plain/dynamic", "admin").status_code == 200
    assert_403(call(client, "get", "/plain/dynamic", "notes:write"), "notes:delete", path="/plain/dynamic")


def test_plain_class_based_view(client, scopes):
    assert call(client, "get", "/plain/class", "notes:read").status_code == 200
    assert_403(call(client, "post", "/plain/class", "notes:read"), "notes:write", path="/plain/class")
    assert call(client, "post", "/plain/class", "admin").status_code == 200
    assert call(client, "delete", "/plain/class", "admin").status_code == 405
    assert client.get("/plain/class").status_code == 401


def test_decorator_needs_a_requirement():
    with pytest.raises(ImproperlyConfigured):
        scopes_required()


def test_protected_views_are_marked_for_discovery():
    from django_mcp_scopes.authentication import MCPTokenAuthentication
    from tests import enforcement_views

    assert MCPTokenAuthentication.mcp_scopes_protected is True
    assert enforcement_views.plain_scoped.mcp_scopes_protected is True
    assert enforcement_views.mcp_view.mcp_scopes_protected is True
    assert enforcement_views.PlainClassView.mcp_scopes_protected is True
