"""The example apps' pages in a real browser (headless Chromium driven by Playwright).

Skipped, with the reason, only when Playwright or Chromium is not installed.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.browser import expect, launch_chromium, make_file, open_page
from support.servers import RunningServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

Serve = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with open_page(browser) as page:
        yield page


def count(page: Page) -> int:
    return int(page.locator("#count").inner_text())


# -- dashboard ---------------------------------------------------------------------------------


def test_dashboard_shows_live_events(page: Page, serve_app: Serve) -> None:
    page.goto(serve_app("examples/dashboard.py").url)
    expect(page.locator("#status")).to_have_text("live")
    # Events keep arriving: the counter goes up by itself while the user watches.
    page.wait_for_function("Number(document.getElementById('count').textContent) >= 2")
    seen = count(page)
    page.wait_for_function(f"Number(document.getElementById('count').textContent) > {seen}")
    assert count(page) > seen
    # The latest values are on the page.
    number = re.compile(r"^\d+(\.\d+)?$")
    for metric in ("uptime_s", "load1", "cpu_percent", "rss_mib", "orders_per_min", "seq"):
        expect(page.locator(f"#m-{metric}")).to_have_text(number)
    assert int(page.locator("#m-clients").inner_text()) >= 1
    expect(page.locator("#updated")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))


# -- uploads -----------------------------------------------------------------------------------


def unique(stem: str, suffix: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"


def test_upload_with_the_html_form(page: Page, serve_app: Serve, tmp_path: Path) -> None:
    page.goto(serve_app("examples/upload.py").url)
    report = make_file(tmp_path, unique("report", ".txt"), 2345)
    page.set_input_files("#classic-files", str(report))
    with page.expect_navigation():
        page.click("#classic-submit")
    expect(page.locator("#notice")).to_have_text(f"Uploaded {report.name}.")
    row = page.locator(f'#files li[data-name="{report.name}"]')
    expect(row).to_have_attribute("data-size", "2345")
    expect(row.locator(".size")).to_have_text("2.3 KiB")


def test_upload_with_fetch(page: Page, serve_app: Serve, tmp_path: Path) -> None:
    page.goto(serve_app("examples/upload.py").url)
    before = int(page.locator("#file-count").inner_text())
    first = make_file(tmp_path, unique("one", ".csv"), 12, b"a,b\n")
    second = make_file(tmp_path, unique("two", ".txt"), 700)
    page.set_input_files("#js-files", [str(first), str(second)])
    page.click("#js-submit")
    expect(page.locator("#js-status")).to_have_text(f"Uploaded {first.name} (12 bytes), {second.name} (700 bytes).")
    # The list is redrawn in place, without a page load.
    expect(page.locator(f'#files li[data-name="{first.name}"] .size')).to_have_text("12 bytes")
    expect(page.locator(f'#files li[data-name="{second.name}"] .size')).to_have_text("700 bytes")
    assert int(page.locator("#file-count").inner_text()) >= before + 2


def test_disallowed_type_is_refused_with_415(page: Page, serve_app: Serve, tmp_path: Path) -> None:
    page.goto(serve_app("examples/upload.py").url)
    program = make_file(tmp_path, unique("setup", ".exe"), 64, b"MZ\x90\x00")

    # The fetch form says so in place...
    page.set_input_files("#js-files", str(program))
    page.click("#js-submit")
    expect(page.locator("#js-status")).to_have_text(
        re.compile(rf"^Upload refused \(415\): {re.escape(program.name)}: type ")
    )

    # ...and the classic form lands on a 415 page that says why.
    page.set_input_files("#classic-files", str(program))
    with page.expect_navigation() as navigation:
        page.click("#classic-submit")
    response = navigation.value
    assert response is not None and response.status == 415
    expect(page.locator("#error")).to_contain_text(f"Upload refused: {program.name}: type")
    expect(page.locator(f'#files li[data-name="{program.name}"]')).to_have_count(0)


# -- chat --------------------------------------------------------------------------------------


def test_chat_message_sent_in_one_tab_appears_in_the_other(page: Page, serve_app: Serve) -> None:
    url = serve_app("examples/chat.py").url
    page.goto(url + "/?name=ada")
    expect(page.locator("#status")).to_have_text("connected")
    other = page.context.new_page()
    other.goto(url + "/?name=grace")
    expect(other.locator("#status")).to_have_text("connected")
    expect(page.locator("#messages li.info").last).to_have_text("grace joined")

    text = f"hello from ada {uuid.uuid4().hex[:6]}"
    page.fill("#text", text)
    page.press("#text", "Enter")
    expect(other.locator("#messages li:not(.info)").last).to_have_text(f"ada: {text}")
    expect(page.locator("#messages li:not(.info)").last).to_have_text(f"ada: {text}")

    other.fill("#text", "hi ada")
    other.click("button")
    expect(page.locator("#messages li:not(.info)").last).to_have_text("grace: hi ada")

    other.close()
    expect(page.locator("#messages li.info").last).to_have_text("grace left")


# -- typed notes API: Swagger UI -----------------------------------------------------------------


def test_notes_swagger_ui_renders_and_tries_a_request(page: Page, serve_app: Serve) -> None:
    url = serve_app("examples/notes_api.py").url
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url + "/docs")
    expect(page.locator(".info .title")).to_contain_text("Notes")
    # Every operation of the document, read from /openapi.json.
    expect(page.locator(".opblock")).to_have_count(5)
    expect(page.locator(".opblock-get .opblock-summary-path").first).to_have_text("/notes")
    # "Try it out" on GET /notes sends the request from the page and shows the answer.
    page.locator(".opblock-get").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")
    expect(page.locator(".live-responses-table tbody .response-col_description")).to_contain_text('"total": 0')
    if shots := os.environ.get("CELLO_SCREENSHOTS"):
        page.screenshot(path=str(Path(shots) / "swagger-ui.png"), full_page=True)
    # Nothing came from anywhere but the app.
    assert requested and all(address.startswith(url) for address in requested), requested


# -- notes site: templates, sessions, CSRF, flash, background work --------------------------------


def test_notes_site_login_add_and_delete_a_note(page: Page, serve_app: Serve) -> None:
    url = serve_app("examples/notes_site.py").url
    page.goto(url + "/")
    expect(page).to_have_url(url + "/login")  # not logged in: redirected
    page.fill("input[name=user]", "ada")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".flash.error")).to_have_text("Unknown user or wrong password.")
    page.fill("input[name=user]", "ada")
    page.fill("input[name=password]", "lovelace")
    page.click("button[type=submit]")
    expect(page).to_have_url(url + "/")
    expect(page.locator(".flash")).to_have_text("Welcome, ada.")
    text = f"<b>buy milk</b> {uuid.uuid4().hex[:6]}"
    page.fill("input[name=text]", text)
    page.click("text=Add")
    expect(page.locator(".flash")).to_have_text("Note saved.")
    expect(page.locator("#notes li").first).to_contain_text(text)  # shown as text, escaped
    page.locator("#notes li").first.locator("button").click()
    expect(page.locator(".flash")).to_have_text("Note deleted.")
    expect(page.locator("#notes")).not_to_contain_text(text)
    page.click("text=Log out")
    expect(page).to_have_url(url + "/login")
