"""The app behind the template and url_for tests: Jinja2 pages, url_for in templates and
handlers, blueprint names, converters, context processors and template errors.

Its templates are in tests/apps/templates (relative to this module, not to the working
directory); ``PAGES_TEMPLATES`` points it at another directory (the reload test's).
"""

from __future__ import annotations

import os
from typing import Any

from cello import App, Blueprint, Request, Response

app = App(templates=os.environ.get("PAGES_TEMPLATES", "templates"))


@app.context_processor
def site(request: Request) -> dict[str, Any]:
    return {"site_name": "Cello site", "user_id": 42}


@app.get("/")
def index(request: Request) -> Response:
    return Response.template("page.html", title=request.query.get("title", "Home"))


@app.get("/users/{id:int}")
def user(request: Request) -> Response:
    return Response.template("page.html", title=f"user {request.params['id']}", status=203)


@app.get("/files/{*path}")
def files(request: Request) -> dict[str, Any]:
    return {"path": request.params["path"]}


@app.get("/words/{word}")
def word(request: Request) -> dict[str, Any]:
    return {"word": request.params["word"]}


@app.get("/prices/{value:float}/{id:uuid}", name="price")
def price_of(request: Request) -> dict[str, Any]:
    return {"value": request.params["value"], "id": str(request.params["id"])}


@app.get("/url/{name}")
def url(request: Request) -> dict[str, Any]:
    """What app.url_for builds in a handler for the route ``name`` and the query's params."""
    params: dict[str, Any] = dict(request.query.items())
    if "id" in params and request.params["name"] in ("user", "shop.item"):
        params["id"] = int(params["id"])
    return {"url": app.url_for(request.params["name"], **params)}


@app.get("/external")
def external(request: Request) -> dict[str, Any]:
    return {"url": app.url_for("user", id=1, _base=request, _anchor="top")}


@app.get("/missing")
def missing(request: Request) -> Response:
    return Response.template("no-such-page.html")


@app.get("/broken")
def broken(request: Request) -> Response:
    return Response.template("broken.html")


@app.get("/text-page")
def text_page(request: Request) -> Response:
    response = Response.template("page.html", title="with a cookie")
    response.set_cookie("seen", "yes")
    return response


@app.after_request
def measure(request: Request, response: Response) -> None:
    # After-hooks see a template already rendered.
    response.set_header("x-body-length", str(len(response.body_bytes)))


@app.error_handler(404)
def not_found(request: Request, exc: Exception) -> Response:
    return Response.template("404.html", status=404)


shop = Blueprint("/shop", name="shop")


@shop.get("/items/{id:int}")
def item(request: Request) -> Response:
    return Response.template("shop/item.html", item=request.params["id"])


@shop.get("/")
def index_of_shop(request: Request) -> dict[str, Any]:
    return {"item": app.url_for("shop.item", id=1)}


app.register_blueprint(shop)
