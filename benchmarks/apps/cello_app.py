"""The Cello side of the HTTP benchmarks: the same endpoints as the peers' apps.

``app`` serves GET /, GET /users/{id}, POST /echo and GET /big; ``app100`` is the
100-route app (/r0/items/{id} ... /r99/items/{id}).
"""

import os

from bench_data import BIG, HELLO, ROUTE_COUNT

from cello import App, Request

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


app100 = App()


def _item_route(number: int) -> None:
    @app100.get(f"/r{number}/items/{{id:int}}", name=f"r{number}")
    def item(request: Request) -> dict[str, int]:
        return {"route": number, "id": request.params["id"]}


for _number in range(ROUTE_COUNT):
    _item_route(_number)
