"""Three levels (app -> outer -> inner) of hooks, middleware, guards and error handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cello import App, Blueprint, HTTPException, Request, Response

app = App()
outer = Blueprint("/outer", name="outer")
inner = Blueprint("/inner", name="inner")


def trace(request: Request, step: str) -> None:
    if "trace" not in request.state:
        request.state.trace = []
    request.state.trace.append(step)


def add_after(response: Response, step: str) -> None:
    current = response.headers.get("x-after")
    response.set_header("x-after", f"{current},{step}" if current else step)


def make_layer(registrar: App | Blueprint, name: str) -> None:
    @registrar.before_request
    def before(request: Request) -> None:
        trace(request, f"{name}-before")

    @registrar.after_request
    def after(request: Request, response: Response) -> None:
        add_after(response, f"{name}-after")

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        trace(request, f"{name}-mw-in")
        response = await call_next(request)
        add_after(response, f"{name}-mw-out")
        return response

    registrar.use(middleware)


make_layer(app, "app")
make_layer(outer, "outer")
make_layer(inner, "inner")


@app.before_request
async def short_circuit(request: Request) -> Response | None:
    if request.headers.get("x-short"):
        return Response.text("short-circuited", status=299)
    return None


def deny_outer(request: Request) -> bool:
    trace(request, "outer-guard")
    return request.headers.get("x-deny") != "outer"


async def need_auth(request: Request) -> None:
    trace(request, "route-guard")
    if request.headers.get("x-auth") != "yes":
        raise HTTPException(401, "authentication required")


outer.add_guard(deny_outer)


@inner.get("/trace")
def show_trace(request: Request) -> dict[str, object]:
    trace(request, "handler")
    return {"trace": request.state.trace}


@inner.get("/secure", guards=[need_auth])
async def secure(request: Request) -> dict[str, object]:
    trace(request, "handler")
    return {"trace": request.state.trace}


class InnerError(Exception):
    pass


class OuterError(Exception):
    pass


class AppError(Exception):
    pass


ERRORS: dict[str, type[Exception]] = {"inner": InnerError, "outer": OuterError, "app": AppError, "none": TypeError}


@inner.get("/raise/{which}")
def raise_error(request: Request) -> dict[str, str]:
    raise ERRORS[request.params["which"]]("boom")


@inner.error_handler(InnerError)
def inner_handler(request: Request, exc: Exception) -> tuple[dict[str, object], int]:
    return {"handled_by": "inner", "status": 422}, 422


@outer.error_handler(OuterError)
def outer_handler(exc: Exception) -> tuple[dict[str, object], int]:
    return {"handled_by": "outer", "status": 409}, 409


@app.error_handler(AppError)
async def app_handler(request: Request, exc: Exception) -> tuple[dict[str, object], int]:
    return {"handled_by": "app", "status": 400}, 400


@outer.error_handler(404)
def outer_not_found(request: Request, exc: Exception) -> tuple[dict[str, object], int]:
    return {"handled_by": "outer-404", "status": 404}, 404


@outer.get("/missing")
def missing(request: Request) -> dict[str, str]:
    raise HTTPException(404, "nope")


@app.get("/plain")
def plain(request: Request) -> dict[str, object]:
    return {"trace": request.state.trace}


outer.register_blueprint(inner)
app.register_blueprint(outer)


# Registered after the blueprint was registered: still served (registration is live).
@inner.get("/late")
def late(request: Request) -> str:
    return "late"
