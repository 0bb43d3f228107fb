"""A typed app for the OpenAPI tests: every parameter source, every kind of body model, list
results, ``status=``, docstrings, a blueprint, an untyped route and a WebSocket route (which
the document leaves out)."""

from __future__ import annotations

import dataclasses
import enum
import itertools
import uuid
from typing import Annotated, Literal, TypedDict

import msgspec
import pydantic

from cello import App, Blueprint, Cookie, FormData, Header, HTTPException, Query, Request, UploadedFile, WebSocket


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class ItemIn(msgspec.Struct, kw_only=True):
    """An item to store."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    price: Annotated[float, msgspec.Meta(ge=0)]
    color: Color = Color.RED


class Item(ItemIn, kw_only=True):
    id: int


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Label(TypedDict):
    text: str


class Person(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=1)
    age: int = pydantic.Field(ge=0, le=150)


app = App()
items: dict[int, Item] = {1: Item(id=1, name="first", price=1.5)}
next_id = itertools.count(2)


@app.get("/")
def index(request):  # type: ignore[no-untyped-def]
    """The untyped index."""
    return {"hello": "world"}


@app.post("/items", status=201)
def create_item(item: ItemIn) -> Item:
    """Create an item.

    Its id is the next free one.
    """
    created = Item(id=next(next_id), name=item.name, price=item.price, color=item.color)
    items[created.id] = created
    return created


@app.get("/items")
def list_items(
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    tags: Annotated[list[str], Query("tag")] = [],  # noqa: B006 - never mutated
    color: Color | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> list[Item]:
    """List items."""
    found = sorted(items.values(), key=lambda item: item.id, reverse=order == "desc")
    if q:
        found = [item for item in found if q in item.name]
    if color is not None:
        found = [item for item in found if item.color is color]
    if tags:
        found = [item for item in found if item.name in tags]
    return found[:limit]


@app.get("/items/{id:int}")
def get_item(id: int) -> Item:
    item = items.get(id)
    if item is None:
        raise HTTPException(404, f"No item {id}")
    return item


@app.delete("/items/{id:int}")
def delete_item(id: Annotated[int, msgspec.Meta(ge=1)]) -> None:
    """Delete an item."""
    items.pop(id, None)


@app.get("/whoami")
def whoami(
    token: Annotated[str, Header("x-token", description="An API token")],
    session: Annotated[str | None, Cookie("session")] = None,
    legacy: Annotated[str | None, Query(deprecated=True)] = None,
) -> dict[str, str | None]:
    return {"token": token, "session": session}


@app.get("/things/{uid:uuid}/{price:float}/{name}")
def thing(uid: uuid.UUID, price: float, name: str) -> dict[str, str]:
    return {"uid": str(uid), "price": str(price), "name": name}


@app.get("/files/{*path}")
def file_path(request: Request) -> str:
    return request.params["path"]


@app.put("/points")
def put_point(point: Point) -> Point:
    return point


@app.post("/labels")
def add_label(label: Label) -> list[Label]:
    return [label]


@app.post("/people")
def add_person(person: Person) -> Person:
    """Create a person (a pydantic model)."""
    return person


@app.post("/upload")
async def upload(form: FormData, file: UploadedFile, more: list[UploadedFile] | None = None) -> dict[str, int]:
    return {"size": file.size(), "more": len(more or [])}


@app.route("/both", methods=["GET", "POST"])
def both(request):  # type: ignore[no-untyped-def]
    return "both"


@app.post("/created", status=201)
def created(request):  # type: ignore[no-untyped-def]
    return {"ok": True}


@app.websocket("/ws")
async def ws(socket: WebSocket) -> None:
    await socket.send("hi")


admin = Blueprint("/admin", name="admin")


@admin.get("/stats")
def stats() -> dict[str, int]:
    """Counts."""
    return {"items": len(items)}


@admin.get("/")
def index_admin(request):  # type: ignore[no-untyped-def]
    return "admin"


app.register_blueprint(admin)
app.openapi(title="Test API", version="2.5", description="For the tests.", servers=["http://127.0.0.1"])
