"""The app behind the HTTP behaviour tests (served by both parsers and both routers)."""

from __future__ import annotations

import asyncio
import threading

from cello import App, HTTPException, Request, Response

app = App()


class Teapot(Exception):
    pass


@app.get("/")
def index(request: Request) -> dict[str, str]:
    return {"hello": "world"}


@app.get("/users/me")
def me(request: Request) -> dict[str, str]:
    return {"user": "me"}


@app.get("/users/{id:int}")
def user(request: Request) -> dict[str, object]:
    return {"id": request.params["id"], "type": type(request.params["id"]).__name__}


@app.delete("/users/{name}")
def delete_user(request: Request) -> dict[str, object]:
    return {"deleted": request.params["name"]}


@app.get("/items/{name}")
def item(request: Request) -> dict[str, object]:
    return {"name": request.params["name"], "path": request.path, "raw_path": request.raw_path}


@app.get("/files/{*path}")
def files(request: Request) -> dict[str, object]:
    return {"path": request.params["path"]}


@app.get("/uuid/{u:uuid}")
def by_uuid(request: Request) -> dict[str, object]:
    return {"u": str(request.params["u"]), "type": type(request.params["u"]).__name__}


@app.get("/float/{f:float}")
def by_float(request: Request) -> dict[str, object]:
    return {"f": request.params["f"]}


@app.route("/multi", methods=["GET", "POST"])
def multi(request: Request) -> dict[str, str]:
    return {"method": request.method}


@app.post("/echo")
def echo(request: Request) -> dict[str, object]:
    return {"json": request.json()}


@app.put("/raw")
def raw(request: Request) -> bytes:
    return request.body()


@app.patch("/text")
def patch_text(request: Request) -> str:
    return request.text().upper()


@app.get("/kinds/text")
def kind_text(request: Request) -> str:
    return "plain text"


@app.get("/kinds/bytes")
def kind_bytes(request: Request) -> bytes:
    return b"\x00\x01\x02"


@app.get("/kinds/none")
def kind_none(request: Request) -> None:
    return None


@app.get("/kinds/list")
def kind_list(request: Request) -> list[int]:
    return [1, 2, 3]


@app.get("/kinds/tuple")
def kind_tuple(request: Request) -> tuple[object, ...]:
    return {"made": True}, 201, {"X-Made": "yes"}


@app.get("/kinds/empty")
def kind_empty(request: Request) -> Response:
    return Response(b"", status=200)


@app.get("/kinds/html")
def kind_html(request: Request) -> Response:
    return Response.html("<h1>hi</h1>")


@app.get("/kinds/redirect")
def kind_redirect(request: Request) -> Response:
    return Response.redirect("/")


@app.get("/kinds/cookie")
def kind_cookie(request: Request) -> Response:
    return Response.text("ok").set_cookie("session", "abc", httponly=True)


@app.get("/kinds/stream")
def kind_stream(request: Request) -> Response:
    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(3):
            yield f"chunk{i};"
            await asyncio.sleep(0)

    return Response.stream(chunks(), content_type="text/plain")


@app.get("/kinds/sync-stream")
def kind_sync_stream(request: Request) -> Response:
    return Response.stream(iter([b"a", b"b", b"c"]), content_type="text/plain")


@app.get("/query")
def query(request: Request) -> dict[str, object]:
    return {"query": dict(request.query), "tags": request.query.get_all("tag"), "q": request.get_query_param("q")}


@app.get("/request-info")
def request_info(request: Request) -> dict[str, object]:
    return {
        "method": request.method,
        "path": request.path,
        "url": request.url,
        "host": request.host,
        "scheme": request.scheme,
        "client_ip": request.client_ip(),
        "client_port_is_int": isinstance(request.client[1], int) if request.client else False,
        "user_agent": request.user_agent(),
        "header_x": request.get_header("x-custom"),
        "header_all": request.headers.get_all("x-multi"),
        "cookies": request.cookies,
        "content_type": request.content_type(),
    }


@app.post("/form")
async def form(request: Request) -> dict[str, object]:
    data = await request.form()
    files = await request.files()
    return {"fields": dict(data), "files": [(f.name, f.filename, f.size()) for f in files]}


@app.get("/async")
async def async_handler(request: Request) -> dict[str, str]:
    await asyncio.sleep(0.01)
    return {"async": "yes"}


@app.get("/threaded", threaded=True)
def threaded(request: Request) -> dict[str, object]:
    return {"main": threading.current_thread() is threading.main_thread()}


@app.get("/inline")
def inline(request: Request) -> dict[str, object]:
    return {"main": threading.current_thread() is threading.main_thread()}


@app.get("/boom")
def boom(request: Request) -> dict[str, str]:
    raise ValueError("secret detail")


@app.get("/async-boom")
async def async_boom(request: Request) -> dict[str, str]:
    raise RuntimeError("async secret")


@app.get("/http-error")
def http_error(request: Request) -> dict[str, str]:
    raise HTTPException(418, "I am a teapot")


@app.get("/teapot")
def teapot(request: Request) -> dict[str, str]:
    raise Teapot("short and stout")


@app.error_handler(Teapot)
def handle_teapot(request: Request, exc: Teapot) -> tuple[dict[str, object], int]:
    return {"error": f"teapot: {exc}", "status": 418}, 418


@app.get("/slash/")
def with_slash(request: Request) -> str:
    return "with slash"


@app.get("/noslash")
def without_slash(request: Request) -> str:
    return "without slash"


@app.route("/custom-options", methods=["GET", "OPTIONS"])
def custom_options(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response.text("custom options", status=200)
    return Response.text("get")


@app.head("/head-only")
def head_only(request: Request) -> Response:
    return Response(None, 200, headers={"X-Head": "yes"})


@app.post("/stream-body", stream=True)
async def stream_body(request: Request) -> dict[str, int]:
    total = 0
    chunks = 0
    async for chunk in request.stream():
        total += len(chunk)
        chunks += 1
    return {"bytes": total, "chunks_seen": int(chunks > 0)}
