"""Browser tests: Playwright driving the system's Chromium against pytest-django's ``live_server``.

Chromium comes from the operating system (Debian's ``chromium`` package at /usr/bin/chromium, or
``CHROMIUM_PATH``); ``playwright install`` is never needed. Without it every test here is skipped,
saying how to install it (without the ``playwright`` package, from an incomplete install, they are not
collected). Screenshots go to ``BROWSER_SCREENSHOTS`` (default
``test-artifacts/screenshots/``); a failing test leaves one named ``FAILED-<test>.png``.
``REQUIRE_BROWSER_TESTS=1`` turns the skip into a failure, so CI cannot pass without them.

Why ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set while a browser is open: Playwright's sync API keeps its
own asyncio event loop marked as running in the calling thread for as long as the driver lives, so
Django's guard against blocking an event loop refuses every ORM call made by the test (fixtures and
assertions on the database) with ``SynchronousOnlyOperation``. That loop only runs while a
Playwright call is waiting; the test's own queries never block it, which is the case the guard
exists for. So the variable is set for exactly the driver's lifetime (one module) and removed
after; the live server answers from its own threads, where no loop runs, and is unaffected.
The other tests never see a running loop: the driver is stopped before the next module starts.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import ADMIN_PASSWORD, ADMIN_USERNAME

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
# Fail in seconds, not Playwright's default 30 s per step, when an element never shows up.
TIMEOUT_MS = 10_000


def chromium_path() -> str | None:
    """``CHROMIUM_PATH`` when set, else /usr/bin/chromium, else ``chromium`` on PATH; None when there is none."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return shutil.which(configured)
    return shutil.which(DEFAULT_CHROMIUM) or shutil.which("chromium")


REQUIRED = bool(os.environ.get("REQUIRE_BROWSER_TESTS"))
HAS_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
CHROMIUM = chromium_path()
UNAVAILABLE = (
    None
    if CHROMIUM
    else f"Chromium not found at {os.environ.get('CHROMIUM_PATH') or DEFAULT_CHROMIUM}: "
    "apt-get install chromium (or set CHROMIUM_PATH) to run the browser tests"
)

if not HAS_PLAYWRIGHT:
    # It is in the test extra: only an incomplete install lacks it. The modules import it, so they stay uncollected.
    if REQUIRED:
        raise RuntimeError("REQUIRE_BROWSER_TESTS is set but playwright is missing: pip install -e '.[test]'")
    collect_ignore_glob = ["test_*.py"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/browser/ is marked ``browser`` (``-m "not browser"`` leaves it out), and skipped
    before any database or server is set up when there is no Chromium (unless REQUIRE_BROWSER_TESTS)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)
            if UNAVAILABLE and not REQUIRED:
                item.add_marker(pytest.mark.skip(reason=UNAVAILABLE))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"_browser_report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def _chromium() -> str:
    if CHROMIUM is None:
        pytest.fail(f"{UNAVAILABLE} (REQUIRE_BROWSER_TESTS is set, so this is a failure)", pytrace=False)
    # A failure screenshot left by an earlier run would speak of a test that may pass now.
    for stale in SCREENSHOTS.glob("FAILED-*.png"):
        stale.unlink(missing_ok=True)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(_chromium: str) -> Iterator[Any]:
    """One Chromium per test module (a launch costs about a second); each test gets its own context."""
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=_chromium,
                # Playwright's default too; said here because CI runs as root, where Chromium needs it.
                args=["--no-sandbox", "--disable-dev-shm-usage"],
            )
            try:
                yield browser
            finally:
                browser.close()


@pytest.fixture
def page(browser: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page (own cookies) whose relative URLs go to the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "_browser_report_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"FAILED-{_slug(request.node.name)}.png", full_page=True)
        context.close()


@pytest.fixture
def screenshot(page: Any) -> Callable[[str], Path]:
    """``screenshot("admin-scope-added")`` saves the whole page as <BROWSER_SCREENSHOTS>/admin-scope-added.png."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{_slug(name)}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture
def admin_account(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)


@pytest.fixture
def admin_page(page: Any, admin_account: Any, live_server: Any) -> Any:
    """``page``, signed in as a superuser and left on the admin index.

    The session is made on the server side (as ``Client.force_login`` does) and handed to the browser
    as its cookie: the login form costs a page load per test and has a test of its own
    (tests/browser/test_admin_pages.py).
    """
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(admin_account)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    page.goto("/admin/")
    return page


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"
