"""FastAPI with the same endpoints as apps/cello_app.py, written as its docs show."""

from typing import Annotated, Any

from bench_data import BIG, HELLO, ROUTE_COUNT
from fastapi import Body, FastAPI, Query
from fastapi.responses import HTMLResponse
from fortunes import TEMPLATE, environment, fortunes
from pydantic import BaseModel, Field

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


_fortunes = environment().get_template(TEMPLATE)


@app.get("/fortunes", response_class=HTMLResponse)
async def fortunes_page() -> HTMLResponse:
    return HTMLResponse(_fortunes.render(fortunes=fortunes()))


class Customer(BaseModel):
    id: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=100)
    email: str = Field(min_length=3, max_length=254)


class LineItem(BaseModel):
    sku: str = Field(min_length=1, max_length=32)
    quantity: int = Field(ge=1)
    unit_price: float = Field(gt=0)
    options: list[str] = []


class Order(BaseModel):
    id: int = Field(ge=1)
    customer: Customer
    items: list[LineItem] = Field(min_length=1, max_length=100)
    note: str | None = None


class OrderSummary(BaseModel):
    id: int
    items: int
    total: float


@app.post("/orders", status_code=201)
async def create_order(order: Order) -> OrderSummary:
    total = sum(item.quantity * item.unit_price for item in order.items)
    return OrderSummary(id=order.id, items=len(order.items), total=total)


@app.get("/items/{id}")
async def item(id: int, limit: Annotated[int, Query(ge=1, le=100)] = 20, q: str | None = None) -> dict[str, Any]:
    return {"id": id, "limit": limit, "q": q}


app100 = FastAPI()


def _item_route(number: int) -> None:
    @app100.get(f"/r{number}/items/{{id}}")
    async def item(id: int) -> dict[str, int]:
        return {"route": number, "id": id}


for _number in range(ROUTE_COUNT):
    _item_route(_number)
