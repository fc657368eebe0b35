import re

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.urls import reverse

from django_mcp_scopes.models import Implication, Scope
from django_mcp_scopes.registry import scope_registry

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:mcp_scopes_scope_changelist")
ADD = reverse("admin:mcp_scopes_scope_add")


def change_url(scope):
    return reverse("admin:mcp_scopes_scope_change", args=[scope.pk])


def delete_url(scope):
    return reverse("admin:mcp_scopes_scope_delete", args=[scope.pk])


def _state():
    rows = sorted(Scope.objects.values_list("name", "description", "is_active", "is_advertised"))
    edges = sorted(Scope.implies.through.objects.values_list("from_scope__name", "to_scope__name"))
    return rows, edges


def form_data(name, description="", active=True, advertised=False, implies=()):
    data = {"name": name, "description": description, "implies": [s.pk for s in implies], "_save": "Save"}
    if active:
        data["is_active"] = "on"
    if advertised:
        data["is_advertised"] = "on"
    return data


def log_entries(scope, flag=None):
    entries = LogEntry.objects.filter(object_id=str(scope.pk), content_type__app_label="mcp_scopes")
    return entries.filter(action_flag=flag) if flag else entries


@pytest.fixture
def chain():
    read = Scope.objects.create(name="entries:read", description="Read your entries", is_advertised=True)
    write = Scope.objects.create(name="entries:write", description="Change your entries")
    admin = Scope.objects.create(name="entries:admin", description="Everything about entries")
    other = Scope.objects.create(name="tags:read", description="See tags", is_active=False)
    write.implies.add(read)
    admin.implies.add(write)
    return {"read": read, "write": write, "admin": admin, "other": other}


def test_changelist_search_filters_ordering(admin_client, chain):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert "entries:write" in body and "tags:read" in body
    assert admin_client.get(CHANGELIST, {"q": "tags"}).context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"q": "Change your"}).context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"is_active__exact": "0"}).context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"is_advertised__exact": "1"}).context["cl"].result_count == 1
    ordered = admin_client.get(CHANGELIST, {"o": "-1"}).context["cl"].result_list
    assert [s.name for s in ordered] == ["tags:read", "entries:write", "entries:read", "entries:admin"]


def test_add_page_uses_the_hierarchy_widget(admin_client):
    body = admin_client.get(ADD).content.decode()
    assert "SelectFilter" in body or "selectfilter" in body


def test_add_scope_with_implications_is_logged(admin_client, chain):
    response = admin_client.post(ADD, form_data("entries:owner", "Own", implies=[chain["admin"]]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    scope = Scope.objects.get(name="entries:owner")
    assert list(scope.implies.values_list("name", flat=True)) == ["entries:admin"]
    assert log_entries(scope, ADDITION).count() == 1
    assert scope_registry.expand(["entries:owner"]) == {
        "entries:owner",
        "entries:admin",
        "entries:write",
        "entries:read",
    }


BAD_NAMES = {
    "space": ("entries read", "RFC 6749"),
    "leading space": (" entries:read2", "cannot begin with a space; remove the space before 'entries:read2'"),
    "trailing space": ("entries:read2 ", "cannot end with a space; remove the space after 'entries:read2'"),
    "spaces around": ("  entries:read2 ", "cannot begin or end with a space; remove the spaces around"),
    "leading tab": ("\tentries:read2", "cannot begin with a space"),
    "trailing newline": ("entries:read2\n", "cannot end with a space"),
    "only spaces": ("   ", "cannot be only spaces"),
    "quote": ('entries"read', "RFC 6749"),
    "backslash": ("entries\\read", "RFC 6749"),
    "control": ("entries\x07read", "RFC 6749"),
    "non-ascii": ("entr\u00e9es", "RFC 6749"),
    "empty": ("", "This field is required."),
    "too long": ("x" * 101, "at most 100 characters"),
}


@pytest.mark.parametrize(("name", "message"), BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_add_invalid_name_shows_error_and_writes_nothing(admin_client, chain, name, message):
    before = _state()
    response = admin_client.post(ADD, form_data(name, implies=[chain["read"]]))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message in e for e in errors["name"]), errors
    assert _state() == before
    assert not LogEntry.objects.exists()


def test_add_case_duplicate_gets_the_constraint_message(admin_client, chain):
    before = _state()
    response = admin_client.post(ADD, form_data("Entries:Read"))
    assert response.status_code == 200
    assert "differ by more than case" in response.content.decode()
    assert _state() == before


def test_add_advertised_offline_access_is_refused(admin_client):
    response = admin_client.post(ADD, form_data("offline_access", advertised=True))
    assert response.status_code == 200
    assert "offline_access can never be advertised." in response.content.decode()
    assert not Scope.objects.exists()


def test_edit_cycle_is_a_form_error(admin_client, chain):
    before = _state()
    response = admin_client.post(
        change_url(chain["read"]),
        form_data("entries:read", "Read your entries", advertised=True, implies=[chain["admin"]]),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["implies"]
    assert errors == [
        "This would create a cycle: entries:read \u2192 entries:admin \u2192 entries:write "
        "\u2192 entries:read. Remove one of these implications."
    ]
    assert _state() == before
    assert not LogEntry.objects.exists()


def test_edit_self_implication_is_a_form_error(admin_client, chain):
    before = _state()
    response = admin_client.post(change_url(chain["read"]), form_data("entries:read", implies=[chain["read"]]))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["implies"] == ["A scope cannot imply itself."]
    assert _state() == before


def test_edit_is_logged_and_reaches_the_registry(admin_client, chain):
    write = chain["write"]
    response = admin_client.post(
        change_url(write), form_data("entries:write", "Change your entries", advertised=True, implies=[])
    )
    assert response.status_code == 302
    assert scope_registry.baseline() == ["entries:read", "entries:write"]
    assert scope_registry.expand(["entries:admin"]) == {"entries:admin", "entries:write"}
    entry = log_entries(write, CHANGE).get()
    assert "Advertised" in entry.get_change_message() and "Implies" in entry.get_change_message()
    history = admin_client.get(reverse("admin:mcp_scopes_scope_history", args=[write.pk]))
    assert "Advertised" in history.content.decode()


def test_change_page_shows_effective_scopes_and_what_grants_it(admin_client, chain):
    body = admin_client.get(change_url(chain["write"])).content.decode()
    assert "entries:read, entries:write" in body  # effective scopes
    assert "entries:admin" in body  # granted by
    inactive = admin_client.get(change_url(chain["other"])).content.decode()
    assert "an inactive scope grants nothing" in inactive


def _action(admin_client, action, scopes):
    return admin_client.post(CHANGELIST, {"action": action, "_selected_action": [s.pk for s in scopes]}, follow=True)


def test_bulk_deactivate_and_activate(admin_client, chain):
    assert scope_registry.expand(["entries:admin"]) == {"entries:admin", "entries:write", "entries:read"}
    response = _action(admin_client, "deactivate", [chain["write"], chain["other"]])
    assert response.status_code == 200
    assert "1 scope deactivated: entries:write." in response.content.decode()
    assert set(Scope.objects.filter(is_active=False).values_list("name", flat=True)) == {
        "entries:write",
        "tags:read",
    }
    assert scope_registry.expand(["entries:admin"]) == {"entries:admin"}  # registry invalidated
    assert log_entries(chain["write"], CHANGE).count() == 1
    assert log_entries(chain["other"]).count() == 0  # unchanged: no history
    _action(admin_client, "activate", [chain["write"], chain["other"]])
    assert not Scope.objects.filter(is_active=False).exists()
    assert log_entries(chain["write"], CHANGE).count() == 2
    assert "Active" in log_entries(chain["other"], CHANGE).get().get_change_message()
    assert scope_registry.is_active("tags:read")


def test_bulk_advertise_and_withdraw(admin_client, chain):
    response = _action(admin_client, "advertise", [chain["write"], chain["read"]])
    assert "1 scope advertised: entries:write." in response.content.decode()
    assert scope_registry.baseline() == ["entries:read", "entries:write"]
    _action(admin_client, "withdraw", [chain["write"], chain["read"]])
    assert scope_registry.baseline() == []
    assert log_entries(chain["read"], CHANGE).count() == 1
    assert log_entries(chain["write"], CHANGE).count() == 2


def test_bulk_advertise_refuses_offline_access_with_a_message(admin_client, chain):
    offline = Scope.objects.create(name="offline_access", description="Stay signed in")
    response = _action(admin_client, "advertise", [offline, chain["write"]])
    assert response.status_code == 200
    body = response.content.decode()
    assert "Left unchanged: offline_access can never be advertised." in body
    assert not Scope.objects.get(name="offline_access").is_advertised
    assert Scope.objects.get(name="entries:write").is_advertised
    assert log_entries(offline).count() == 0


def test_delete_implied_scope_is_explained_then_logged(admin_client, chain):
    read = chain["read"]
    page = admin_client.get(delete_url(read))
    assert page.status_code == 200
    body = page.content.decode()
    assert "entries:read is implied by entries:write: those scopes will no longer grant it" in body
    assert "entries:write \u2192 entries:read" in body  # the implication row that goes with it
    response = admin_client.post(delete_url(read), {"post": "yes"})
    assert response.status_code == 302
    assert not Scope.objects.filter(name="entries:read").exists()
    assert LogEntry.objects.filter(action_flag=DELETION, object_repr="entries:read").count() == 1
    assert scope_registry.expand(["entries:admin"]) == {"entries:admin", "entries:write"}


def test_delete_unknown_scope_is_not_a_500(admin_client):
    response = admin_client.get(reverse("admin:mcp_scopes_scope_delete", args=["999999"]))
    assert response.status_code == 302  # the admin redirects with "does not exist"
    response = admin_client.get(reverse("admin:mcp_scopes_scope_delete", args=["not-a-number"]))
    assert response.status_code in (302, 404)


def test_bulk_delete_is_explained_then_logged(admin_client, chain):
    page = _action(admin_client, "delete_selected", [chain["write"]])
    body = page.content.decode()
    assert "entries:write is implied by entries:admin" in body
    assert "entries:write implies entries:read" in body
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [chain["write"].pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not Scope.objects.filter(name="entries:write").exists()
    assert LogEntry.objects.filter(action_flag=DELETION, object_repr="entries:write").count() == 1
    assert scope_registry.expand(["entries:admin"]) == {"entries:admin"}


def test_view_only_staff_cannot_run_bulk_actions(client, chain):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_scope"))
    client.force_login(user)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "deactivate" not in page.content.decode()
    before = _state()
    response = client.post(CHANGELIST, {"action": "deactivate", "_selected_action": [chain["write"].pk]})
    assert response.status_code in (200, 302, 403)
    assert _state() == before
    assert not LogEntry.objects.exists()


def test_changelist_queries_do_not_grow_with_the_number_of_scopes(admin_client, chain, django_assert_max_num_queries):
    admin_client.get(CHANGELIST)
    for i in range(30):
        Scope.objects.create(name=f"bulk:{i}").implies.add(chain["read"])
    with django_assert_max_num_queries(12):
        assert admin_client.get(CHANGELIST).status_code == 200


def test_names_and_descriptions_are_escaped_on_every_admin_page(admin_client):
    # "<script>...</script>" is a valid RFC 6749 scope-token (no space, quote or backslash).
    payload = "<script>alert(1)</script>"
    evil = Scope.objects.create(name=payload, description=payload + "<img src=x onerror=alert(2)>")
    parent = Scope.objects.create(name="<b>parent</b>")
    parent.implies.add(evil)
    pages = [
        admin_client.get(reverse("admin:mcp_scopes_scope_changelist")),
        admin_client.get(change_url(evil)),
        admin_client.get(change_url(parent)),
        admin_client.get(delete_url(evil)),
        admin_client.post(
            reverse("admin:mcp_scopes_scope_changelist"),
            {"action": "delete_selected", "_selected_action": [evil.pk, parent.pk]},
        ),
        admin_client.post(
            reverse("admin:mcp_scopes_scope_changelist"),
            {"action": "deactivate", "_selected_action": [evil.pk, parent.pk]},
            follow=True,
        ),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert "<script>alert(1)" not in html
        assert "<img src=x" not in html
        assert "<b>parent</b>" not in html


# the Implies widget, the named through model, the endpoints page's title ---------------------------


def _offered(html: str) -> list[str]:
    select = re.search(r'<select name="implies"[^>]*>(.*?)</select>', html, re.S)
    assert select, "no Implies widget"
    return re.findall(r"<option value=\"\d+\"[^>]*>(.*?)</option>", select.group(1))


def test_the_implies_widget_offers_neither_the_scope_nor_its_ancestors(admin_client, chain):
    html = admin_client.get(change_url(chain["write"])).content.decode()
    assert 'class="selectfilter"' in html  # still the two-box hierarchy widget
    assert 'id="add_id_implies"' in html  # inside the admin's wrapper, as filter_horizontal was: label beside it
    assert _offered(html) == ["entries:read", "tags:read"]  # not itself, not entries:admin (it implies write)
    assert _offered(admin_client.get(change_url(chain["read"])).content.decode()) == ["tags:read"]
    assert _offered(admin_client.get(change_url(chain["admin"])).content.decode()) == [
        "entries:read",
        "entries:write",
        "tags:read",
    ]
    assert _offered(admin_client.get(ADD).content.decode()) == [
        "entries:admin",
        "entries:read",
        "entries:write",
        "tags:read",
    ]


def test_the_current_implications_stay_selected(admin_client, chain):
    html = admin_client.get(change_url(chain["admin"])).content.decode()
    assert re.search(rf'<option value="{chain["write"].pk}" selected>entries:write</option>', html)


def test_a_forged_ancestor_still_gets_the_cycle_message(admin_client, chain):
    """The widget hides ancestors; the server still refuses one posted anyway, with the same message."""
    before = _state()
    response = admin_client.post(change_url(chain["write"]), form_data("entries:write", implies=[chain["admin"]]))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["implies"] == [
        "This would create a cycle: entries:write \u2192 entries:admin \u2192 entries:write. "
        "Remove one of these implications."
    ]
    assert _state() == before


def test_an_unknown_implied_scope_is_a_form_error(admin_client, chain):
    response = admin_client.post(change_url(chain["write"]), {**form_data("entries:write"), "implies": ["999999"]})
    assert response.status_code == 200
    assert "999999 is not one of the available choices" in str(response.context["adminform"].form.errors["implies"])
    response = admin_client.post(change_url(chain["write"]), {**form_data("entries:write"), "implies": ["x"]})
    assert response.status_code == 200
    assert "implies" in response.context["adminform"].form.errors


def test_saving_implications_through_the_named_model(admin_client, chain):
    response = admin_client.post(
        change_url(chain["admin"]), form_data("entries:admin", implies=[chain["write"], chain["other"]])
    )
    assert response.status_code == 302
    assert sorted(chain["admin"].implies.values_list("name", flat=True)) == ["entries:write", "tags:read"]
    assert Implication.objects.filter(from_scope=chain["admin"]).count() == 2


def test_the_delete_page_names_implications(admin_client, chain):
    body = admin_client.get(delete_url(chain["write"])).content.decode()
    assert "Implication: entries:write \u2192 entries:read" in body
    assert "Implication: entries:admin \u2192 entries:write" in body
    assert "relationship" not in body.lower()
    assert Implication._meta.verbose_name == "implication"
    assert Scope.implies.through is Implication


def test_the_endpoint_title_is_readable_on_the_header_colour(admin_client):
    html = admin_client.get(reverse("admin:mcp_scopes_scope_endpoints")).content.decode()
    caption = re.search(
        r"<div class=\"module mcp-scopes-endpoint\">\s*<table[^>]*>\s*<caption>(.*?)</caption>", html, re.S
    ).group(1)
    assert "<code>/journal/mcp</code>" in caption
    # <code> in a caption takes the caption's (light) colour instead of the admin's dark code colour.
    assert ".module caption code, .module h2 code { color: inherit; background: transparent; }" in html
