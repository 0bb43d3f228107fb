"""Blueprints, hooks, middleware, guards and error handlers over the network."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from support.servers import RunningServer

from cello import App, Blueprint, RouteError


@pytest.fixture
def seed(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> httpx.Client:
    with httpx.Client(base_url=serve_app("tests/apps/seed_blueprints.py", *variant).url) as client:
        yield client  # type: ignore[misc]


@pytest.fixture
def layered(serve_app: Callable[..., RunningServer], variant: tuple[str, str]) -> httpx.Client:
    with httpx.Client(base_url=serve_app("tests/apps/layered.py", *variant).url) as client:
        yield client  # type: ignore[misc]


def test_seed_examples(seed: httpx.Client) -> None:
    assert seed.get("/users/").json() == {"users": []}
    assert seed.get("/users/7").json() == {"id": "7"}
    assert seed.get("/api/v1/users/").json() == {"users": []}
    assert seed.get("/api/v1/users/7").json() == {"id": "7"}


def test_blueprint_root_redirects_without_slash(seed: httpx.Client) -> None:
    response = seed.get("/users")
    assert (response.status_code, response.headers["location"]) == (308, "/users/")
    response = seed.get("/api/v1/users?x=1")
    assert (response.status_code, response.headers["location"]) == (308, "/api/v1/users/?x=1")


def test_order_app_outer_inner(layered: httpx.Client) -> None:
    response = layered.get("/outer/inner/trace")
    assert response.status_code == 200
    assert response.json()["trace"] == [
        "app-mw-in",
        "outer-mw-in",
        "inner-mw-in",
        "app-before",
        "outer-before",
        "inner-before",
        "outer-guard",
        "handler",
    ]
    assert response.headers["x-after"] == "inner-after,outer-after,app-after,inner-mw-out,outer-mw-out,app-mw-out"


def test_app_route_sees_only_app_layer(layered: httpx.Client) -> None:
    response = layered.get("/plain")
    assert response.json()["trace"] == ["app-mw-in", "app-before"]
    assert response.headers["x-after"] == "app-after,app-mw-out"


def test_before_hook_short_circuits(layered: httpx.Client) -> None:
    response = layered.get("/outer/inner/trace", headers={"x-short": "1"})
    assert (response.status_code, response.text) == (299, "short-circuited")
    # After-hooks still see the short-circuit response.
    assert response.headers["x-after"] == "inner-after,outer-after,app-after,inner-mw-out,outer-mw-out,app-mw-out"


def test_blueprint_guard_denies_with_403(layered: httpx.Client) -> None:
    response = layered.get("/outer/inner/trace", headers={"x-deny": "outer"})
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden", "status": 403}


def test_route_guard_runs_after_blueprint_guard(layered: httpx.Client) -> None:
    response = layered.get("/outer/inner/secure")
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required", "status": 401}
    response = layered.get("/outer/inner/secure", headers={"x-auth": "yes"})
    assert response.json()["trace"][-3:] == ["outer-guard", "route-guard", "handler"]


@pytest.mark.parametrize(
    ("which", "status", "by"),
    [("inner", 422, "inner"), ("outer", 409, "outer"), ("app", 400, "app"), ("none", 500, None)],
)
def test_error_handler_innermost_first(layered: httpx.Client, which: str, status: int, by: str | None) -> None:
    response = layered.get(f"/outer/inner/raise/{which}")
    assert response.status_code == status
    if by is None:
        assert response.json() == {"error": "Internal Server Error", "status": 500}
    else:
        assert response.json()["handled_by"] == by
    # Hooks run around error responses too.
    assert "app-after" in response.headers["x-after"]


def test_blueprint_status_handler(layered: httpx.Client) -> None:
    assert layered.get("/outer/missing").json() == {"handled_by": "outer-404", "status": 404}


def test_live_registration(layered: httpx.Client) -> None:
    assert layered.get("/outer/inner/late").text == "late"


# -- registration rules (no network needed) -------------------------------------------------


def test_prefix_joining() -> None:
    app = App()
    bp = Blueprint("/a/")
    child = Blueprint("b")

    @child.get("")
    def root(request: object) -> str:
        return ""

    @child.get("/c/")
    def c(request: object) -> str:
        return ""

    bp.register(child)
    app.register_blueprint(bp)
    assert sorted(path for _, path, _ in app.get_all_routes()) == ["/a/b", "/a/b/c/"]


def test_conflict_across_blueprints_names_both_places() -> None:
    app = App()
    one = Blueprint("/x", name="one")
    two = Blueprint("/x", name="two")

    @one.get("/{id}")
    def first(request: object) -> str:
        return ""

    @two.get("/{name}")
    def second(request: object) -> str:
        return ""

    app.register_blueprint(one)
    with pytest.raises(RouteError) as info:
        app.register_blueprint(two)
    message = str(info.value)
    assert "test_blueprints.py" in message and message.count(":") >= 2
    # Nothing of the failed registration stayed behind.
    assert [path for _, path, _ in app.get_all_routes()] == ["/x/{id}"]


def test_duplicate_blueprint_names() -> None:
    app = App()
    app.register_blueprint(Blueprint("/a", name="same"))
    with pytest.raises(RouteError, match="duplicate blueprint name"):
        app.register_blueprint(Blueprint("/b", name="same"))


def test_blueprint_cannot_contain_itself() -> None:
    outer = Blueprint("/o")
    inner = Blueprint("/i")
    outer.register(inner)
    with pytest.raises(RouteError):
        inner.register(outer)


def test_get_all_routes_of_nested_blueprint() -> None:
    import seed_blueprints

    routes = {(m, p) for m, p, _ in seed_blueprints.api.get_all_routes()}
    assert routes == {("GET", "/api/v1/users/"), ("GET", "/api/v1/users/{id}")}


# -- route paths and options are checked at the decorator -----------------------------------


def handler(request: object) -> str:
    return ""


HERE = f"{__file__}:{handler.__code__.co_firstlineno}"


def registrars() -> list[tuple[App, App | Blueprint]]:
    """(app, where routes are declared): the app itself, and a blueprint registered in it."""
    app = App()
    bp = Blueprint("/bp")
    app.register_blueprint(bp)
    return [(app, app), (App(), bp)]


@pytest.mark.parametrize("which", [0, 1], ids=["app", "blueprint"])
@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("/x/<int:id>", "did you mean '{id:int}'"),
        ("/x/<id>", "did you mean '{id}'"),
        ("/f/<path:p>", "did you mean '{p:path}'"),
        ("/x/:id", "did you mean '{id}'"),
        ("users", "did you mean '/users'?"),
    ],
)
def test_foreign_or_relative_paths_are_refused_at_the_decorator(which: int, path: str, hint: str) -> None:
    app, registrar = registrars()[which]
    with pytest.raises(RouteError) as info:
        registrar.get(path)(handler)
    assert hint in str(info.value) and HERE in str(info.value)
    assert app.routes() == []


def test_empty_path_is_the_blueprint_prefix_but_no_app_path() -> None:
    app = App()
    with pytest.raises(RouteError, match="did you mean '/'"):
        app.get("")(handler)
    bp = Blueprint("/users")
    bp.get("")(handler)
    bp.get("/")(handler)
    app.register_blueprint(bp)
    assert sorted(path for _, path, _ in app.get_all_routes()) == ["/users", "/users/"]


def test_foreign_syntax_in_a_blueprint_prefix_is_refused() -> None:
    bp = Blueprint("/orgs/<org>")
    with pytest.raises(RouteError, match="did you mean '{org}', as in '/orgs/{org}/'"):
        bp.get("/")(handler)


DECORATORS = ["get", "post", "put", "patch", "delete", "head", "options", "route"]


@pytest.mark.parametrize("which", [0, 1], ids=["app", "blueprint"])
@pytest.mark.parametrize("decorator", DECORATORS)
def test_misspelt_route_option_names_the_handler_and_the_option(which: int, decorator: str) -> None:
    app, registrar = registrars()[which]
    with pytest.raises(RouteError) as info:
        getattr(registrar, decorator)("/x", max_body_szie=1024)(handler)
    message = str(info.value)
    assert "unknown route option 'max_body_szie'; did you mean 'max_body_size'?" in message
    assert HERE in message
    assert app.routes() == []


@pytest.mark.parametrize("which", [0, 1], ids=["app", "blueprint"])
def test_websocket_options_are_checked_too(which: int) -> None:
    app, registrar = registrars()[which]
    with pytest.raises(RouteError, match="did you mean 'subprotocols'") as info:
        registrar.websocket("/ws", subprotocol=["chat"])(handler)
    assert HERE in str(info.value)
    with pytest.raises(RouteError, match="option 'threaded' does not apply to a websocket route"):
        registrar.websocket("/ws", threaded=True)(handler)
    with pytest.raises(RouteError, match="option 'subprotocols' does not apply to an HTTP route"):
        registrar.get("/ws", subprotocols=["chat"])(handler)
    with pytest.raises(RouteError, match="a list of names"):
        registrar.websocket("/ws", subprotocols="chat")(handler)
    assert app.routes() == []


def test_unknown_option_without_a_close_match_lists_the_known_ones() -> None:
    with pytest.raises(RouteError, match="unknown route option 'colour'; known: csrf, guards, max_body_size, "):
        App().post("/x", colour="red")(handler)


def test_every_documented_route_option_is_accepted() -> None:
    app = App()
    app.post(
        "/upload",
        guards=[lambda request: True],
        name="upload",
        threaded=True,
        max_body_size=1,
        max_file_size=2,
        max_form_field_size=3,
        max_form_parts=4,
        max_part_header_size=5,
        max_part_headers=6,
    )(handler)
    app.post("/raw", stream=True, csrf=False)(handler)
    app.websocket("/ws", guards=[], name="ws", subprotocols=["chat"])(handler)
    assert len(app.routes()) == 3


def test_route_limit_options_are_the_app_options_of_the_same_names() -> None:
    from cello.blueprint import ROUTE_OPTIONS
    from cello.config import Config
    from cello.forms import limits_from

    config = Config()
    limits = {name for name in ROUTE_OPTIONS if name.startswith("max_")}
    assert limits <= set(vars(config))
    # Each form limit set on a route reaches the multipart parser.
    overridden = limits_from(config, dict.fromkeys(limits, 7))
    assert all(value == 7 for value in vars(overridden).values())
