"""Typed handlers: every binding rule of API.md's "Typed handlers", each handler echoing what
it received with the Python type of each value, so the tests see values and types."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
import threading
import uuid
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pydantic

from cello import App, Blueprint, Body, Cookie, FormData, Header, HTTPException, Query, Request, Response, UploadedFile

app = App(max_file_size=64 * 1024)


def typed(value: Any) -> dict[str, Any]:
    """A value as JSON with its Python type's name."""
    if isinstance(value, (uuid.UUID, datetime.datetime, datetime.date, decimal.Decimal)):
        shown: Any = str(value)
    elif isinstance(value, enum.Enum):
        shown = value.value
    else:
        shown = value
    return {"value": shown, "type": type(value).__name__}


# -- path parameters ---------------------------------------------------------------------------


@app.get("/items/{id:int}")
def item(id: int) -> dict[str, Any]:
    return {"id": id, "type": type(id).__name__}


@app.get("/scale/{x:float}")
def scale(x: float) -> dict[str, Any]:
    return {"x": x, "type": type(x).__name__}


@app.get("/things/{u:uuid}")
def thing(u: uuid.UUID) -> dict[str, Any]:
    return {"u": str(u), "type": type(u).__name__}


@app.get("/pages/{n}")
def page(n: int) -> dict[str, Any]:
    """A plain {n} with an int annotation: converted by the binder, 422 when not an int."""
    return {"n": n, "type": type(n).__name__}


@app.get("/small/{n:int}")
def small(n: Annotated[int, msgspec.Meta(ge=1, le=10)]) -> dict[str, Any]:
    """The router gives an int; the annotation's constraints still apply."""
    return {"n": n}


@app.get("/slugs/{slug}")
def slug(slug: Annotated[str, msgspec.Meta(pattern="^[a-z-]+$", max_length=20)]) -> dict[str, Any]:
    return {"slug": slug}


# -- query parameters ------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@app.get("/query")
def query(
    q: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ratio: float = 0.5,
    flag: bool = False,
    color: Color = Color.RED,
    order: Literal["asc", "desc"] = "asc",
    ref: uuid.UUID | None = None,
    since: datetime.datetime | None = None,
    note: str | None = None,
    ids: list[int] = [],  # noqa: B006 - never mutated: a list parameter takes every value
    page_size: Annotated[int, Query("page-size")] = 10,
) -> dict[str, Any]:
    return {
        "q": typed(q),
        "limit": typed(limit),
        "ratio": typed(ratio),
        "flag": typed(flag),
        "color": typed(color),
        "order": typed(order),
        "ref": typed(ref),
        "since": typed(since),
        "note": typed(note),
        "ids": [typed(i) for i in ids],
        "page_size": typed(page_size),
    }


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@app.get("/more")
def more(
    price: decimal.Decimal,
    day: datetime.date | None = None,
    level: Level = Level.LOW,
    size: Literal[1, 2, 3] = 1,
    tags: Annotated[list[str], Header("x-tag")] = [],  # noqa: B006 - never mutated
) -> dict[str, Any]:
    return {"price": typed(price), "day": typed(day), "level": typed(level), "size": typed(size), "tags": tags}


@app.get("/limit")
def limit(limit: Annotated[int, Query(ge=1, le=100)]) -> dict[str, Any]:
    return {"limit": limit}


# -- headers and cookies ---------------------------------------------------------------------


@app.get("/headers")
def headers(
    x_request_id: Annotated[str, Header()],
    token: Annotated[str | None, Header("x-token")] = None,
    x_count: Annotated[int, Header()] = 0,
) -> dict[str, Any]:
    return {"x_request_id": x_request_id, "token": token, "x_count": typed(x_count)}


@app.get("/cookies")
def cookies(
    session: Annotated[str, Cookie()],
    theme: Annotated[str, Cookie("ui-theme")] = "light",
    visits: Annotated[int, Cookie()] = 0,
) -> dict[str, Any]:
    return {"session": session, "theme": theme, "visits": typed(visits)}


@app.get("/mixed/{id:int}")
def mixed(
    id: int,
    limit: Annotated[int, Query(ge=1, le=100)],
    ratio: float,
    x_token: Annotated[str, Header()],
) -> dict[str, Any]:
    """Every problem is reported: two bad query parameters and a missing header give three."""
    return {"id": id, "limit": limit, "ratio": ratio, "x_token": x_token}


# -- bodies ----------------------------------------------------------------------------------


class Line(msgspec.Struct):
    sku: Annotated[str, msgspec.Meta(min_length=1)]
    quantity: Annotated[int, msgspec.Meta(ge=1)]


class Order(msgspec.Struct):
    customer: str
    items: list[Line]
    note: str | None = None


class OrderOut(msgspec.Struct, kw_only=True):
    customer: str
    lines: int
    units: int
    note: str | None = None


@app.post("/orders", status=201)
def create_order(order: Order) -> OrderOut:
    return OrderOut(
        customer=order.customer,
        lines=len(order.items),
        units=sum(line.quantity for line in order.items),
        note=order.note,
    )


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


@app.post("/points")
def point(point: Point) -> dict[str, Any]:
    return {"type": type(point).__name__, "x": point.x, "y": point.y}


class Person(TypedDict):
    name: str
    age: int


@app.post("/people")
def person(person: Person) -> dict[str, Any]:
    return {"type": type(person).__name__, "person": person}


class User(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=2)
    age: int = pydantic.Field(ge=0)


@app.post("/users")
def user(user: User) -> User:
    assert type(user) is User
    return User(name=user.name.upper(), age=user.age + 1)


@app.post("/user-list")
def user_list(users: list[User]) -> list[str]:
    return [type(user).__name__ + ":" + user.name for user in users]


@app.post("/lines")
def lines(lines: list[Line]) -> dict[str, Any]:
    return {"types": [type(line).__name__ for line in lines], "units": sum(line.quantity for line in lines)}


@app.post("/optional-body")
def optional_body(point: Point | None = None) -> dict[str, Any]:
    return {"point": None if point is None else dataclasses.asdict(point)}


@app.post("/numbers")
def numbers(numbers: Annotated[list[int], Body(max_length=3)]) -> dict[str, Any]:
    """Body() reads a type that would otherwise come from the query."""
    return {"sum": sum(numbers), "types": sorted({type(n).__name__ for n in numbers})}


@app.post("/scores")
def scores(scores: dict[str, int]) -> dict[str, Any]:
    return {"best": max(scores, key=scores.__getitem__) if scores else None}


# -- forms and files -------------------------------------------------------------------------


@app.post("/form")
def form(form: FormData) -> dict[str, Any]:
    return {"type": type(form).__name__, "fields": dict(form)}


@app.post("/upload")
async def upload(avatar: UploadedFile, name: str = "anonymous") -> dict[str, Any]:
    """A file part and a query parameter."""
    content = await avatar.read()
    return {"type": type(avatar).__name__, "filename": avatar.filename, "size": len(content), "name": name}


@app.post("/uploads")
def uploads(docs: list[UploadedFile]) -> dict[str, Any]:
    return {"filenames": [doc.filename for doc in docs], "sizes": [doc.size() for doc in docs]}


# -- the request, keyword-only parameters, sync / async / threaded ---------------------------


@app.get("/with-request/{id:int}")
def with_request(request: Request, id: int, q: str = "") -> dict[str, Any]:
    return {"path": request.path, "method": request.method, "id": id, "q": q}


@app.get("/keywords")
def keywords(a: int, *, b: int, c: str = "c") -> dict[str, Any]:
    return {"a": a, "b": b, "c": c}


@app.get("/async/{id:int}")
async def async_handler(id: int, delay: float = 0) -> dict[str, Any]:
    await asyncio.sleep(delay)
    return {"id": id, "async": True}


@app.get("/threaded/{id:int}", threaded=True)
def threaded_handler(id: int) -> dict[str, Any]:
    return {"id": id, "main_thread": threading.current_thread() is threading.main_thread()}


@app.get("/nothing")
def nothing() -> dict[str, Any]:
    return {"parameters": 0}


# -- results ---------------------------------------------------------------------------------


@app.delete("/items/{id:int}")
def delete_item(id: int) -> None:
    """``-> None``: 204 No Content."""


@app.put("/items/{id:int}", status=202)
def put_item(id: int) -> dict[str, Any]:
    return {"id": id, "accepted": True}


@app.get("/response/{id:int}")
def response(id: int) -> Response:
    return Response.text(f"item {id}", status=203)


@app.get("/typed-response/{id:int}")
def typed_response(id: int) -> dict[str, Any]:
    """A Response returned where the annotation says dict goes out as it is."""
    if id == 0:
        return Response.text("zero", status=200)  # type: ignore[return-value]
    return {"id": id}


@app.get("/tuple/{id:int}")
def returns_tuple(id: int) -> Any:
    return {"id": id}, 201


@app.get("/pair/{n:int}")
def pair(n: int) -> tuple[str, int]:
    """A tuple the annotation declares is the body, not (body, status)."""
    return ("n", n)


@app.get("/missing/{id:int}")
def missing(id: int) -> dict[str, Any]:
    raise HTTPException(404, f"No item {id}")


class Kind(enum.Enum):
    A = "a"


@dataclasses.dataclass
class Encoded:
    when: datetime.datetime
    ref: uuid.UUID
    kind: Kind
    tags: set[str]


@app.get("/encoded")
def encoded() -> Encoded:
    return Encoded(
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        Kind.A,
        {"x"},
    )


# -- a blueprint whose prefix has a parameter ------------------------------------------------

orgs = Blueprint("/orgs/{org:int}")


class Member(msgspec.Struct):
    name: str
    role: Literal["admin", "member"] = "member"


@orgs.get("/members/{member}")
def get_member(org: int, member: str, verbose: bool = False) -> dict[str, Any]:
    return {"org": typed(org), "member": member, "verbose": verbose}


@orgs.post("/members", status=201)
async def add_member(org: int, member: Member) -> dict[str, Any]:
    return {"org": org, "name": member.name, "role": member.role}


app.register_blueprint(orgs)


@app.get("/greeting")
def greeting(name: str = "world") -> str:
    return f"hello {name}"


@app.get("/raw", status=203)
def raw(size: int = 3) -> bytes:
    return b"x" * size


# -- classic handlers next to the typed ones -------------------------------------------------


@app.get("/legacy/{id:int}")
def legacy(request):  # the classic style: untyped on purpose
    return {"id": request.params["id"], "q": request.query.get("q")}


@app.post("/legacy-json")
def legacy_json(request: Request) -> dict[str, Any]:
    return {"echo": request.json()}
