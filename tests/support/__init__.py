"""Helpers shared by the tests (and, for ports and WebSocket frames, the benchmarks).

One concept a module:

- `ports`: a free port on 127.0.0.1, waiting for a listener;
- `artifacts`: the test apps' compiled routers (`python tests/support/artifacts.py` builds them);
- `servers`: running servers — `cello.server.Server` in a thread, a `serve()` program in a
  subprocess, `cello serve` of a test app, and uvicorn or hypercorn serving it through cello.asgi;
- `variants`: the server variants a behaviour test runs on (parsers × routers, ASGI servers);
- `fakeapp`: a stand-in application with only the server's contract (resolve + endpoints);
- `http`: a raw HTTP client that reads responses by their framing;
- `websocket`: the WebSocket frame encoder and decoder, and a raw WebSocket client;
- `sse`: a Server-Sent Events parser written from the standard;
- `browser`: headless Chromium through Playwright.

pyproject's pytest `pythonpath` puts tests/ on sys.path, so tests import ``support.<module>``.
"""
