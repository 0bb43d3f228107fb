"""The Cello side of the HTTP benchmarks: the same endpoints as the peers' apps."""

from cello import App, Request

app = App()


@app.get("/")
def index(request: Request) -> dict[str, str]:
    return {"message": "Hello, world!"}


@app.get("/users/{id:int}")
def user(request: Request) -> dict[str, object]:
    return {"id": request.params["id"], "name": "user"}
