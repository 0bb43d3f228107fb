"""Hello world with the middleware named in $CELLO_BENCH_MIDDLEWARE (comma-separated)."""

import logging
import os

from cello import App, Request

app = App()
enabled = set(filter(None, os.environ.get("CELLO_BENCH_MIDDLEWARE", "").split(",")))
if "cors" in enabled:
    app.enable_cors(origins=["https://bench.example"])
if "compression" in enabled:
    app.enable_compression(min_size=1024)
if "logging" in enabled:
    handler = logging.FileHandler(os.environ.get("CELLO_BENCH_LOGFILE", "/tmp/cello-bench-access.log"))
    access = logging.getLogger("cello.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    app.enable_logging()


@app.get("/")
def index(request: Request) -> dict[str, str]:
    return {"message": "Hello, world!"}
