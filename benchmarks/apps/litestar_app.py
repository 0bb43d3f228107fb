"""Litestar with the same endpoints as apps/cello_app.py, written as its docs show."""

from typing import Annotated, Any

import msgspec
from bench_data import BIG, HELLO, ROUTE_COUNT
from fortunes import TEMPLATE, environment, fortunes
from litestar import Litestar, MediaType, get, post
from litestar.params import Parameter


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


_fortunes = environment().get_template(TEMPLATE)


@get("/fortunes", media_type=MediaType.HTML)
async def fortunes_page() -> str:
    return _fortunes.render(fortunes=fortunes())


class Customer(msgspec.Struct):
    id: Annotated[int, msgspec.Meta(ge=1)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


class LineItem(msgspec.Struct):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    unit_price: Annotated[float, msgspec.Meta(gt=0)]
    options: list[str] = []


class Order(msgspec.Struct):
    id: Annotated[int, msgspec.Meta(ge=1)]
    customer: Customer
    items: Annotated[list[LineItem], msgspec.Meta(min_length=1, max_length=100)]
    note: str | None = None


class OrderSummary(msgspec.Struct):
    id: int
    items: int
    total: float


@post("/orders")
async def create_order(data: Order) -> OrderSummary:
    total = sum(item.quantity * item.unit_price for item in data.items)
    return OrderSummary(id=data.id, items=len(data.items), total=total)


@get("/items/{id:int}")
async def item(id: int, limit: Annotated[int, Parameter(ge=1, le=100)] = 20, q: str | None = None) -> dict[str, Any]:
    return {"id": id, "limit": limit, "q": q}


app = Litestar(route_handlers=[index, user, echo, big, create_order, item, fortunes_page])


def _item_route(number: int) -> Any:
    @get(f"/r{number}/items/{{id:int}}", name=f"r{number}")
    async def item(id: int) -> dict[str, int]:
        return {"route": number, "id": id}

    return item


app100 = Litestar(route_handlers=[_item_route(n) for n in range(ROUTE_COUNT)])
