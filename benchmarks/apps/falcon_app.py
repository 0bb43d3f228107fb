"""Falcon (ASGI) with the same endpoints as apps/cello_app.py."""

import falcon.asgi
from bench_data import BIG, HELLO, ROUTE_COUNT
from fortunes import TEMPLATE, environment, fortunes


class Index:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = HELLO


class User:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, id: int) -> None:
        resp.media = {"id": id, "name": "user"}


class Echo:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = await req.get_media()


class Big:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = BIG


class Fortunes:
    template = environment().get_template(TEMPLATE)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self.template.render(fortunes=fortunes())


app = falcon.asgi.App()
app.add_route("/fortunes", Fortunes())
app.add_route("/", Index())
app.add_route("/users/{id:int}", User())
app.add_route("/echo", Echo())
app.add_route("/big", Big())


class Item:
    def __init__(self, number: int) -> None:
        self.number = number

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, id: int) -> None:
        resp.media = {"route": self.number, "id": id}


app100 = falcon.asgi.App()
for _number in range(ROUTE_COUNT):
    app100.add_route(f"/r{_number}/items/{{id:int}}", Item(_number))
