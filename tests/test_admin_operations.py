"""The admin's MCP pages: what each scope's operations are, and every endpoint with its requirements.

Most tests use the MCP test server (tests/mcp_app.py) that tests/urls.py mounts at /journal/mcp.
The hostile server below, mounted only by this module's URLconf, has names and descriptions that
carry markup: everything the admin shows of it must come out escaped.
"""

from __future__ import annotations

import re
import sys
import types

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import include, path, reverse
from mcp.server.mcpserver import MCPServer

from django_mcp_scopes import declarations
from django_mcp_scopes.mcp import mcp_path, requires_scopes
from django_mcp_scopes.mcp.endpoint import mounted_endpoints
from django_mcp_scopes.models import Scope
from tests.mcp_app import LISTINGS_OPEN, StaticTokenAuthentication, ensure_scopes
from tests.mcp_app import server as journal_server

pytestmark = pytest.mark.django_db

ENDPOINTS_URL = "/admin/mcp_scopes/scope/endpoints/"
SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
UNMOUNTED = "Created in this process but not mounted in this site's URLconf"

_declared_before = set(declarations.declared_scopes())

hostile = MCPServer("<b>hostile</b>", subscriptions=False)


@hostile.tool(name=SCRIPT, description=f"Says {SCRIPT} to the admin")
@requires_scopes("<i>italic")
def hostile_tool() -> str:
    return "ok"


@hostile.resource("notes://<em>/{item}", description=SCRIPT)
@requires_scopes(any_of=[["<i>italic"], ["entries:read", "<u>missing"]])
def hostile_template(item: str) -> str:
    return item


urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "t/<slug:tenant>/",
        include(
            mcp_path(
                "mcp",
                hostile,
                name="hostile-mcp",
                authentication_classes=[StaticTokenAuthentication],
                method_scopes={**LISTINGS_OPEN, "tools/list": "<i>italic"},
            )
        ),
    ),
]

# As in tests/mcp_app.py: the declaration registry is global and other tests expect it untouched.
for _name in set(declarations.declared_scopes()) - _declared_before:
    declarations._forget(_name)


def change_url(name: str) -> str:
    return reverse("admin:mcp_scopes_scope_change", args=[Scope.objects.get(name=name).pk])


def row(html: str, name: str) -> str:
    """The table row (endpoints page) or list item (change page) of the operation called ``name``."""
    for match in re.finditer(r"<(tr|li)\b[^>]*>.*?</\1>", html, re.S):
        if f"<code>{name}</code>" in match.group(0):
            return match.group(0)
    raise AssertionError(f"no row for {name!r} in the page")


def section(html: str, css_class: str) -> str:
    match = re.search(rf'<ul class="{css_class}">.*?</ul>', html, re.S)
    return match.group(0) if match else ""


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, django_user_model):
    """Staff, no permission at all yet."""
    user = django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def journal_scopes():
    ensure_scopes()


# the endpoints page ----------------------------------------------------------------------------


def test_the_endpoints_page_lists_each_operation_with_its_requirement(superuser_client, journal_scopes):
    response = superuser_client.get(ENDPOINTS_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<code>/journal/mcp</code>" in html
    assert "test-journal" in html
    read = f'<a href="{change_url("entries:read")}">entries:read</a>'
    write = f'<a href="{change_url("entries:write")}">entries:write</a>'
    publish = f'<a href="{change_url("entries:publish")}">entries:publish</a>'
    admin_scope = f'<a href="{change_url("admin")}">admin</a>'

    assert "any valid token (declared with @open_to_any_token)" in row(html, "echo")
    assert "Any valid token may call this." in row(html, "echo")
    count = row(html, "count_scopes")
    assert "<td>tool</td>" in count
    assert f"all of: {read}" in count
    assert "A sync tool that queries the database" in count
    create = row(html, "create_entry")
    assert f"all of: {write}; decided per call, may also need: {publish}" in create
    assert f"any one of: [{admin_scope}] or [{publish} + {write}]" in row(html, "moderate")
    assert "<td>resource</td>" in row(html, "notes://public")
    assert "any valid token" in row(html, "notes://public")
    template = row(html, "notes://private/{note_id}")
    assert "<td>resource template</td>" in template
    assert f"all of: {read}" in template
    assert "<td>prompt</td>" in row(html, "summarize")
    assert f"all of: {read}" in row(html, "summarize")
    # Everything the site serves exists and is active: nothing is flagged.
    served, _, unmounted = html.partition(UNMOUNTED)
    assert "missing from the database" not in served
    assert "Can never be called" not in served
    assert "errornote" not in served
    # This module's hostile server was created (at import) but tests/urls.py does not mount it.
    assert "&lt;b&gt;hostile&lt;/b&gt;" in unmounted
    assert "(no path)" in unmounted


def test_missing_and_inactive_scopes_are_flagged(superuser_client, journal_scopes):
    Scope.objects.filter(name="entries:publish").delete()
    Scope.objects.filter(name="entries:read").update(is_active=False)
    html = superuser_client.get(ENDPOINTS_URL).content.decode()

    count = row(html, "count_scopes")
    assert 'entries:read</a> <strong class="mcp-scopes-flag">(inactive)</strong>' in count
    assert "Can never be called" in count
    assert "mcp-scopes-problem" in count
    # The dynamic part names a missing scope: public entries will always be refused, others pass.
    create = row(html, "create_entry")
    assert '<span class="mcp-scopes-unknown">entries:publish</span>' in create
    assert "(missing from the database)" in create
    assert "Calls that need a declared scope missing from the database or inactive" in create
    assert "Can never be called" not in create
    # One alternative is still open (admin): flagged scope, but the operation can be called.
    moderate = row(html, "moderate")
    assert "(missing from the database)" in moderate
    assert "Can never be called" not in moderate
    assert "mcp-scopes-problem" not in moderate
    # count_scopes, count_scopes_async, the private template, summarize, create_entry.
    assert "5 operations name a scope that is missing from the database or inactive" in html

    Scope.objects.filter(name="admin").delete()
    html = superuser_client.get(ENDPOINTS_URL).content.decode()
    assert "Can never be called" in row(html, "moderate")
    assert "6 operations name a scope" in html


def test_without_any_scope_in_the_database_nothing_links_and_everything_scoped_is_flagged(superuser_client):
    html = superuser_client.get(ENDPOINTS_URL).content.decode()
    count = row(html, "count_scopes")
    assert '<span class="mcp-scopes-unknown">entries:read</span>' in count
    assert "/admin/mcp_scopes/scope/" not in count
    assert "Can never be called" in count
    assert "any valid token" in row(html, "echo")


@pytest.mark.urls(__name__)
def test_everything_the_page_shows_is_escaped(superuser_client):
    Scope.objects.create(name="<i>italic", description="x")
    response = superuser_client.get(ENDPOINTS_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html.replace('<script src="', "").replace("<script>window", "")
    assert SCRIPT not in html
    assert f"<code>{ESCAPED_SCRIPT}</code>" in html
    assert f"Says {ESCAPED_SCRIPT} to the admin" in html
    assert "&lt;b&gt;hostile&lt;/b&gt;" in html and "<b>hostile" not in html
    # The path keeps its converter, escaped.
    assert "<code>/t/&lt;slug:tenant&gt;/mcp</code>" in html
    italic = f'<a href="{change_url("<i>italic")}">&lt;i&gt;italic</a>'
    assert f"all of: {italic}" in row(html, ESCAPED_SCRIPT)
    template = row(html, "notes://&lt;em&gt;/{item}")
    assert f"any one of: [{italic}] or [" in template
    assert '<span class="mcp-scopes-unknown">&lt;u&gt;missing</span>' in template
    assert "<i>" not in html and "<u>" not in html and "<em>" not in html
    # The method default of this endpoint.
    assert f"all of: {italic}" in row(html, "tools/list")
    assert "default for the method" in row(html, "tools/list")


@pytest.mark.urls(__name__)
def test_the_change_page_escapes_operation_names(superuser_client):
    scope = Scope.objects.create(name="<i>italic", description="x")
    html = superuser_client.get(reverse("admin:mcp_scopes_scope_change", args=[scope.pk])).content.decode()
    direct = section(html, "mcp-scopes-direct")
    assert f"tool <code>{ESCAPED_SCRIPT}</code>" in direct
    assert "method <code>tools/list</code>" in direct
    assert "resource template <code>notes://&lt;em&gt;/{item}</code>" in direct
    assert "<code>/t/&lt;slug:tenant&gt;/mcp</code>" in direct
    assert SCRIPT not in html and "<em>" not in html


# the Scope change page and changelist ----------------------------------------------------------


def test_change_page_separates_direct_operations_from_those_through_the_hierarchy(superuser_client, journal_scopes):
    html = superuser_client.get(change_url("entries:write")).content.decode()
    direct = section(html, "mcp-scopes-direct")
    through = section(html, "mcp-scopes-through")
    assert "<code>/journal/mcp</code> &middot; tool <code>create_entry</code>" in direct
    assert "tool <code>moderate</code>" in direct
    assert "count_scopes" not in direct
    read = f'<a href="{change_url("entries:read")}">entries:read</a>'
    for name in ("count_scopes", "count_scopes_async", "notes://private/{note_id}", "summarize"):
        assert f"through {read}" in row(through, name)
    assert "resource template <code>notes://private/{note_id}</code>" in through
    assert "prompt <code>summarize</code>" in through
    assert "create_entry" not in through and "echo" not in html.split("mcp-scopes-operations")[1]
    assert f'href="{ENDPOINTS_URL}"' in html


def test_change_page_explains_none(superuser_client, journal_scopes):
    html = superuser_client.get(change_url("entries:read")).content.decode()
    assert "summarize" in section(html, "mcp-scopes-direct")
    assert "None: this scope implies no other active scope." in html

    unused = Scope.objects.create(name="unused:scope")
    html = superuser_client.get(change_url("unused:scope")).content.decode()
    assert not section(html, "mcp-scopes-direct")
    assert "None: no tool, resource, prompt or method default of this site names unused:scope." in html

    unused.implies.add(Scope.objects.create(name="unused:child"))
    html = superuser_client.get(change_url("unused:scope")).content.decode()
    child = f'<a href="{change_url("unused:child")}">unused:child</a>'
    assert f"None: no operation names a scope this one implies ({child})." in html

    unused.implies.add(Scope.objects.get(name="admin"))
    html = superuser_client.get(change_url("unused:scope")).content.decode()
    admin_scope = f'<a href="{change_url("admin")}">admin</a>'
    assert f"through {admin_scope}" in row(section(html, "mcp-scopes-through"), "moderate")

    Scope.objects.filter(name="unused:scope").update(is_active=False)
    html = superuser_client.get(change_url("unused:scope")).content.decode()
    assert "None: an inactive scope implies nothing." in html


def test_change_page_of_an_inactive_scope_says_its_operations_are_out_of_reach(superuser_client, journal_scopes):
    Scope.objects.filter(name="entries:write").update(is_active=False)
    html = superuser_client.get(change_url("entries:write")).content.decode()
    assert "tool <code>create_entry</code>" in section(html, "mcp-scopes-direct")
    assert "This scope is inactive: a token holding it passes none of these requirements." in html
    assert not section(html, "mcp-scopes-through")


def test_add_page_has_no_operations_yet(superuser_client):
    response = superuser_client.get(reverse("admin:mcp_scopes_scope_add"))
    assert response.status_code == 200
    assert "mcp-scopes-operations" not in response.content.decode()


def test_a_site_without_mcp_endpoints_says_so(superuser_client, journal_scopes, settings):
    urlconf = types.ModuleType("tests._admin_without_mcp_urls")
    urlconf.urlpatterns = [path("admin/", admin.site.urls)]
    sys.modules[urlconf.__name__] = urlconf
    try:
        settings.ROOT_URLCONF = urlconf.__name__
        html = superuser_client.get(ENDPOINTS_URL).content.decode()
        assert "This site's URLconf mounts no MCP endpoint" in html
        html = superuser_client.get(change_url("entries:read")).content.decode()
        assert "This site serves no MCP endpoint" in html
    finally:
        del sys.modules[urlconf.__name__]


def test_changelist_counts_operations_and_links_to_the_endpoints_page(superuser_client, journal_scopes):
    html = superuser_client.get(reverse("admin:mcp_scopes_scope_changelist")).content.decode()
    counts = dict(
        re.findall(r'<a href="[^"]+">([^<]+)</a></th>.*?<td class="field-mcp_operation_count">(\d+)</td>', html)
    )
    assert counts == {"admin": "1", "entries:publish": "2", "entries:read": "4", "entries:write": "2"}
    assert f'<a href="{ENDPOINTS_URL}" class="viewlink">MCP endpoints</a>' in html


def test_counting_costs_no_query_per_row(superuser_client, journal_scopes, django_assert_max_num_queries):
    for index in range(20):
        Scope.objects.create(name=f"extra:{index}")
    url = reverse("admin:mcp_scopes_scope_changelist")
    superuser_client.get(url)
    with django_assert_max_num_queries(12):
        assert superuser_client.get(url).status_code == 200


def test_mounted_endpoints_gives_each_route():
    found = [(route, endpoint.server) for route, endpoint in mounted_endpoints()]
    assert ("/journal/mcp", journal_server) in found
    assert mounted_endpoints("tests.test_admin_operations")[0][0] == "/t/<slug:tenant>/mcp"


# who may see it --------------------------------------------------------------------------------


def test_staff_without_permission_is_refused(staff_client):
    assert staff_client.get(ENDPOINTS_URL).status_code == 403
    assert staff_client.get(reverse("admin:mcp_scopes_scope_changelist")).status_code == 403


@pytest.mark.parametrize("codename", ["view_scope", "change_scope"])
def test_staff_with_view_permission_sees_the_page_and_the_link(staff_client, codename):
    staff_client.user.user_permissions.add(Permission.objects.get(codename=codename))
    assert staff_client.get(ENDPOINTS_URL).status_code == 200
    html = staff_client.get(reverse("admin:mcp_scopes_scope_changelist")).content.decode()
    assert f'href="{ENDPOINTS_URL}"' in html


def test_anonymous_and_non_staff_go_to_the_login_page(client, django_user_model):
    response = client.get(ENDPOINTS_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    client.force_login(django_user_model.objects.create_user("plain", "plain@example.com", "pw"))
    response = client.get(ENDPOINTS_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_page_only_reads(superuser_client, journal_scopes):
    before = list(Scope.objects.order_by("name").values_list("name", "is_active"))
    assert superuser_client.post(ENDPOINTS_URL).status_code == 200
    assert list(Scope.objects.order_by("name").values_list("name", "is_active")) == before
