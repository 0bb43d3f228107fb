"""cello.testing: in-process clients for users' tests (and the ASGI adapter under them)."""

from __future__ import annotations

from cello import App, HTTPException, Request
from cello.testing import AsyncTestClient, TestClient


def make_app() -> tuple[App, list[str]]:
    app = App()
    events: list[str] = []

    @app.on_startup
    def started() -> None:
        events.append("startup")

    @app.on_shutdown
    async def stopped() -> None:
        events.append("shutdown")

    @app.get("/items/{id:int}")
    def item(request: Request) -> dict[str, object]:
        return {"id": request.params["id"], "q": request.query.get("q")}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        return {"json": request.json()}

    @app.get("/fail")
    def fail(request: Request) -> None:
        raise HTTPException(409, "conflict")

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, object]:
        files = await request.files()
        return {"names": [f.filename for f in files], "field": (await request.form()).get("k")}

    return app, events


def test_sync_client_runs_lifespan_and_requests() -> None:
    app, events = make_app()
    with TestClient(app) as client:
        assert events == ["startup"]
        assert client.get("/items/3?q=x").json() == {"id": 3, "q": "x"}
        assert client.post("/echo", json={"a": 1}).json() == {"json": {"a": 1}}
        response = client.get("/fail")
        assert (response.status_code, response.json()) == (409, {"error": "conflict", "status": 409})
        response = client.delete("/items/3")
        assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD, OPTIONS")
        upload = client.post("/upload", data={"k": "v"}, files={"f": ("a.txt", b"hi", "text/plain")})
        assert upload.json() == {"names": ["a.txt"], "field": "v"}
    assert events == ["startup", "shutdown"]


async def test_async_client() -> None:
    app, events = make_app()
    async with AsyncTestClient(app) as client:
        assert (await client.get("/items/5")).json() == {"id": 5, "q": None}
        head = await client.head("/items/5")
        assert (head.status_code, head.content) == (200, b"")
    assert events == ["startup", "shutdown"]
