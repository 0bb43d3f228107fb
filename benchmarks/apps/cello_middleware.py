"""Hello world with the middleware named in $CELLO_BENCH_MIDDLEWARE (comma-separated)."""

import os

from cello import App, Request

app = App()
enabled = set(filter(None, os.environ.get("CELLO_BENCH_MIDDLEWARE", "").split(",")))
if "cors" in enabled:
    app.enable_cors(origins=["https://bench.example"])
if "compression" in enabled:
    app.enable_compression(min_size=1024)
if "logging" in enabled:
    app.enable_logging(file=os.environ.get("CELLO_BENCH_LOGFILE", "/tmp/cello-bench-access.log"))


@app.get("/")
def index(request: Request) -> dict[str, str]:
    return {"message": "Hello, world!"}
