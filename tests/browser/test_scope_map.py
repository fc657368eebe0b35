"""The scope map and the "what breaks if I deactivate X?" page in a real browser, on the example
project's URLs (its /mcp tools and its DRF view /api/entries), and the admin fixes of issue 14 as a
person sees them: the Implies widget without the scope itself, a readable endpoint title."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from django_mcp_scopes.models import Scope
from tests.browser.support import contrast_ratio

MAP = "/admin/mcp_scopes/scope/map/"


@pytest.fixture
def demo(journal_declarations):
    call_command("setup_demo", "--no-admin", verbosity=0, stdout=None)


@pytest.mark.urls("example_project.urls")
def test_the_scope_map_answers_what_breaks_if_entries_read_is_deactivated(admin_page, demo, screenshot):
    page = admin_page
    page.goto(reverse("admin:mcp_scopes_scope_changelist"))
    page.locator("#scope-map-link").click()
    page.wait_for_url(f"**{MAP}")
    expect(page.locator("#content h1")).to_have_text("Scope map")
    # The hierarchy as a picture: one node per scope, entries:write drawn and implying entries:read.
    graph = page.locator("#scope-map-graph svg")
    expect(graph).to_be_visible()
    expect(graph.locator('g.mcp-node[data-scope="entries:read"]')).to_have_count(1)
    expect(graph.locator('g.mcp-node[data-scope="entries:write"]')).to_have_count(1)
    # The matrix names MCP tools and the DRF view with their endpoints.
    matrix = page.locator("#scope-map-matrix")
    expect(matrix).to_contain_text("list_entries")
    expect(matrix).to_contain_text("/api/entries")
    screenshot("admin-scope-map")

    page.goto(reverse("admin:mcp_scopes_scope_change", args=[Scope.objects.get(name="entries:read").pk]))
    page.locator("#scope-impact-link").click()
    expect(page.locator("#content h1")).to_contain_text("entries:read")
    everyone = page.locator("#scope-impact-everyone")
    expect(everyone).to_contain_text("list_entries")
    expect(everyone).to_contain_text("/api/entries")
    screenshot("admin-scope-impact-entries-read")


def test_the_implies_widget_never_offers_the_scope_itself_or_what_implies_it(admin_page, screenshot):
    read = Scope.objects.create(name="entries:read", description="Read entries")
    write = Scope.objects.create(name="entries:write", description="Write entries")
    write.implies.add(read)
    Scope.objects.create(name="tags:read", description="Read tags")
    page = admin_page
    page.goto(reverse("admin:mcp_scopes_scope_change", args=[read.pk]))
    offered = page.locator("#id_implies_from option").all_inner_texts()
    assert "tags:read" in offered
    assert "entries:read" not in offered  # itself
    assert "entries:write" not in offered  # implies it: choosing it would make a cycle
    screenshot("admin-implies-widget-without-itself")


def test_the_endpoint_title_is_readable(admin_page):
    from tests.mcp_app import ensure_scopes

    ensure_scopes()
    page = admin_page
    page.goto(reverse("admin:mcp_scopes_scope_endpoints"))
    caption = (
        page.locator(".mcp-scopes-endpoint")
        .filter(has=page.locator("caption", has_text="/journal/mcp"))
        .locator("caption code")
    )
    assert contrast_ratio(caption.first) >= 4.5
