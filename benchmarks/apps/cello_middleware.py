"""Hello world with the middleware and operations features named in $CELLO_BENCH_MIDDLEWARE
(comma-separated): cors, compression, logging (to a file), metrics, request_id, tracing (the
OpenTelemetry API's default no-op provider, as without an SDK), rate_limit (memory store, a limit
never reached), json_logs."""

import os

from cello import App, Request

app = App()
enabled = set(filter(None, os.environ.get("CELLO_BENCH_MIDDLEWARE", "").split(",")))
if "cors" in enabled:
    app.enable_cors(origins=["https://bench.example"])
if "compression" in enabled:
    app.enable_compression(min_size=1024)
if "logging" in enabled or "json_logs" in enabled:
    app.enable_logging(
        file=os.environ.get("CELLO_BENCH_LOGFILE", "/tmp/cello-bench-access.log"),
        **({"format": "json"} if "json_logs" in enabled else {}),
    )
if "metrics" in enabled:
    app.enable_metrics()
if "request_id" in enabled:
    app.enable_request_id()
if "tracing" in enabled:
    app.enable_tracing()
if "rate_limit" in enabled:
    app.enable_rate_limit("1000000000/second")


@app.get("/")
def index(request: Request) -> dict[str, str]:
    return {"message": "Hello, world!"}
