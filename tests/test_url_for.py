"""url_for: names (handlers, blueprints, name=), converters, percent-encoding, query strings,
errors; over the network on every server variant (tests/apps/pages.py), and the property that
routing a built URL gives back the route and the params it was built from."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.servers import RunningServer

from cello import App, Blueprint, Request, RouteError
from cello.errors import UrlBuildError
from cello.routing.codes import FIRST_ROUTE
from cello.routing.converters import FLOAT_MAX_CHARS

PAGES = "tests/apps/pages.py"


@pytest.fixture
def pages(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_app(PAGES, *variant).url) as client:
        yield client


# -- over the network ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "url"),
    [
        ("index", {}, "/"),
        ("user", {"id": "12"}, "/users/12"),
        ("shop.item", {"id": "7", "color": "red"}, "/shop/items/7?color=red"),
        ("shop.index_of_shop", {}, "/shop/"),
        ("word", {"word": "a b/c?d#e%f"}, "/words/a%20b%2Fc%3Fd%23e%25f"),
        ("files", {"path": "x/y z/ü.txt"}, "/files/x/y%20z/%C3%BC.txt"),
    ],
)
def test_url_for_in_handlers_routes_back(pages: httpx.Client, name: str, params: dict[str, str], url: str) -> None:
    built = pages.get(f"/url/{name}", params=params).json()["url"]
    assert built == url
    if name == "word":
        assert pages.get(built).json() == {"word": "a b/c?d#e%f"}
    if name == "files":
        assert pages.get(built).json() == {"path": "x/y z/ü.txt"}


def test_url_for_in_a_blueprint_handler_and_external(pages: httpx.Client) -> None:
    assert pages.get("/shop/").json() == {"item": "/shop/items/1"}
    port = pages.base_url.port
    assert pages.get("/external").json() == {"url": f"http://127.0.0.1:{port}/users/1#top"}


def test_url_for_errors_answer_500(pages: httpx.Client) -> None:
    assert pages.get("/url/nope").status_code == 500
    assert pages.get("/url/user").status_code == 500  # no id


# -- names --------------------------------------------------------------------------------------


def make_app() -> App:
    app = App()

    @app.get("/")
    def index(request: Request) -> str:
        return ""

    @app.route("/things/{id:int}", methods=["GET", "POST"])
    def thing(request: Request) -> str:
        return ""

    @app.delete("/things/{id:int}")
    def delete_thing(request: Request) -> str:
        return ""

    @app.get("/by-name/{slug}", name="named")
    def whatever(request: Request) -> str:
        return ""

    api = Blueprint("/api", name="api")
    v1 = Blueprint("/v1", name="v1")

    @v1.get("/users/{id:int}")
    def user(request: Request) -> str:
        return ""

    @api.get("/status", name="health")
    def status(request: Request) -> str:
        return ""

    api.register_blueprint(v1)
    app.register_blueprint(api)
    return app


def test_names() -> None:
    app = make_app()
    assert app.url_for("index") == "/"
    assert app.url_for("thing", id=3) == "/things/3"
    assert app.url_for("delete_thing", id=3) == "/things/3"
    assert app.url_for("named", slug="x") == "/by-name/x"
    assert app.url_for("api.health") == "/api/status"
    assert app.url_for("api.v1.user", id=9) == "/api/v1/users/9"


def test_blueprint_routes_added_after_registration_are_named() -> None:
    app = App()
    bp = Blueprint("/late", name="late")
    app.register_blueprint(bp)

    @bp.get("/x/{n:int}")
    def x(request: Request) -> str:
        return ""

    assert app.url_for("late.x", n=1) == "/late/x/1"


def test_unknown_name_lists_close_names() -> None:
    app = make_app()
    with pytest.raises(UrlBuildError, match=r"no route named 'thnig'; did you mean 'thing'"):
        app.url_for("thnig", id=1)
    with pytest.raises(UrlBuildError, match=r"no route named 'zzz'; known names: 'api.health'"):
        app.url_for("zzz")


def test_missing_and_invalid_params_name_route_and_param() -> None:
    app = make_app()
    with pytest.raises(UrlBuildError, match=r"missing parameter 'id' for route '/things/\{id:int\}'"):
        app.url_for("thing")
    with pytest.raises(UrlBuildError, match=r"parameter 'id' of route '/things/\{id:int\}' is int: .* got 'abc'"):
        app.url_for("thing", id="abc")
    for bad in (-1, True, 10**18, 1.5):
        with pytest.raises(UrlBuildError):
            app.url_for("thing", id=bad)
    with pytest.raises(UrlBuildError, match="non-empty string"):
        app.url_for("named", slug="")


def test_same_handler_name_on_two_paths_is_refused_naming_both() -> None:
    app = App()

    @app.get("/a")
    def page(request: Request) -> str:
        return ""

    with pytest.raises(RouteError) as caught:

        @app.get("/b")
        def page(request: Request) -> str:  # noqa: F811 - the point of the test
            return ""

    message = str(caught.value)
    assert "duplicate route name 'page'" in message
    assert "'/b' declared at " in message and "'/a' at " in message
    assert message.count("test_url_for.py:") == 2
    # Nothing was added: /b does not exist.
    assert app.url_for("page") == "/a"
    assert len(app.routes()) == 1

    @app.get("/c", name="page_c")
    def page(request: Request) -> str:  # noqa: F811
        return ""

    assert app.url_for("page_c") == "/c"


def test_handlers_of_one_factory_share_a_name_that_url_for_refuses() -> None:
    app = App()

    def make(text: str) -> Callable[[Request], str]:
        def handler(request: Request) -> str:
            return text

        return handler

    app.get("/one")(make("1"))
    app.get("/two")(make("2"))
    assert len(app.routes()) == 2
    with pytest.raises(UrlBuildError, match=r"'handler' is shared by handlers made at .*name="):
        app.url_for("handler")


def test_one_handler_on_two_paths_builds_the_one_its_params_fit() -> None:
    app = App()

    @app.get("/posts")
    @app.get("/posts/{page:int}")
    def posts(request: Request) -> str:
        return ""

    assert app.url_for("posts", page=2) == "/posts/2"
    assert app.url_for("posts") == "/posts"


def test_a_blueprint_registered_twice_has_one_name_per_handler() -> None:
    app = App()
    bp = Blueprint("/x", name="x")

    @bp.get("/item")
    def item(request: Request) -> str:
        return ""

    app.register_blueprint(bp)
    parent = Blueprint("/v2", name="v2")
    parent.register_blueprint(bp)
    app.register_blueprint(parent)
    assert app.url_for("x.item") == "/x/item"
    assert app.url_for("v2.x.item") == "/v2/x/item"


def test_lambdas_and_static_routes(tmp_path: Any) -> None:
    app = App()
    app.get("/l1")(lambda request: "")
    app.get("/l2")(lambda request: "")
    app.static("/assets", str(tmp_path))
    assert app.url_for("static:/assets", path="css/site.css") == "/assets/css/site.css"
    with pytest.raises(UrlBuildError):
        app.url_for("<lambda>")


def test_query_string_anchor_and_base() -> None:
    app = make_app()
    assert app.url_for("index", q="a b", tag=["x", "y"], skip=None) == "/?q=a+b&tag=x&tag=y"
    assert app.url_for("thing", id=1, _anchor="part 2") == "/things/1#part%202"
    assert app.url_for("index", _base="https://example.com/") == "https://example.com/"
    request = Request("GET", "/", headers={"host": "site.test:8443"})
    request.scheme = "https"
    assert app.url_for("thing", id=5, _base=request) == "https://site.test:8443/things/5"


def test_converters_format_values() -> None:
    app = App()
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")

    @app.get("/p/{x:float}/{u:uuid}")
    def price(request: Request) -> str:
        return ""

    assert app.url_for("price", x=2.5, u=ident) == f"/p/2.5/{ident}"
    assert app.url_for("price", x=3, u=str(ident)) == f"/p/3/{ident}"
    assert app.url_for("price", x=1e-05, u=ident) == f"/p/0.00001/{ident}"
    for bad in (float("nan"), float("inf"), -1.0, 1e-70):
        with pytest.raises(UrlBuildError):
            app.url_for("price", x=bad, u=ident)
    with pytest.raises(UrlBuildError, match="a UUID"):
        app.url_for("price", x=1, u="not-a-uuid")


def test_dot_segments_are_encoded() -> None:
    app = make_app()
    assert app.url_for("named", slug="..") == "/by-name/%2E%2E"
    assert app.url_for("named", slug=".") == "/by-name/%2E"


# -- the property: a built URL routes back --------------------------------------------------------


def property_app() -> App:
    app = App()

    @app.get("/i/{n:int}/s/{word}")
    def mixed(request: Request) -> str:
        return ""

    @app.get("/f/{x:float}/{u:uuid}")
    def floats(request: Request) -> str:
        return ""

    @app.get("/s/{word}/rest/{*rest}")
    def rest(request: Request) -> str:
        return ""

    return app


PROPERTY_APP = property_app()
WORDS = st.text(min_size=1, max_size=20)
# A catch-all takes what a client would send: no empty segment in the middle.
PATHS = st.lists(st.text(min_size=1, max_size=8).filter(lambda s: "/" not in s), min_size=1, max_size=4).map("/".join)
QUERY = st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.text(max_size=10), max_size=3)


def route_back(url: str) -> tuple[str | None, dict[str, Any], list[tuple[str, str]]]:
    path, _, query = url.partition("?")
    request = Request("GET", path)
    PROPERTY_APP.resolve(request)
    return request.route, request.params, parse_qsl(query, keep_blank_values=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 10**18 - 1), word=WORDS, query=QUERY)
def test_int_and_str_params_route_back(n: int, word: str, query: dict[str, str]) -> None:
    query = {key: value for key, value in query.items() if key not in ("n", "word")}
    route, params, pairs = route_back(PROPERTY_APP.url_for("mixed", n=n, word=word, **query))
    assert route == "/i/{n:int}/s/{word}"
    assert params == {"n": n, "word": word}
    assert dict(pairs) == query


@settings(max_examples=200, deadline=None)
@given(x=st.floats(0, 1e15, allow_nan=False, allow_infinity=False), u=st.uuids())
def test_float_and_uuid_params_route_back(x: float, u: uuid.UUID) -> None:
    try:
        url = PROPERTY_APP.url_for("floats", x=x, u=u)
    except UrlBuildError:
        # Tiny floats take more digits than the float converter reads (FLOAT_MAX_CHARS).
        assert len(format(decimal.Decimal(repr(x)), "f")) > FLOAT_MAX_CHARS
        return
    route, params, _ = route_back(url)
    assert route == "/f/{x:float}/{u:uuid}"
    assert params == {"x": x, "u": u}


@settings(max_examples=200, deadline=None)
@given(word=WORDS, rest=PATHS)
def test_path_params_route_back(word: str, rest: str) -> None:
    url = PROPERTY_APP.url_for("rest", word=word, rest=rest)
    assert url.count("/") == 4 + rest.count("/")
    route, params, _ = route_back(url)
    assert route == "/s/{word}/rest/{*rest}"
    assert params == {"word": word, "rest": rest}


def test_route_ids_are_routes() -> None:
    # route_back relies on resolve() reaching a route (not a 404 answer).
    request = Request("GET", "/i/1/s/x")
    PROPERTY_APP.resolve(request)
    runtime = PROPERTY_APP._ensure_runtime()
    assert runtime.dispatch("GET", "/i/1/s/x")[0] >= FIRST_ROUTE
