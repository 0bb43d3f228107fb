"""Starlette with the same endpoints as apps/cello_app.py (run under uvicorn or granian)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def index(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, world!"})


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "name": "user"})


app = Starlette(routes=[Route("/", index), Route("/users/{id:int}", user)])
