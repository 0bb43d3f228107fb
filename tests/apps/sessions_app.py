"""Sessions, CSRF, flashed messages and security headers, for tests/test_sessions.py and
tests/test_csrf.py. The store is the signed cookie, or the Redis at CELLO_TEST_SESSION_STORE."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from cello import App, Request, Response
from cello.sessions import csrf_token, get_flashed_messages

app = App()
app.enable_sessions(secret_key="sessions test key", store=os.environ.get("CELLO_TEST_SESSION_STORE", "cookie"))
app.enable_csrf()
app.enable_security_headers(csp="default-src 'self'")


@app.get("/")
def index(request: Request) -> dict[str, bool]:
    return {"ok": True}


@app.get("/session")
def show(request: Request) -> dict[str, Any]:
    return dict(request.session)


@app.put("/session")
def replace(request: Request) -> dict[str, Any]:
    # A JSON body: not a form post, so no CSRF token is asked.
    request.session.update(request.json())
    return dict(request.session)


@app.get("/set/{key}/{value}")
def set_value(request: Request) -> dict[str, Any]:
    request.session[request.params["key"]] = request.params["value"]
    return dict(request.session)


@app.get("/async-set/{value}")
async def async_set(request: Request) -> dict[str, Any]:
    await asyncio.sleep(0)
    request.session["async"] = request.params["value"]
    return dict(request.session)


@app.get("/threaded-set/{value}", threaded=True)
def threaded_set(request: Request) -> dict[str, Any]:
    request.session["threaded"] = request.params["value"]
    return dict(request.session)


@app.get("/cart/add/{item}")
def cart_add(request: Request) -> dict[str, Any]:
    # In-place mutation: not seen unless marked (as in Flask).
    request.session.setdefault("cart", []).append(request.params["item"])
    if request.query.get("mark"):
        request.session.modified = True
    return dict(request.session)


@app.get("/login/{user}")
def login(request: Request) -> dict[str, Any]:
    request.session.regenerate()
    request.session["user"] = request.params["user"]
    return dict(request.session)


@app.get("/logout")
def logout(request: Request) -> dict[str, Any]:
    request.session.clear()
    return dict(request.session)


@app.get("/csrf")
def token(request: Request) -> dict[str, str]:
    return {"token": csrf_token(request)}


@app.post("/form")
async def form(request: Request) -> dict[str, Any]:
    data = await request.form()
    return {"name": data.get("name"), "files": len(data.files)}


@app.delete("/thing")
def delete_thing(request: Request) -> dict[str, bool]:
    return {"deleted": True}


@app.post("/exempt", csrf=False)
def exempt(request: Request) -> dict[str, Any]:
    return {"name": request.form().get("name")}


@app.post("/stream", stream=True)
async def stream(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


@app.get("/flash/{category}/{message}")
def flash(request: Request) -> dict[str, bool]:
    request.flash(request.params["message"], request.params["category"])
    return {"flashed": True}


@app.get("/flashes")
def flashes(request: Request) -> dict[str, Any]:
    categories = request.query.get_all("category")
    first = get_flashed_messages(request, with_categories=True, category_filter=categories)
    # Flask's semantics: a second call in the same request sees the same messages.
    again = get_flashed_messages(request, category_filter=categories)
    return {"flashes": first, "again": again}


@app.get("/streamed/{value}")
def streamed(request: Request) -> Response:
    request.session["streamed"] = request.params["value"]

    async def body() -> Any:
        for i in range(3):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0)

    return Response.stream(body(), content_type="text/plain")


@app.get("/hooked")
def hooked(request: Request) -> dict[str, bool]:
    return {"hooked": True}


@app.after_request
def mark_hooked(request: Request, response: Response) -> None:
    # An after-hook's change is saved too: the session is saved after every other hook.
    if request.path == "/hooked":
        request.session["hooked"] = True


@app.get("/framed")
def framed(request: Request) -> Response:
    return Response.text("mine", headers={"X-Frame-Options": "SAMEORIGIN"})
