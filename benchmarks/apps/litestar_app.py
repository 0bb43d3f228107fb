"""Litestar with the same endpoints as apps/cello_app.py, written as its docs show."""

from typing import Any

from bench_data import BIG, HELLO, ROUTE_COUNT
from litestar import Litestar, get, post


@get("/")
async def index() -> dict[str, str]:
    return HELLO


@get("/users/{id:int}")
async def user(id: int) -> dict[str, Any]:
    return {"id": id, "name": "user"}


@post("/echo", status_code=200)
async def echo(data: dict[str, Any]) -> dict[str, Any]:
    return data


@get("/big")
async def big() -> dict[str, Any]:
    return BIG


app = Litestar(route_handlers=[index, user, echo, big])


def _item_route(number: int) -> Any:
    @get(f"/r{number}/items/{{id:int}}", name=f"r{number}")
    async def item(id: int) -> dict[str, int]:
        return {"route": number, "id": id}

    return item


app100 = Litestar(route_handlers=[_item_route(n) for n in range(ROUTE_COUNT)])
