"""cello_app with signed-cookie sessions enabled, for benchmarks/instructions.py: what sessions
cost a route that never touches them (``GET /``)."""

from cello_app import app

app.enable_sessions(secret_key="benchmark secret")
