"""The scope map and the "what breaks if I deactivate X?" pages of the admin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from django_mcp_scopes.models import Refusal, Scope
from django_mcp_scopes.scopemap import deactivation_impact, layered_layout, protected_operations
from tests.enforcement_support import make_application, make_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("journal_declarations", "empty_refusal_record")]

MAP_URL = "/admin/mcp_scopes/scope/map/"


def impact_url(name: str) -> str:
    return reverse("admin:mcp_scopes_scope_impact", args=[Scope.objects.get(name=name).pk])


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}".*?</table>', html, re.S)
    assert match, f"no table #{table_id}"
    return match.group(0)


def rows(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", " ", row) for row in re.findall(r"<tr data-operation=.*?</tr>", html, re.S)]


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def demo():
    call_command("setup_demo", "--no-admin", verbosity=0, stdout=None)


# the example project: /mcp and /api/entries ------------------------------------------------------


@pytest.mark.urls("example_project.urls")
def test_the_map_of_the_example_shows_mcp_tools_and_the_drf_view(superuser_client, demo):
    response = superuser_client.get(MAP_URL)
    assert response.status_code == 200
    html = response.content.decode()
    matrix = table(html, "scope-map-matrix")
    found = [squash(row) for row in rows(matrix)]
    assert any(
        row.startswith("/api/entries DRF GET view EntryListView entries:read (HasScopesByMethod)") for row in found
    )
    assert any(row.startswith("/api/entries DRF POST view EntryListView entries:write") for row in found)
    assert any(row.startswith("/mcp MCP POST tool create_entry entries:write") for row in found)
    assert any("prompt suggest_tags entries:read and tags:read" in row for row in found)
    # entries:write implies entries:read: it reaches GET /api/entries through the hierarchy.
    get_row = next(r for r in re.findall(r"<tr data-operation=.*?</tr>", matrix, re.S) if "DRF GET /api/entries" in r)
    columns = [c.strip() for c in re.findall(r'<th scope="col" class="mcp-col">(.*?)</th>', matrix, re.S)]
    cells = [squash(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r'<td class="mcp-cell">(.*?)</td>', get_row, re.S)]
    by_scope = dict(zip(columns, cells, strict=True))
    assert by_scope["entries:read"] == "\u25cf needs"
    assert by_scope["entries:write (step-up)"] == "\u25cb via"
    assert by_scope["tags:read"] == ""
    # The hierarchy as a picture, the grants table and the legend.
    svg = re.search(r'<figure class="mcp-scopes-graph" id="scope-map-graph">.*?</figure>', html, re.S).group(0)
    assert svg.count('<g class="mcp-node') == 5
    assert "<title>entries:write implies entries:read</title>" in svg
    assert 'id="scope-map-legend"' in svg
    grants = squash(re.sub(r"<[^>]+>", " ", table(html, "scope-map-grants")))
    assert "entries:write step-up only entries:read entries:read" in grants


@pytest.mark.urls("example_project.urls")
def test_what_breaks_if_entries_read_is_deactivated(superuser_client, demo):
    response = superuser_client.get(impact_url("entries:read"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "What breaks if entries:read is deactivated" in html
    everyone = [squash(row) for row in rows(table(html, "scope-impact-everyone"))]
    assert "/api/entries DRF GET view EntryListView entries:read" in everyone
    assert "/mcp MCP POST tool list_entries entries:read" in everyone
    assert "/mcp MCP POST prompt suggest_tags entries:read and tags:read" in everyone
    assert not any("POST view EntryListView" in row for row in everyone)
    grants = squash(re.sub(r"<[^>]+>", " ", table(html, "scope-impact-grants")))
    assert grants.endswith("entries:write entries:read")
    assert 'id="scope-impact-holders-none"' in html


@pytest.mark.urls("example_project.urls")
def test_what_breaks_if_entries_write_is_deactivated(superuser_client, demo):
    html = superuser_client.get(impact_url("entries:write")).content.decode()
    everyone = [squash(row) for row in rows(table(html, "scope-impact-everyone"))]
    assert "/api/entries DRF POST view EntryListView entries:write" in everyone
    assert "/mcp MCP POST tool add_tag_to_entry entries:write and tags:write" in everyone
    # A token holding only entries:write reads through the hierarchy today, and would not.
    holders = [squash(row) for row in rows(table(html, "scope-impact-holders"))]
    assert "/api/entries GET view EntryListView entries:read entries:write" in holders
    assert 'id="scope-impact-grants-none"' in html


@pytest.mark.urls("example_project.urls")
def test_live_tokens_on_the_impact_page_the_map_and_the_change_page(superuser_client, demo):
    app = make_application(name="Claude")
    make_token("entries:write", application=app)
    make_token("entries:write entries:read", application=app)
    make_token("entries:read", application=make_application(name="Other"))
    make_token("entries:write", application=app, expires_in=-10)  # expired: not live
    html = superuser_client.get(impact_url("entries:write")).content.decode()
    tokens = squash(re.sub(r"<[^>]+>", " ", table(html, "scope-impact-tokens")))
    assert "entries:write 2 0 Claude" in tokens
    page = superuser_client.get(MAP_URL).content.decode()
    row = re.search(r'<tr id="scope-row-\d+" data-scope="entries:read">.*?</tr>', page, re.S).group(0)
    assert "2 + 1" in row  # two tokens name it, one gets it through entries:write
    scope = Scope.objects.get(name="entries:read")
    change = superuser_client.get(reverse("admin:mcp_scopes_scope_change", args=[scope.pk])).content.decode()
    usage = squash(re.sub(r"<[^>]+>", " ", change))
    assert "2 directly, 1 through the hierarchy" in usage
    assert re.search(r"Claude \S+ : 1 directly, 1 through the hierarchy", usage)
    assert re.search(r"Other \S+ : 1 directly, 0 through the hierarchy", usage)


@pytest.mark.urls("example_project.urls")
def test_refusal_counts_on_the_map_and_the_change_page(superuser_client, demo):
    now = timezone.now()
    Refusal.objects.create(created_at=now, kind="insufficient_scope", missing_scopes="entries:write")
    Refusal.objects.create(created_at=now, kind="insufficient_scope", missing_scopes="entries:write tags:write")
    Refusal.objects.create(
        created_at=now - timedelta(days=2), kind="insufficient_scope", missing_scopes="entries:write"
    )
    page = superuser_client.get(MAP_URL).content.decode()
    row = re.search(r'<tr id="scope-row-\d+" data-scope="entries:write">.*?</tr>', page, re.S).group(0)
    assert re.findall(r'<td class="mcp-scopes-refusals">(\d+)</td>', row) == ["2"]
    scope = Scope.objects.get(name="entries:write")
    change = superuser_client.get(reverse("admin:mcp_scopes_scope_change", args=[scope.pk])).content.decode()
    assert re.search(r'2 <a href="/admin/mcp_scopes/refusal/\?q=entries%3Awrite">', change)


# every kind of protected view ----------------------------------------------------------------------


def test_composed_permissions_mixins_and_decorators_are_all_listed():
    found = {(op.source, op.method, op.endpoint): op for op in protected_operations("tests.scope_map_urls")}
    assert found["DRF", "GET", "/api/composed"].alternatives == [frozenset({"notes:read", "notes:list"})]
    assert found["DRF", "POST", "/api/composed"].formula == "(HasScopes & HasScopesByMethod)"
    assert found["DRF", "GET", "/api/either"].describe() == "notes:admin, or notes:read, or notes:list and tags:read"
    negated = found["DRF", "GET", "/api/negated"]
    assert negated.formula == "(HasValidToken & ~HasScopes[banned])"
    assert negated.any_token
    assert found["DRF", "GET", "/api/dynamic"].dynamic
    assert "declares no required_scopes" in found["DRF", "GET", "/api/misdeclared"].problem
    assert found["DRF", "POST", "/api/notes"].alternatives == [frozenset({"notes:write"})]
    assert found["Django", "DELETE", "/plain/scoped"].alternatives == [frozenset({"notes:write"})]
    assert found["Django", "GET", "/plain/token"].any_token
    assert found["Django", "*", "/plain/function/<int:pk>"].describe() == "notes:read, or notes:admin"
    assert found["Django", "*", "/plain/token-function"].any_token
    assert ("DRF", "GET", "/api/unprotected") not in found
    assert ("Django", "*", "/plain/unprotected") not in found
    assert not any(op.endpoint.startswith("/admin") for op in found.values())


def test_impact_with_alternatives_and_a_chain():
    rows = [
        {"name": n, "description": "", "is_active": True, "is_advertised": False}
        for n in ("notes:admin", "notes:read", "notes:list", "tags:read", "notes:write")
    ]
    edges = [("notes:admin", "notes:write"), ("notes:write", "notes:read")]
    operations = protected_operations("tests.scope_map_urls")
    impact = deactivation_impact("notes:read", operations, rows, edges)
    everyone = {(op.method, op.endpoint) for op in impact.refused_to_everyone}
    # /api/either keeps notes:admin and notes:list + tags:read; the function keeps notes:admin.
    assert everyone == {("GET", "/api/composed"), ("POST", "/api/composed"), ("GET", "/plain/scoped")}
    holders = {(op.method, op.endpoint): names for op, names in impact.lost_by_holders}
    # notes:write reached notes:read through the hierarchy; notes:admin still passes on its own.
    assert holders[("GET", "/api/either")] == ["notes:read", "notes:write"]
    assert impact.lost_grants == [("notes:admin", ["notes:read"]), ("notes:write", ["notes:read"])]
    assert [(op.endpoint) for op in impact.may_need] == []
    middle = deactivation_impact("notes:write", operations, rows, edges)
    assert middle.lost_grants == [("notes:admin", ["notes:read", "notes:write"])]
    holders = {(op.method, op.endpoint): names for op, names in middle.lost_by_holders}
    assert holders[("GET", "/plain/scoped")] == ["notes:admin", "notes:write"]


@pytest.mark.urls("tests.scope_map_urls")
def test_the_map_renders_every_kind_of_view(superuser_client):
    Scope.objects.create(name="notes:read", is_advertised=True)
    Scope.objects.create(name="banned", is_active=False)
    html = superuser_client.get(MAP_URL).content.decode()
    matrix = squash(re.sub(r"<[^>]+>", " ", table(html, "scope-map-matrix")))
    assert "/plain/function/&lt;int:pk&gt; Django * view scoped_function notes:read, or notes:admin" in matrix
    assert "(HasValidToken &amp; ~HasScopes[banned])" in matrix
    assert "notes:list (missing)" in matrix and "banned (inactive)" in matrix
    assert "notes:admin, notes:list, notes:write, tags:read" in squash(
        re.sub(r"<[^>]+>", " ", re.search(r'<p class="errornote" id="scope-map-missing">.*?</p>', html, re.S).group(0))
    )
    svg = re.search(r'id="scope-map-graph">.*?</svg>', html, re.S).group(0)
    assert '<g class="mcp-node inactive" data-scope="banned"><title>banned (inactive)</title>' in svg
    assert '<g class="mcp-node baseline" data-scope="notes:read"><title>notes:read (baseline)</title>' in svg
    assert ">inactive</text>" in svg and ">baseline</text>" in svg


# empty states ---------------------------------------------------------------------------------------


@pytest.mark.urls("tests.scope_map_urls")
def test_an_empty_database_says_so(superuser_client):
    html = superuser_client.get(MAP_URL).content.decode()
    assert 'id="scope-map-empty"' in html
    assert 'id="scope-map-graph"' not in html
    assert 'id="scope-map-matrix"' in html  # the operations are there, their scopes all flagged missing


def test_a_site_without_protected_operations_says_so(superuser_client, settings):
    settings.ROOT_URLCONF = "tests.admin_only_urls"
    Scope.objects.create(name="lonely")
    html = superuser_client.get(MAP_URL).content.decode()
    assert 'id="scope-map-no-operations"' in html
    impact = superuser_client.get(impact_url("lonely")).content.decode()
    assert 'id="scope-impact-everyone-none"' in impact
    assert 'id="scope-impact-holders-none"' in impact
    assert 'id="scope-impact-grants-none"' in impact


def test_without_django_oauth_toolkit_tokens_are_not_counted(superuser_client, monkeypatch):
    monkeypatch.setattr("django_mcp_scopes.usage.tokens_available", lambda: False)
    scope = Scope.objects.create(name="lonely")
    html = superuser_client.get(MAP_URL).content.decode()
    assert "django-oauth-toolkit is not installed: live tokens cannot be counted." in html
    change = superuser_client.get(reverse("admin:mcp_scopes_scope_change", args=[scope.pk])).content.decode()
    assert "django-oauth-toolkit is not installed: no token table to count." in change
    assert "django-oauth-toolkit is not installed" in superuser_client.get(impact_url("lonely")).content.decode()


def test_an_inactive_scope_says_it_grants_nothing_already(superuser_client):
    Scope.objects.create(name="old", is_active=False)
    html = superuser_client.get(impact_url("old")).content.decode()
    assert 'id="scope-impact-inactive"' in html


def test_an_unknown_scope_redirects_with_a_message(superuser_client):
    response = superuser_client.get("/admin/mcp_scopes/scope/999999/impact/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert superuser_client.get("/admin/mcp_scopes/scope/not-a-number/impact/").status_code == 302


# who may see them ------------------------------------------------------------------------------------


def test_staff_without_view_permission_is_refused(staff_client):
    scope = Scope.objects.create(name="s")
    assert staff_client.get(MAP_URL).status_code == 403
    assert staff_client.get(reverse("admin:mcp_scopes_scope_impact", args=[scope.pk])).status_code == 403


@pytest.mark.parametrize("codename", ["view_scope", "change_scope"])
def test_staff_with_view_permission_sees_the_map_and_the_links(staff_client, codename):
    staff_client.user.user_permissions.add(Permission.objects.get(codename=codename))
    scope = Scope.objects.create(name="s")
    assert staff_client.get(MAP_URL).status_code == 200
    assert staff_client.get(reverse("admin:mcp_scopes_scope_impact", args=[scope.pk])).status_code == 200
    changelist = staff_client.get(reverse("admin:mcp_scopes_scope_changelist")).content.decode()
    assert f'href="{MAP_URL}" class="viewlink" id="scope-map-link"' in changelist
    index = staff_client.get(reverse("admin:app_list", args=["mcp_scopes"])).content.decode()
    assert f'<a href="{MAP_URL}" id="app-index-scope-map-link">' in index


def test_the_app_index_hides_the_link_without_scope_permission(staff_client):
    staff_client.user.user_permissions.add(Permission.objects.get(codename="view_refusal"))
    index = staff_client.get(reverse("admin:app_list", args=["mcp_scopes"])).content.decode()
    assert "app-index-scope-map-link" not in index


def test_anonymous_and_non_staff_go_to_the_login_page(client, django_user_model):
    for url in (MAP_URL, "/admin/mcp_scopes/scope/1/impact/"):
        assert client.get(url)["Location"].startswith("/admin/login/")
    client.force_login(django_user_model.objects.create_user("plain", "plain@example.com", "pw"))
    for url in (MAP_URL, "/admin/mcp_scopes/scope/1/impact/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_the_pages_only_read(superuser_client):
    scope = Scope.objects.create(name="s")
    assert superuser_client.post(MAP_URL).status_code == 200
    assert superuser_client.post(reverse("admin:mcp_scopes_scope_impact", args=[scope.pk])).status_code == 200
    assert Scope.objects.get().is_active


# the picture's layout -------------------------------------------------------------------------------


def test_layout_puts_broader_scopes_above_and_survives_a_cycle():
    rows = [{"name": n, "is_active": n != "c", "is_advertised": n == "a"} for n in ("a", "b", "c", "d")]
    layout = layered_layout(rows, [("a", "b"), ("b", "c"), ("a", "c"), ("c", "a")])
    y = {node.name: node.y for node in layout.nodes}
    assert len(set(y.values())) >= 2
    assert layout.width > 0 and layout.height > 0
    assert {edge.dashed for edge in layout.edges} == {True, False}
    assert {node.status for node in layout.nodes} == {"baseline", "step-up only", "inactive"}
    empty = layered_layout([], [])
    assert (empty.nodes, empty.width, empty.height) == ([], 0, 0)
