"""FastAPI with the same endpoints as apps/cello_app.py, written as its docs show."""

from typing import Any

from bench_data import BIG, HELLO, ROUTE_COUNT
from fastapi import Body, FastAPI

app = FastAPI()


@app.get("/")
async def index() -> dict[str, str]:
    return HELLO


@app.get("/users/{id}")
async def user(id: int) -> dict[str, Any]:
    return {"id": id, "name": "user"}


@app.post("/echo")
async def echo(payload: dict[str, Any] = Body()) -> dict[str, Any]:
    return payload


@app.get("/big")
async def big() -> dict[str, Any]:
    return BIG


app100 = FastAPI()


def _item_route(number: int) -> None:
    @app100.get(f"/r{number}/items/{{id}}")
    async def item(id: int) -> dict[str, int]:
        return {"route": number, "id": id}


for _number in range(ROUTE_COUNT):
    _item_route(_number)
