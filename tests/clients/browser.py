"""The person at the browser, for clients that open one (``BROWSER="python tests/clients/browser.py"``).

Called with the authorization URL, as ``xdg-open`` calls a browser. Signs in on the example's
login page (``BROWSER_USERNAME`` / ``BROWSER_PASSWORD``, default demo / demo), approves on the
consent page, and follows the redirect to the client's loopback callback, as a browser would.
Every step is appended to ``BROWSER_LOG`` (when set): the client starts this script detached,
with its output thrown away.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx

from tests.example.live import Browser


def log(line: str) -> None:
    path = os.environ.get("BROWSER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(line + "\n")


def main(url: str) -> int:
    log(f"open {url}")
    browser = Browser(os.environ.get("BROWSER_USERNAME", "demo"), os.environ.get("BROWSER_PASSWORD", "demo"))
    try:
        response = browser.authorize(url)
        for page in browser.pages:
            log(f"{page.request.method} {page.request.url.path} -> {page.status_code}")
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303) or not location:
            log(f"stopped on {response.status_code}: {response.text[:500]}")
            return 1
        callback = httpx.get(location, timeout=30)
        log(f"callback {callback.status_code}")
        return 0 if callback.status_code < 400 else 1
    except Exception as exc:  # the log is all anyone will see
        log(f"failed: {exc!r}")
        return 1
    finally:
        browser.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
