"""A JSON REST API: nested blueprints, CRUD on an in-memory store, an API-key guard, CORS.

Run it with `cello serve examples/rest.py`, then:

    curl localhost:8000/api/v1/users
    curl localhost:8000/api/v1/users/1
    curl -X POST localhost:8000/api/v1/users -H 'X-API-Key: dev-key' \\
         -H 'Content-Type: application/json' -d '{"name": "Linus", "email": "linus@example.org"}'
    curl -X PATCH localhost:8000/api/v1/users/3 -H 'X-API-Key: dev-key' -d '{"name": "Linus T."}'
    curl -X DELETE localhost:8000/api/v1/users/3 -H 'X-API-Key: dev-key'

Reads are open; writes (POST, PUT, PATCH, DELETE) need `X-API-Key` (`$API_KEY`, default
`dev-key`): no key gets 401, a wrong one 403. Browsers on the origins in `$CORS_ORIGINS`
(comma-separated; default http://localhost:3000 and http://127.0.0.1:3000) may call the API.

Routes: `/api/v1/users` (GET list, POST create) and `/api/v1/users/{id:int}` (GET, PUT,
PATCH, DELETE), made of three nested blueprints: `/api` > `/v1` > `/users`.
"""

from __future__ import annotations

import hmac
import itertools
import os
import threading
from typing import Any

from cello import App, Blueprint, HTTPException, Request, Response

API_KEY = os.environ.get("API_KEY", "dev-key")
CORS_ORIGINS = [
    o.strip()
    for o in os.environ.get("CORS_ORIGINS", "http://localhost:3000,http://127.0.0.1:3000").split(",")
    if o.strip()
]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# -- the store --------------------------------------------------------------------------------


class NotFound(Exception):
    """A missing record: the API's error handler turns it into a JSON 404."""


class Invalid(Exception):
    """A request body that does not describe a valid user: a JSON 422."""


class UserStore:
    """Users in memory. Thread-safe, so `threaded=True` routes could share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._users: dict[int, dict[str, Any]] = {}

    def list(self, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        with self._lock:
            users = sorted(self._users.values(), key=lambda u: u["id"])
        return len(users), users[offset : offset + limit]

    def get(self, user_id: int) -> dict[str, Any]:
        with self._lock:
            user = self._users.get(user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id}")
        return dict(user)

    def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            user = {"id": next(self._ids), **fields}
            self._users[user["id"]] = user
            return dict(user)

    def update(self, user_id: int, fields: dict[str, Any], replace: bool) -> dict[str, Any]:
        with self._lock:
            if user_id not in self._users:
                raise NotFound(f"no user with id {user_id}")
            user = {"id": user_id, **fields} if replace else {**self._users[user_id], **fields}
            self._users[user_id] = user
            return dict(user)

    def delete(self, user_id: int) -> None:
        with self._lock:
            if self._users.pop(user_id, None) is None:
                raise NotFound(f"no user with id {user_id}")


store = UserStore()
store.create({"name": "Ada Lovelace", "email": "ada@example.org"})
store.create({"name": "Grace Hopper", "email": "grace@example.org"})

FIELDS = {"name": str, "email": str}


def user_fields(request: Request, partial: bool) -> dict[str, Any]:
    """The body's user fields, validated: all of them unless ``partial`` (PATCH)."""
    data = request.json()  # an empty or malformed body is a 400 already
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    missing = [] if partial else [name for name in FIELDS if name not in data]
    if missing:
        raise Invalid(f"missing field(s): {', '.join(missing)}")
    for name, value in data.items():
        if not isinstance(value, FIELDS[name]) or not value.strip():
            raise Invalid(f"{name} must be a non-empty string")
    if "email" in data and "@" not in data["email"]:
        raise Invalid("email must contain @")
    return {name: value.strip() for name, value in data.items()}


# -- guard ------------------------------------------------------------------------------------


def api_key_for_writes(request: Request) -> bool:
    """Reads are public; writes need the API key (401 without one, 403 with a wrong one)."""
    if request.method not in WRITE_METHODS:
        return True
    key = request.headers.get("x-api-key")
    if key is None:
        raise HTTPException(401, "X-API-Key header required for write requests", headers={"www-authenticate": "ApiKey"})
    return hmac.compare_digest(key.encode(), API_KEY.encode())  # False -> 403


# -- routes: /api > /v1 > /users ----------------------------------------------------------------

users = Blueprint("/users", name="users", guards=[api_key_for_writes])


def page_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer") from None
    if not 0 <= value <= maximum:
        raise HTTPException(400, f"{name} must be between 0 and {maximum}")
    return value


@users.get("")
def list_users(request: Request) -> dict[str, Any]:
    limit = page_param(request, "limit", 50, 500)
    offset = page_param(request, "offset", 0, 1_000_000)
    total, items = store.list(limit, offset)
    return {"users": items, "total": total, "limit": limit, "offset": offset}


@users.post("")
def create_user(request: Request) -> Response:
    user = store.create(user_fields(request, partial=False))
    return Response.created(user, location=f"/api/v1/users/{user['id']}")


@users.get("/{id:int}")
def get_user(request: Request) -> dict[str, Any]:
    return store.get(request.params["id"])


@users.put("/{id:int}")
def replace_user(request: Request) -> dict[str, Any]:
    return store.update(request.params["id"], user_fields(request, partial=False), replace=True)


@users.patch("/{id:int}")
def update_user(request: Request) -> dict[str, Any]:
    return store.update(request.params["id"], user_fields(request, partial=True), replace=False)


@users.delete("/{id:int}")
def delete_user(request: Request) -> None:
    store.delete(request.params["id"])  # None -> 204 No Content


v1 = Blueprint("/v1", name="v1")
v1.register_blueprint(users)


@v1.get("")
def v1_index(request: Request) -> dict[str, Any]:
    return {"version": 1, "resources": {"users": "/api/v1/users"}}


@v1.error_handler(NotFound)
def not_found(request: Request, exc: NotFound) -> tuple[dict[str, Any], int]:
    return {"error": str(exc), "status": 404}, 404


@v1.error_handler(Invalid)
def invalid(request: Request, exc: Invalid) -> tuple[dict[str, Any], int]:
    return {"error": str(exc), "status": 422}, 422


api = Blueprint("/api", name="api")
api.register_blueprint(v1)

app = App()
app.register_blueprint(api)
app.enable_cors(
    origins=CORS_ORIGINS,
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    headers=["content-type", "x-api-key"],
    max_age=600,
    expose_headers=["location"],
)


@app.get("/")
def index(request: Request) -> dict[str, Any]:
    return {"name": "Cello REST example", "api": "/api/v1", "users": "/api/v1/users"}


if __name__ == "__main__":
    app.run()
