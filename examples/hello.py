"""A small Cello app: path params (typed and not), query strings, JSON bodies, errors.

Run it with `cello serve examples/hello.py` (or `python examples/hello.py --port 8000`),
or compile its routes first: `cello build examples/hello.py && cello serve`.
"""

from cello import App, HTTPException, Request, Response

app = App()

USERS = {1: {"id": 1, "name": "Ada"}, 2: {"id": 2, "name": "Grace"}}


class OutOfStock(Exception):
    pass


@app.get("/")
def index(request: Request) -> dict[str, str]:
    return {"message": "Hello from Cello"}


@app.get("/hello/{name}")
def hello(request: Request) -> str:
    greeting = request.query.get("greeting", "Hello")
    return f"{greeting}, {request.params['name']}!"


@app.get("/users/{id:int}")
def get_user(request: Request) -> dict[str, object]:
    user = USERS.get(request.params["id"])
    if user is None:
        raise HTTPException(404, f"No user {request.params['id']}")
    return user


@app.post("/users")
def create_user(request: Request) -> Response:
    data = request.json()
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise HTTPException(400, "expected a JSON object with a 'name'")
    user = {"id": max(USERS) + 1, "name": data["name"]}
    USERS[user["id"]] = user
    return Response.created(user, location=f"/users/{user['id']}")


@app.get("/search")
async def search(request: Request) -> dict[str, object]:
    term = request.query.get("q", "")
    tags = request.query.get_all("tag")
    hits = [u for u in USERS.values() if term.lower() in str(u["name"]).lower()]
    return {"q": term, "tags": tags, "results": hits}


@app.get("/stock/{item}")
def stock(request: Request) -> dict[str, str]:
    raise OutOfStock(request.params["item"])


@app.error_handler(OutOfStock)
def out_of_stock(request: Request, exc: OutOfStock) -> tuple[dict[str, object], int]:
    return {"error": f"{exc} is out of stock", "status": 409}, 409


if __name__ == "__main__":
    app.run()
