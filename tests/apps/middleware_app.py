"""Built-in middleware: CORS (app-wide and per blueprint), compression, timing, access log."""

from __future__ import annotations

import asyncio
import logging

from cello import App, Blueprint, Request, Response

app = App()
app.enable_cors(origins=["https://good.example"], methods=["GET", "POST"], headers=["x-custom", "content-type"])

HITS = {"options": 0}


@app.get("/data")
def data(request: Request) -> dict[str, str]:
    return {"data": "x"}


@app.route("/preflighted", methods=["GET", "OPTIONS"])
def preflighted(request: Request) -> str:
    if request.method == "OPTIONS":
        HITS["options"] += 1
    return "handler reached"


@app.get("/hits")
def hits(request: Request) -> dict[str, int]:
    return HITS


cred = Blueprint("/cred", name="cred")
cred.enable_cors(credentials=True, expose_headers=["x-total"])


@cred.get("/me")
def cred_me(request: Request) -> Response:
    return Response.json({"me": 1}, headers={"x-total": "1"})


wild = Blueprint("/wild", name="wild")
wild.enable_cors()


@wild.post("/open")
def wild_open(request: Request) -> dict[str, int]:
    return {"open": 1}


zipped = Blueprint("/z", name="zipped")
zipped.enable_compression(min_size=100)
zipped.enable_timing()


@zipped.get("/big")
def big(request: Request) -> dict[str, str]:
    return {"text": "cello " * 500}


@zipped.get("/small")
def small(request: Request) -> dict[str, str]:
    return {"text": "tiny"}


@zipped.get("/png")
def png(request: Request) -> Response:
    return Response.binary(b"\x89PNG" + b"\x00" * 5000, "image/png")


@zipped.get("/encoded")
def encoded(request: Request) -> Response:
    return Response(b"x" * 500, headers={"content-encoding": "identity-ish"}, content_type="text/plain")


@zipped.get("/stream")
def stream(request: Request) -> Response:
    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(5):
            yield f"line {i} " * 50 + "\n"
            await asyncio.sleep(0)

    return Response.stream(chunks(), content_type="text/plain")


logged = Blueprint("/logged", name="logged")
logged.enable_logging()
logging.getLogger("cello.access").setLevel(logging.INFO)


@logged.get("/x")
def logged_x(request: Request) -> str:
    return "x"


for blueprint in (cred, wild, zipped, logged):
    app.register_blueprint(blueprint)
