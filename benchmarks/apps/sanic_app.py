"""Sanic with the same endpoints as apps/cello_app.py (run with its own server)."""

from bench_data import BIG, HELLO, ROUTE_COUNT
from fortunes import TEMPLATE, environment, fortunes
from sanic import Request, Sanic, html, json

app = Sanic("bench")


@app.get("/")
async def index(request: Request) -> object:
    return json(HELLO)


@app.get("/users/<id:int>")
async def user(request: Request, id: int) -> object:
    return json({"id": id, "name": "user"})


@app.post("/echo")
async def echo(request: Request) -> object:
    return json(request.json)


@app.get("/big")
async def big(request: Request) -> object:
    return json(BIG)


_fortunes = environment().get_template(TEMPLATE)


@app.get("/fortunes")
async def fortunes_page(request: Request) -> object:
    return html(_fortunes.render(fortunes=fortunes()))


app100 = Sanic("bench100")


def _item_route(number: int) -> None:
    @app100.get(f"/r{number}/items/<id:int>", name=f"r{number}")
    async def item(request: Request, id: int) -> object:
        return json({"route": number, "id": id})


for _number in range(ROUTE_COUNT):
    _item_route(_number)
