"""Jinja2 templates: Response.template over the network on every server variant and under
TestClient (tests/apps/pages.py), context processors, autoescape, errors, reload in debug."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from support.servers import RunningServer, start_server
from support.variants import variant_params

from cello import App, Blueprint, Request, Response
from cello._jinja import _escape
from cello.templating import TemplateNotFound
from cello.testing import TestClient

ROOT = Path(__file__).resolve().parents[1]
PAGES = "tests/apps/pages.py"


def load_pages() -> ModuleType:
    """tests/apps/pages.py imported in this process (for TestClient), once."""
    module = sys.modules.get("cello_test_pages")
    if module is None:
        spec = importlib.util.spec_from_file_location("cello_test_pages", ROOT / PAGES)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["cello_test_pages"] = module
        spec.loader.exec_module(module)
    return module


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every server variant, and the app under TestClient.
    if "where" in metafunc.fixturenames:
        params = [*variant_params(metafunc.function.__name__), pytest.param(("testclient", ""), id="testclient")]
        metafunc.parametrize("where", params)


@pytest.fixture
def site(serve_app: Callable[..., RunningServer], where: tuple[str, str]) -> Iterator[httpx.Client]:
    if where[0] == "testclient":
        with TestClient(load_pages().app) as client:
            yield client
        return
    with httpx.Client(base_url=serve_app(PAGES, *where).url) as client:
        yield client


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'<p id="{element_id}">(.*?)</p>', html, re.S)
    assert found is not None, (element_id, html)
    return found.group(1)


# -- over the network and under TestClient ----------------------------------------------------


def test_page_renders_with_context_request_and_processor(site: httpx.Client) -> None:
    response = site.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>Home</title>" in html
    assert text_of(html, "path") == "/"
    # From the context processor.
    assert text_of(html, "site") == "Cello site"
    assert int(response.headers["content-length"]) == len(response.content)


def test_value_is_autoescaped(site: httpx.Client) -> None:
    html = site.get("/", params={"title": "<script>alert('x')</script> & co"}).text
    assert "<script>alert" not in html
    assert text_of(html, "title") == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"


def test_url_for_in_templates(site: httpx.Client) -> None:
    html = site.get("/").text
    assert 'href="/users/42"' in text_of(html, "user")
    assert 'href="/shop/items/7?color=red"' in text_of(html, "item")
    # A path converter keeps "/" and encodes the rest.
    assert 'href="/files/docs/a%20b.txt"' in text_of(html, "file")
    # Absolute with the request's scheme and host.
    host = site.base_url.host + (f":{site.base_url.port}" if site.base_url.port else "")
    assert text_of(html, "external") == f"http://{host}/"


def test_status_and_headers_of_a_template_response(site: httpx.Client) -> None:
    response = site.get("/users/5")
    assert response.status_code == 203
    assert "<title>user 5</title>" in response.text
    response = site.get("/text-page")
    assert response.cookies["seen"] == "yes"
    assert "with a cookie" in response.text


def test_after_hooks_see_the_rendered_body(site: httpx.Client) -> None:
    response = site.get("/")
    assert int(response.headers["x-body-length"]) == len(response.content) > 100


def test_blueprint_template_in_a_subdirectory(site: httpx.Client) -> None:
    html = site.get("/shop/items/9").text
    assert text_of(html, "item") == "9"
    assert text_of(html, "back") == "/"


def test_error_handler_renders_a_template(site: httpx.Client) -> None:
    response = site.get("/nowhere/<b>")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Nothing at /nowhere/&lt;b&gt;</h1>" in response.text


def test_missing_and_broken_templates_answer_500(site: httpx.Client) -> None:
    for path in ("/missing", "/broken"):
        response = site.get(path)
        assert response.status_code == 500
        # Not in debug mode: nothing about the app's files is given away.
        assert response.json() == {"error": "Internal Server Error", "status": 500}


@pytest.mark.native_only(reason="reads the server's log")
def test_template_errors_are_logged_with_name_and_location(serve_app: Callable[..., RunningServer]) -> None:
    server = serve_app(PAGES, "httptools", "interpreted")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/missing").status_code == 500
        assert client.get("/broken").status_code == 500
    deadline = time.monotonic() + 5
    log = ""
    while time.monotonic() < deadline:
        log = server.log.read_text(errors="replace")
        if "no-such-page.html" in log and "broken.html" in log:
            break
        time.sleep(0.05)
    assert "template 'no-such-page.html' not found in " + str(ROOT / "tests/apps/templates") in log
    assert re.search(r'File ".*broken\.html", line 2', log), log


# -- in process -------------------------------------------------------------------------------


def make_site(tmp_path: Path, debug: bool, **files: str) -> App:
    directory = tmp_path / "templates"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    app = App(templates=str(directory), debug=debug)

    @app.get("/")
    def index(request: Request) -> Response:
        return Response.template("page.html", name="world")

    return app


def rewrite(path: Path, text: str) -> None:
    # A different mtime for certain: the file system's clock may not have moved on yet.
    stamp = path.stat().st_mtime + 10
    path.write_text(text)
    os.utime(path, (stamp, stamp))


def test_templates_reload_in_debug(tmp_path: Path) -> None:
    app = make_site(tmp_path, True, **{"page.html": "hello {{ name }}"})
    with TestClient(app) as client:
        assert client.get("/").text == "hello world"
        rewrite(tmp_path / "templates/page.html", "goodbye {{ name }}")
        assert client.get("/").text == "goodbye world"


def test_templates_are_cached_outside_debug(tmp_path: Path) -> None:
    app = make_site(tmp_path, False, **{"page.html": "hello {{ name }}"})
    with TestClient(app) as client:
        assert client.get("/").text == "hello world"
        rewrite(tmp_path / "templates/page.html", "goodbye {{ name }}")
        assert client.get("/").text == "hello world"
        # Switching debug on keeps the environment (and what was added to it) and reloads.
        app.debug = True
        assert client.get("/").text == "goodbye world"


@pytest.mark.native_only(reason="one server is enough to show a live reload")
def test_reload_over_the_network_in_debug(tmp_path: Path) -> None:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "404.html").write_text("first {{ request.path }}")
    server = start_server(PAGES, "httptools", "interpreted", "--debug", env={"PAGES_TEMPLATES": str(directory)})
    try:
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/gone").text == "first /gone"
            rewrite(directory / "404.html", "second {{ request.path }}")
            assert client.get("/gone").text == "second /gone"
    finally:
        server.stop()


def test_relative_directory_is_taken_from_the_apps_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = load_pages().app
    assert app.templates.directory == ROOT / "tests/apps/templates"
    # This module made this app: its directory.
    assert App().templates.directory == Path(__file__).parent / "templates"
    # An absolute directory, as a str or a Path, is taken as it is.
    assert App(templates=tmp_path).templates.directory == tmp_path
    assert App(templates=str(tmp_path)).templates.directory == tmp_path


def test_debug_error_names_the_template_and_where_it_looked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = make_site(tmp_path, True)
    with caplog.at_level(logging.ERROR, "cello.error"), TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    message = response.json()["error"]
    assert "'page.html' not found in " + str(tmp_path / "templates") in message
    assert "page.html" in caplog.text

    app = App(templates=str(tmp_path / "nowhere"), debug=True)
    with pytest.raises(TemplateNotFound, match="no such directory"):
        app.render_template("page.html")


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    app = make_site(tmp_path, True, **{"page.html": "a\n{% for %}\n"})
    with TestClient(app) as client:
        message = client.get("/").json()["error"]
    assert "TemplateSyntaxError" in message
    assert f'File "{tmp_path / "templates/page.html"}", line 2' in message
    with pytest.raises(jinja2.TemplateSyntaxError) as caught:
        app.render_template("page.html")
    assert caught.value.lineno == 2


def test_autoescape_follows_the_file_name(tmp_path: Path) -> None:
    app = make_site(tmp_path, False, **{"a.html": "{{ v }}", "a.xml": "{{ v }}", "a.txt": "{{ v }}"})
    assert app.render_template("a.html", v="<b>") == "&lt;b&gt;"
    assert app.render_template("a.xml", v="<b>") == "&lt;b&gt;"
    assert app.render_template("a.txt", v="<b>") == "<b>"


def test_context_processors_and_precedence(tmp_path: Path) -> None:
    app = make_site(tmp_path, False, **{"page.html": "{{ a }} {{ b }} {{ c }} {{ request.path }}"})
    calls: list[Any] = []

    @app.context_processor
    def with_request(request: Request) -> dict[str, Any]:
        calls.append(request.path)
        return {"a": "from-processor", "b": "processor-b"}

    @app.context_processor
    def without_request() -> dict[str, Any]:
        return {"c": "no-request"}

    @app.get("/b")
    def override(request: Request) -> Response:
        return Response.template("page.html", b="from-handler")

    with TestClient(app) as client:
        assert client.get("/b").text == "from-processor from-handler no-request /b"
    assert calls == ["/b"]


def test_url_for_in_a_blueprint_template_and_globals(tmp_path: Path) -> None:
    app = make_site(tmp_path, False, **{"links.html": "{{ url_for('admin.show', id=3) }}|{{ url_for('index') }}"})
    admin = Blueprint("/admin", name="admin")

    @admin.get("/users/{id:int}")
    def show(request: Request) -> Response:
        return Response.template("links.html")

    app.register_blueprint(admin)
    with TestClient(app) as client:
        assert client.get("/admin/users/1").text == "/admin/users/3|/"
    # Outside a request, too (url_for is a global of the environment).
    assert app.render_template("links.html") == "/admin/users/3|/"


def test_filters_added_to_the_environment(tmp_path: Path) -> None:
    app = make_site(tmp_path, False, **{"page.html": "{{ name | shout }}"})
    app.templates.environment.filters["shout"] = lambda value: value.upper() + "!"
    with TestClient(app) as client:
        assert client.get("/").text == "WORLD!"


async def test_async_rendering(tmp_path: Path) -> None:
    app = make_site(tmp_path, False, **{"page.html": "{% for x in items() %}{{ x }},{% endfor %}{{ fetch() }}"})

    async def items() -> Any:
        for value in (1, 2):
            yield value

    async def fetch() -> str:
        return "<fetched>"

    text = await app.render_template_async("page.html", items=items, fetch=fetch)
    assert text == "1,2,&lt;fetched&gt;"


def test_async_handler_and_threaded_handler_render(tmp_path: Path) -> None:
    app = make_site(tmp_path, False, **{"page.html": "{{ name }} {{ request.method }}"})

    @app.get("/async")
    async def in_async(request: Request) -> Response:
        return Response.template("page.html", name="async")

    @app.get("/threaded", threaded=True)
    def in_thread(request: Request) -> Response:
        return Response.template("page.html", name="thread")

    with TestClient(app) as client:
        assert client.get("/async").text == "async GET"
        assert client.get("/threaded").text == "thread GET"


def test_no_templates(tmp_path: Path) -> None:
    app = App(templates=None)

    @app.get("/")
    def index(request: Request) -> Response:
        return Response.template("page.html")

    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500


def test_hooks_and_middleware_answering_with_templates(tmp_path: Path) -> None:
    app = make_site(tmp_path, False, **{"page.html": "{{ name }}", "gate.html": "gate {{ request.path }}"})
    renders: list[str] = []

    @app.context_processor
    def count(request: Request) -> dict[str, Any]:
        renders.append(request.path)
        return {}

    @app.before_request
    def gate(request: Request) -> Response | None:
        return Response.template("gate.html", status=401) if request.path == "/gated" else None

    @app.after_request
    def replace(request: Request, response: Response) -> Response | None:
        return Response.template("gate.html") if request.path == "/replaced" else None

    async def middleware(request: Request, call_next: Any) -> Response:
        if request.path == "/by-middleware":
            return Response.template("page.html", name="middleware")
        return await call_next(request)

    app.use(middleware)
    with TestClient(app) as client:
        assert client.get("/").text == "world"
        gated = client.get("/gated")
        assert (gated.status_code, gated.text) == (401, "gate /gated")
        assert client.get("/replaced").text == "gate /replaced"
        assert client.get("/by-middleware").text == "middleware"
    # Each page rendered once, though the handler's passed back out through the middleware.
    assert renders == ["/", "/gated", "/replaced", "/by-middleware"]


# Every output construct Jinja2 compiles, for the escaping equivalence below.
CONSTRUCTS = """{{ v }}|{{ undefined_name }}|{{ 3 }}|{{ -7 }}|{{ v ~ "<&>" }}|{{ v | e }}|{{ v | string | upper }}|{{ [v, v] | join(",") }}
{% macro box(x) %}<b>{{ x }}</b>{{ caller() if caller else "" }}{% endmacro %}{{ box(v) }}
{% call box(v) %}[{{ v }}]{% endcall %}{% set block %}<i>{{ v }}</i>{% endset %}{{ block }}
{% filter lower %}{{ v }}<X>{% endfilter %}{% autoescape false %}{{ v }}{% endautoescape %}
{{ v if v else "none" }}{% for x in [v, 1, none] %}{{ loop.index }}{{ x }}{% endfor %}{% include "inc.html" %}
"""


class _Html:
    def __init__(self, text: str) -> None:
        self.text = text

    def __html__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return "str-not-used"


VALUES = st.one_of(
    st.text(alphabet=st.sampled_from("<>&'\"ab é\x00"), max_size=12),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.builds(Markup, st.text(alphabet="<b>&x", max_size=8)),
    st.builds(_Html, st.text(alphabet="<i>&y", max_size=8)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_escaping_is_markupsafes(tmp_path: Path, value: Any) -> None:
    """Cello's templates escape with a faster function: the text must be markupsafe's."""
    app = make_site(tmp_path, False, **{"all.html": CONSTRUCTS, "inc.html": "({{ v }})", "all.txt": CONSTRUCTS})
    stock = jinja2.Environment(
        loader=jinja2.FileSystemLoader(tmp_path / "templates"),
        autoescape=jinja2.select_autoescape(("html", "htm", "xml", "jinja")),
    )
    stock.globals["url_for"] = app.url_for
    for name in ("all.html", "all.txt"):
        expected = stock.get_template(name).render(v=value, request=None)
        assert app.render_template(name, v=value) == expected
    # The faster escape is the one in use.
    assert app.templates.environment.get_template("all.html").root_render_func.__globals__["escape"] is _escape
