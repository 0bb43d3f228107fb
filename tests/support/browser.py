"""Browser tests with Playwright on the system's Chromium (never a downloaded browser).

A browser test module needs two fixtures, which these helpers make short:

    from support.browser import expect, launch_chromium, open_page

    @pytest.fixture(scope="module")
    def browser():
        with launch_chromium() as browser:     # skips when Playwright or Chromium is missing
            yield browser

    @pytest.fixture
    def page(browser):
        with open_page(browser) as page:       # fails the test on an uncaught JS error
            yield page

    def test_something(page, serve_app):
        page.goto(serve_app("examples/x.py").url)
        expect(page.locator("#out")).to_have_text("hello")

Install what they need with `pip install -e '.[test]'` (Playwright's Python package) and
`apt-get install chromium`; `CELLO_CHROMIUM=/path/to/chromium` picks another binary.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# No sandbox: CI runs as root in a container. The rest keeps Chromium from phoning home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
TIMEOUT_MS = 10_000  # for every auto-waiting action and `expect`: generous, never a measurement

# Bring `expect` in for the tests (None when Playwright is missing: they are skipped then).
try:
    from playwright.sync_api import expect as expect
except ImportError:  # pragma: no cover - depends on the machine
    expect = None  # type: ignore[assignment]


def find_chromium() -> str | None:
    """The Chromium binary to drive: $CELLO_CHROMIUM, else Debian's, else one on PATH."""
    chosen = os.environ.get("CELLO_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    for candidate in CANDIDATES:
        found = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    return None


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """A headless Chromium for a test module; skips (saying why) when it cannot be had.

    Only a missing Playwright package or a missing Chromium binary skips: a browser that is
    there but fails to start is an error.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright: pip install -e '.[test]' (or pip install playwright)")
    executable = find_chromium()
    if executable is None:
        pytest.skip("browser tests need Chromium: apt-get install chromium (or set CELLO_CHROMIUM)")
    if expect is not None:
        expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (own cookies, cache); an uncaught JS error fails the test."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def make_file(folder: Path, name: str, size: int, fill: bytes = b"cello ") -> Path:
    """A file of exactly ``size`` bytes to hand to an ``<input type=file>``."""
    path = folder / name
    path.write_bytes((fill * (size // len(fill) + 1))[:size])
    return path
