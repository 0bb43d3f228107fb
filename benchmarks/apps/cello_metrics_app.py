"""cello_app with Prometheus metrics enabled, for benchmarks/instructions.py: what
``app.enable_metrics()`` costs each request."""

from cello_app import app

app.enable_metrics()
