"""Helpers for browser tests of admin pages: reach a changelist row, run a bulk action, read messages,
use the "Implies" widget, and measure text contrast as a person would see it.

They take a Playwright ``Page``; fixtures (``page``, ``admin_page``, ``screenshot``) are in conftest.py.
"""

from __future__ import annotations

import re
from typing import Any

ADMIN_USERNAME = "browser-admin"
ADMIN_PASSWORD = "browser-admin-pw"

# WCAG 2.x contrast of an element's text against the first opaque background behind it (its own or an
# ancestor's; white when none is set). Foreground alpha and background images are not considered.
_CONTRAST_JS = """
element => {
  const rgba = value => (value.match(/[\\d.]+/g) || []).map(Number);
  const foreground = rgba(getComputedStyle(element).color);
  let background = [255, 255, 255];
  for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
    const color = rgba(getComputedStyle(node).backgroundColor);
    if (color.length === 3 || (color.length === 4 && color[3] > 0)) { background = color; break; }
  }
  const channel = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const luminance = c => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const [light, dark] = [luminance(foreground), luminance(background)].sort((a, b) => b - a);
  return (light + 0.05) / (dark + 0.05);
}
"""


def contrast_ratio(locator: Any) -> float:
    """The WCAG contrast ratio (1 to 21) of the element's text; normal text needs at least 4.5."""
    return float(locator.evaluate(_CONTRAST_JS))


def expect_message(page: Any, text: str | re.Pattern[str]) -> None:
    """Wait for the admin's message list (the page after a submit) to say ``text``."""
    from playwright.sync_api import expect  # here, so conftest.py can import this module without playwright

    expect(page.locator("ul.messagelist")).to_contain_text(text)


def changelist_row(page: Any, name: str) -> Any:
    """The changelist row of the object whose link text is exactly ``name``."""
    return page.locator("#result_list tbody tr").filter(has=page.get_by_role("link", name=name, exact=True))


def run_action(page: Any, names: list[str], action_label: str) -> None:
    """Tick the rows called ``names``, pick the action by its label and press Go."""
    for name in names:
        changelist_row(page, name).locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label=action_label)
    page.locator("button[name=index]").click()


def choose_implied(page: Any, *names: str) -> None:
    """Move scopes from "Available implies" to "Chosen implies" as a person does: filter, select, Choose."""
    for name in names:
        page.locator("#id_implies_input").fill(name)
        page.locator("#id_implies_from").select_option(label=name)
        # Django 5 renders the control as a button with id ..._add, Django 4.2 as a link with ..._add_link.
        page.locator("#id_implies_add, #id_implies_add_link").first.click()
    page.locator("#id_implies_input").fill("")


def chosen_implied(page: Any) -> list[str]:
    return list(page.locator("#id_implies_to option").all_inner_texts())
