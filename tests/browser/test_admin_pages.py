"""The admin's other pages in a real browser: its login form, the "MCP endpoints" page and a scope's
"MCP operations" section, reached by following the links an operator follows.

The endpoint shown is the MCP test server that tests/urls.py mounts at /journal/mcp (tests/mcp_app.py).
"""

from __future__ import annotations

import re

from django.urls import reverse
from playwright.sync_api import expect

from django_mcp_scopes.models import Scope
from tests.browser.support import ADMIN_PASSWORD, ADMIN_USERNAME, contrast_ratio, expect_message, run_action
from tests.mcp_app import ensure_scopes

CHANGELIST = reverse("admin:mcp_scopes_scope_changelist")
ENDPOINTS = reverse("admin:mcp_scopes_scope_endpoints")


def journal_endpoint(page):
    """The table of the endpoint tests/urls.py mounts (the page also lists servers other tests created)."""
    return page.locator(".mcp-scopes-endpoint").filter(has=page.locator("caption", has_text="/journal/mcp"))


def operation_row(page, name: str):
    """The row of the journal endpoint's table whose name cell is exactly ``name``."""
    return (
        journal_endpoint(page)
        .locator("tr.mcp-scopes-row")
        .filter(has=page.locator("code", has_text=re.compile(f"^{re.escape(name)}$")))
    )


def test_admin_login_form_refuses_a_wrong_password_then_signs_in(page, admin_account, screenshot):
    page.goto(CHANGELIST)
    page.wait_for_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill(ADMIN_USERNAME)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("p.errornote")).to_contain_text("Please enter the correct username and password")
    screenshot("admin-login-wrong-password")

    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{CHANGELIST}")
    expect(page.locator("#content h1")).to_have_text("Select scope to change")


def test_the_endpoints_page_from_the_changelist_shows_each_operation_and_links_its_scopes(admin_page, screenshot):
    ensure_scopes()
    page = admin_page
    page.goto(CHANGELIST)
    page.get_by_role("link", name="MCP endpoints").click()
    page.wait_for_url(f"**{ENDPOINTS}")
    expect(page.locator("#content h1")).to_have_text("MCP endpoints and the scopes their operations need")

    expect(journal_endpoint(page).locator("caption")).to_contain_text("server test-journal")
    expect(operation_row(page, "echo")).to_contain_text("Any valid token may call this.")
    count = operation_row(page, "count_scopes")
    expect(count.locator("td").first).to_have_text("tool")
    expect(count).to_contain_text("all of: entries:read")
    expect(operation_row(page, "create_entry")).to_contain_text("decided per call, may also need: entries:publish")
    expect(operation_row(page, "moderate")).to_contain_text("any one of: [admin] or [entries:publish + entries:write]")
    # Everything the site serves exists and is active: no warning above the tables.
    expect(page.locator("p.errornote")).to_have_count(0)
    screenshot("admin-mcp-endpoints")

    # The scope names link to their change pages, which list the operations that need them.
    count.get_by_role("link", name="entries:read", exact=True).click()
    expect(page.locator("#content h1")).to_have_text("Change scope")
    expect(page.get_by_label("Name:")).to_have_value("entries:read")
    operations = page.locator(".field-mcp_operations")
    expect(operations).to_contain_text("Named directly")
    expect(operations).to_contain_text("count_scopes")
    operations.scroll_into_view_if_needed()
    screenshot("admin-scope-mcp-operations")


def test_the_endpoints_page_flags_missing_and_inactive_scopes(admin_page, screenshot):
    ensure_scopes()
    Scope.objects.filter(name="entries:publish").delete()
    Scope.objects.filter(name="entries:read").update(is_active=False)
    page = admin_page
    page.goto(ENDPOINTS)

    expect(page.locator("p.errornote")).to_contain_text(
        "5 operations name a scope that is missing from the database or inactive"
    )
    count = operation_row(page, "count_scopes")
    expect(count).to_contain_text("entries:read (inactive)")
    expect(count).to_contain_text("Can never be called")
    expect(count).to_have_class(re.compile(r"\bmcp-scopes-problem\b"))
    create = operation_row(page, "create_entry")
    expect(create).to_contain_text("entries:publish (missing from the database)")
    expect(create).not_to_contain_text("Can never be called")
    screenshot("admin-mcp-endpoints-flags-missing-and-inactive")

    # Activating the scope again from the changelist clears its flag.
    page.goto(CHANGELIST)
    run_action(page, ["entries:read"], "Activate selected scopes")
    expect_message(page, "1 scope activated: entries:read.")
    page.goto(ENDPOINTS)
    expect(operation_row(page, "count_scopes")).not_to_contain_text("Can never be called")
    expect(page.locator("p.errornote")).to_contain_text(
        "1 operation names a scope"
    )  # create_entry: entries:publish is still missing


def test_contrast_ratio_measures_what_a_person_sees(page):
    """The helper a contrast test of an admin page relies on, checked against known WCAG values."""
    page.set_content(
        '<p id="grey" style="color:#777;background:#fff">grey on white</p>'
        '<div style="background:#417690"><span id="inherited" style="color:#264b5d">dark on the admin blue</span></div>'
        '<p id="plain">default text</p>'
    )
    assert round(contrast_ratio(page.locator("#grey")), 2) == 4.48
    assert round(contrast_ratio(page.locator("#plain")), 1) == 21.0
    assert contrast_ratio(page.locator("#inherited")) < 2
