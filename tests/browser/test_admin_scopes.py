"""The scope admin in a real browser: the add, change and delete forms, the "Implies" widget and the bulk actions.

Every step is a click or keystroke on the page as Django renders it (with its JavaScript); each test
then checks what the page says and what the database holds.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.urls import reverse
from playwright.sync_api import expect

from django_mcp_scopes.models import Scope
from tests.browser.support import changelist_row, choose_implied, chosen_implied, expect_message, run_action

CHANGELIST = reverse("admin:mcp_scopes_scope_changelist")


def change_url(name: str) -> str:
    return reverse("admin:mcp_scopes_scope_change", args=[Scope.objects.get(name=name).pk])


def state() -> tuple[list[tuple], list[tuple]]:
    rows = sorted(Scope.objects.values_list("name", "description", "is_active", "is_advertised"))
    edges = sorted(Scope.implies.through.objects.values_list("from_scope__name", "to_scope__name"))
    return rows, edges


@pytest.fixture
def chain():
    read = Scope.objects.create(name="entries:read", description="Read your entries", is_advertised=True)
    write = Scope.objects.create(name="entries:write", description="Change your entries")
    admin = Scope.objects.create(name="entries:admin", description="Everything about entries")
    Scope.objects.create(name="tags:read", description="See tags", is_active=False)
    write.implies.add(read)
    admin.implies.add(write)
    return {"read": read, "write": write, "admin": admin}


# add, edit, deactivate, delete ---------------------------------------------------------------------------


def test_add_a_scope_through_the_form(admin_page, screenshot):
    page = admin_page
    page.get_by_role("link", name="Scopes", exact=True).click()
    page.get_by_role("link", name=re.compile(r"Add scope", re.I)).click()
    expect(page.locator("#content h1")).to_have_text("Add scope")
    page.get_by_label("Name:").fill("entries:read")
    page.get_by_label("Description:").fill("Read your entries")
    page.get_by_label("Advertised").check()
    screenshot("admin-scope-add-form-filled")
    page.get_by_role("button", name="Save", exact=True).click()

    page.wait_for_url(f"**{CHANGELIST}")
    expect_message(page, re.compile(r"The scope .entries:read. was added successfully"))
    expect(page.locator("#result_list")).to_contain_text("Read your entries")
    screenshot("admin-scope-added-changelist")
    scope = Scope.objects.get()
    assert (scope.name, scope.description, scope.is_active, scope.is_advertised) == (
        "entries:read",
        "Read your entries",
        True,
        True,
    )
    assert LogEntry.objects.filter(object_id=str(scope.pk), action_flag=ADDITION).count() == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [("entries read", "remove ' '"), ('entries"read', "remove '\"'"), ("", "This field is required.")],
    ids=["space", "quote", "empty"],
)
def test_a_malformed_name_is_shown_as_an_error_and_nothing_is_saved(admin_page, screenshot, chain, name, expected):
    page = admin_page
    before = state()
    page.goto(reverse("admin:mcp_scopes_scope_add"))
    if name:
        page.get_by_label("Name:").fill(name)
    page.get_by_label("Description:").fill("Should never be saved")
    # The browser's own "required" check would stop an empty name before Django sees it; Django's answer is tested.
    page.locator("#id_name").evaluate("field => field.removeAttribute('required')")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".errornote")).to_be_visible()
    error = page.locator(".field-name .errorlist")
    expect(error).to_contain_text(expected)
    if name:
        expect(error).to_contain_text("RFC 6749")
        # The form comes back with what was typed, so it can be corrected.
        expect(page.get_by_label("Name:")).to_have_value(name)
    assert page.url.endswith(reverse("admin:mcp_scopes_scope_add"))
    if name == "entries read":
        screenshot("admin-scope-add-invalid-name-with-space")
    assert state() == before
    assert not LogEntry.objects.exists()


def test_edit_the_description_and_deactivate_a_scope(admin_page, screenshot, chain):
    page = admin_page
    page.goto(CHANGELIST)
    page.locator("#result_list").get_by_role("link", name="entries:write", exact=True).click()
    expect(page.locator("#content h1")).to_have_text("Change scope")
    # What the change page explains about the scope before the edit.
    expect(page.locator(".field-effective_scopes")).to_contain_text("entries:read, entries:write")
    expect(page.locator(".field-granted_by")).to_contain_text("entries:admin")
    page.get_by_label("Description:").fill("Create and change your entries")
    page.get_by_label("Active").uncheck()
    page.get_by_role("button", name="Save and continue editing").click()

    expect_message(page, "was changed successfully")
    expect(page.get_by_label("Active")).not_to_be_checked()
    expect(page.locator(".field-effective_scopes")).to_contain_text("None: an inactive scope grants nothing.")
    screenshot("admin-scope-deactivated-change-page")
    write = Scope.objects.get(name="entries:write")
    assert write.description == "Create and change your entries"
    assert write.is_active is False
    assert LogEntry.objects.filter(object_id=str(write.pk), action_flag=CHANGE).count() == 1

    page.goto(CHANGELIST + "?is_active__exact=0")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("entries:write")
    expect(page.locator("#result_list")).to_contain_text("tags:read")


def test_delete_a_scope_explains_what_stops_granting_then_deletes(admin_page, screenshot, chain):
    page = admin_page
    page.goto(change_url("entries:write"))
    page.get_by_role("link", name="Delete").click()

    expect(page.locator("#content")).to_contain_text("Are you sure you want to delete")
    body = page.locator("#content")
    expect(body).to_contain_text("entries:write is implied by entries:admin")
    expect(body).to_contain_text("entries:write implies entries:read")
    screenshot("admin-scope-delete-confirmation")
    page.get_by_role("button", name=re.compile(r"Yes, I.m sure")).click()

    page.wait_for_url(f"**{CHANGELIST}")
    expect_message(page, re.compile(r"The scope .entries:write. was deleted successfully"))
    expect(page.locator("#result_list")).not_to_contain_text("entries:write")
    assert not Scope.objects.filter(name="entries:write").exists()
    assert state()[1] == []  # both implications went with it
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 1


# the hierarchy widget ------------------------------------------------------------------------------------


def test_choose_implied_scopes_in_the_widget_and_see_the_hierarchy(admin_page, screenshot):
    for name in ("entries:read", "entries:write", "entries:admin"):
        Scope.objects.create(name=name, description=f"{name} described")
    page = admin_page
    page.goto(change_url("entries:admin"))
    expect(page.locator("#id_implies_from")).to_be_visible()  # the JavaScript widget, not the plain select
    choose_implied(page, "entries:write")
    assert chosen_implied(page) == ["entries:write"]
    screenshot("admin-implies-widget-chosen")
    page.get_by_role("button", name="Save and continue editing").click()

    expect_message(page, "was changed successfully")
    assert chosen_implied(page) == ["entries:write"]
    expect(page.locator(".field-effective_scopes")).to_contain_text("entries:admin, entries:write")

    # A second level: write implies read, so admin now grants read too.
    page.goto(change_url("entries:write"))
    choose_implied(page, "entries:read")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".field-granted_by")).to_contain_text("entries:admin")
    page.goto(change_url("entries:admin"))
    expect(page.locator(".field-effective_scopes")).to_contain_text("entries:admin, entries:read, entries:write")
    screenshot("admin-implies-hierarchy-after-save")
    assert state()[1] == [("entries:admin", "entries:write"), ("entries:write", "entries:read")]
    page.goto(CHANGELIST)
    expect(changelist_row(page, "entries:admin").locator("td.field-direct_implications")).to_have_text("entries:write")


def test_a_cycle_is_never_offered_and_a_forged_one_is_refused_with_the_message(admin_page, screenshot, chain):
    page = admin_page
    before = state()
    page.goto(change_url("entries:read"))
    # The widget does not offer what implies entries:read (choosing it would make a cycle) ...
    assert "entries:admin" not in page.locator("#id_implies_from option").all_inner_texts()
    # ... so forge the choice, as a crafted form post would, and the server still refuses it.
    admin_pk = Scope.objects.get(name="entries:admin").pk
    page.evaluate(
        """pk => {
            // The widget's own model of its boxes (Django's SelectBox), which it submits from.
            SelectBox.add_to_cache("id_implies_to", {value: String(pk), text: "entries:admin", displayed: 1});
            SelectBox.redisplay("id_implies_to");
        }""",
        admin_pk,
    )
    page.get_by_role("button", name="Save", exact=True).click()

    error = page.locator(".field-implies .errorlist")
    expect(error).to_have_text(
        "This would create a cycle: entries:read \u2192 entries:admin \u2192 entries:write \u2192 entries:read. "
        "Remove one of these implications."
    )
    expect(page.locator(".errornote")).to_be_visible()
    screenshot("admin-implies-cycle-refused")
    assert state() == before
    assert not LogEntry.objects.exists()


# bulk actions --------------------------------------------------------------------------------------------


def test_bulk_deactivate_then_activate(admin_page, screenshot, chain):
    page = admin_page
    page.goto(CHANGELIST)
    run_action(page, ["entries:read", "entries:write"], "Deactivate selected scopes (they grant nothing at once)")
    expect(page.locator("ul.messagelist")).to_have_text(
        re.compile(r"2 scopes deactivated: entries:read, entries:write\.")
    )
    screenshot("admin-bulk-deactivated")
    assert set(Scope.objects.filter(is_active=False).values_list("name", flat=True)) == {
        "entries:read",
        "entries:write",
        "tags:read",
    }
    assert LogEntry.objects.filter(action_flag=CHANGE).count() == 2

    # The already-active one is left alone and the message counts only what changed.
    run_action(page, ["entries:read", "entries:admin"], "Activate selected scopes")
    expect(page.locator("ul.messagelist")).to_have_text(re.compile(r"1 scope activated: entries:read\."))
    assert set(Scope.objects.filter(is_active=False).values_list("name", flat=True)) == {"entries:write", "tags:read"}


def test_bulk_advertise_withdraw_and_offline_access_refused(admin_page, screenshot, chain):
    Scope.objects.create(name="offline_access", description="Stay signed in")
    page = admin_page
    page.goto(CHANGELIST)
    run_action(page, ["entries:write", "offline_access"], "Advertise selected scopes (add to the baseline)")
    messagelist = page.locator("ul.messagelist")
    expect(messagelist).to_contain_text("Left unchanged: offline_access can never be advertised.")
    expect(messagelist).to_contain_text("1 scope advertised: entries:write.")
    screenshot("admin-bulk-advertise-offline-access-refused")
    assert set(Scope.objects.filter(is_advertised=True).values_list("name", flat=True)) == {
        "entries:read",
        "entries:write",
    }

    run_action(page, ["entries:read", "entries:write"], "Withdraw selected scopes from the baseline")
    expect(messagelist).to_contain_text("2 scopes withdrawn from the baseline: entries:read, entries:write.")
    assert not Scope.objects.filter(is_advertised=True).exists()


def test_bulk_delete_explains_then_deletes(admin_page, screenshot, chain):
    page = admin_page
    page.goto(CHANGELIST)
    run_action(page, ["entries:read", "tags:read"], "Delete selected scopes")
    expect(page.locator("#content")).to_contain_text("Are you sure you want to delete")
    expect(page.locator("#content")).to_contain_text("entries:read is implied by entries:write")
    screenshot("admin-bulk-delete-confirmation")
    assert Scope.objects.count() == 4  # nothing deleted before the confirmation
    page.get_by_role("button", name=re.compile(r"Yes, I.m sure")).click()

    expect(page.locator("ul.messagelist")).to_contain_text("Successfully deleted 2 scopes.")
    assert sorted(Scope.objects.values_list("name", flat=True)) == ["entries:admin", "entries:write"]
    assert state()[1] == [("entries:admin", "entries:write")]


def test_an_action_without_a_selection_changes_nothing(admin_page, chain):
    page = admin_page
    before = state()
    page.goto(CHANGELIST)
    run_action(page, [], "Deactivate selected scopes (they grant nothing at once)")
    expect(page.locator("ul.messagelist")).to_contain_text("Items must be selected in order to perform actions")
    assert state() == before
