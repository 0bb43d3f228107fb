"""BlackSheep with the same endpoints as apps/cello_app.py."""

from bench_data import BIG, HELLO, ROUTE_COUNT
from blacksheep import Application, Request, Router, html, json
from fortunes import TEMPLATE, environment, fortunes

# Two applications in one module need a router each (blacksheep's default router is shared).
app = Application(router=Router())


@app.router.get("/")
async def index() -> object:
    return json(HELLO)


@app.router.get("/users/{int:id}")
async def user(id: int) -> object:
    return json({"id": id, "name": "user"})


@app.router.post("/echo")
async def echo(request: Request) -> object:
    return json(await request.json())


@app.router.get("/big")
async def big() -> object:
    return json(BIG)


_fortunes = environment().get_template(TEMPLATE)


@app.router.get("/fortunes")
async def fortunes_page() -> object:
    return html(_fortunes.render(fortunes=fortunes()))


app100 = Application(router=Router())


def _item_route(number: int) -> None:
    @app100.router.get(f"/r{number}/items/{{int:id}}")
    async def item(id: int) -> object:
        return json({"route": number, "id": id})


for _number in range(ROUTE_COUNT):
    _item_route(_number)
