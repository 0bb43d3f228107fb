"""Starlette with the same endpoints as apps/cello_app.py (run under uvicorn or granian)."""

from bench_data import BIG, HELLO, ROUTE_COUNT
from fortunes import TEMPLATE, environment, fortunes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route


async def index(request: Request) -> JSONResponse:
    return JSONResponse(HELLO)


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "name": "user"})


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(await request.json())


async def big(request: Request) -> JSONResponse:
    return JSONResponse(BIG)


_fortunes = environment().get_template(TEMPLATE)


async def fortunes_page(request: Request) -> HTMLResponse:
    return HTMLResponse(_fortunes.render(fortunes=fortunes()))


app = Starlette(
    routes=[
        Route("/fortunes", fortunes_page),
        Route("/", index),
        Route("/users/{id:int}", user),
        Route("/echo", echo, methods=["POST"]),
        Route("/big", big),
    ]
)


def _item_route(number: int) -> Route:
    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"route": number, "id": request.path_params["id"]})

    return Route(f"/r{number}/items/{{id:int}}", item)


app100 = Starlette(routes=[_item_route(n) for n in range(ROUTE_COUNT)])
