"""The Cello side of the HTTP benchmarks: the same endpoints as the peers' apps.

``app`` serves GET /, GET /users/{id}, POST /echo, GET /big, the typed POST /orders and
GET /items/{id}, and GET /items-untyped/{id} (the typed GET validated by hand); ``app100``
is the 100-route app (/r0/items/{id} ... /r99/items/{id}).
"""

import os
from typing import Annotated

import msgspec
from bench_data import BIG, HELLO, ROUTE_COUNT
from fortunes import TEMPLATE, fortunes

from cello import App, HTTPException, Query, Request, Response

# scaling.py's idle-connection figure opens more connections than the default limit (1000).
_max = os.environ.get("CELLO_BENCH_MAX_CONNECTIONS")
app = App(**({"max_connections": int(_max)} if _max else {}))


@app.get("/")
def index(request: Request) -> dict[str, str]:
    return HELLO


@app.get("/users/{id:int}")
def user(request: Request) -> dict[str, object]:
    return {"id": request.params["id"], "name": "user"}


@app.post("/echo")
def echo(request: Request) -> object:
    return request.json()


@app.get("/big")
def big(request: Request) -> dict[str, object]:
    return BIG


@app.get("/fortunes")
def fortunes_page(request: Request) -> Response:
    # benchmarks/apps/templates/fortunes.html: App(templates=...) defaults to "templates"
    # beside this module.
    return Response.template(TEMPLATE, fortunes=fortunes())


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


@app.post("/orders", status=201)
def create_order(body: Order) -> OrderSummary:
    total = sum(item.quantity * item.unit_price for item in body.items)
    return OrderSummary(id=body.id, items=len(body.items), total=total)


@app.get("/items/{id:int}")
def item(id: int, limit: Annotated[int, Query(ge=1, le=100)] = 20, q: str | None = None) -> dict[str, object]:
    return {"id": id, "limit": limit, "q": q}


@app.get("/items-untyped/{id:int}")
def item_untyped(request: Request) -> dict[str, object]:
    # The typed route above as one writes it without typed handlers, to measure what binding costs.
    limit_text = request.query.get("limit", "20")
    limit = int(limit_text) if limit_text.isdigit() else 0
    if not 1 <= limit <= 100:
        raise HTTPException(422, "limit must be an integer from 1 to 100")
    return {"id": request.params["id"], "limit": limit, "q": request.query.get("q")}


app100 = App()


def _item_route(number: int) -> None:
    @app100.get(f"/r{number}/items/{{id:int}}", name=f"r{number}")
    def item(request: Request) -> dict[str, int]:
        return {"route": number, "id": request.params["id"]}


for _number in range(ROUTE_COUNT):
    _item_route(_number)
