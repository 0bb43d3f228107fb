"""An app whose errors are served in debug mode and with a custom 404/500 handler."""

from cello import App, Request

app = App(debug=True)


@app.get("/boom")
def boom(request: Request) -> dict[str, str]:
    raise ValueError("visible in debug")


custom = App()


@custom.get("/boom")
def custom_boom(request: Request) -> dict[str, str]:
    raise KeyError("hidden")


@custom.error_handler(404)
def not_found(request: Request, exc: Exception) -> tuple[dict[str, object], int]:
    return {"error": "custom not found", "path": request.path, "status": 404}, 404


@custom.error_handler(500)
def server_error(request: Request, exc: Exception) -> tuple[dict[str, object], int]:
    return {"error": "custom failure", "kind": type(exc).__name__, "status": 500}, 500
