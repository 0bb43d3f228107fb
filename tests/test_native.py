"""The server's hot modules compiled with mypyc at install time, and the pure-Python fallback.

`make test` runs the whole suite twice: on the compiled runtime that `pip install -e .` built,
and with ``CELLO_PURE_PYTHON=1`` on the same sources interpreted. These tests check that each
mode is what it says, and that a stale compiled module is never run.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.artifacts import ROOT
from support.servers import running_server

from cello import App, Request, Response, _native

PROBE = (
    "import cello, cello._native as n, cello.server.http.protocol as p, cello.server.websocket.connection as w;"
    "print(n.mode()); print(p.__file__); print(w.__file__)"
)


def probe(env: dict[str, str], pythonpath: Path | None = None) -> tuple[str, str, str, str]:
    full = {k: v for k, v in os.environ.items() if k != _native.PURE_ENV}
    full.update(env)
    if pythonpath is not None:
        full["PYTHONPATH"] = str(pythonpath)
    # cwd: `python -c` puts the working directory first on sys.path, ahead of PYTHONPATH.
    cwd = pythonpath if pythonpath is not None else ROOT
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, cwd=cwd, timeout=60
    )
    assert result.returncode == 0, result.stderr
    mode, protocol, ws = result.stdout.strip().splitlines()
    return mode, protocol, ws, result.stderr


def compiled_installed() -> bool:
    return all(_native._extension(module) is not None for module in _native.COMPILED)


needs_compiled = pytest.mark.skipif(
    not compiled_installed(), reason="this install has no compiled runtime (CELLO_COMPILE=0 or no C compiler)"
)


PER_REQUEST = ("cello.pipeline", "cello.request", "cello.response", "cello.middleware.request_id", "cello.metrics")


def test_every_compiled_module_has_its_source() -> None:
    # The fallback needs the sources, and setup.py compiles exactly these files.
    for module in _native.COMPILED:
        assert _native._source(module).is_file(), module
        # The server, the two classes every request builds, the handler chains and what they
        # call for every request when enabled (request ids, metrics); the app, blueprints,
        # other middleware and the build-time code generator stay interpreted.
        assert module.startswith("cello.server.") or module in PER_REQUEST, module


def test_this_process_runs_the_mode_it_reports() -> None:
    import cello.server.http.protocol as protocol

    compiled = protocol.__file__ is not None and protocol.__file__.endswith(
        tuple(importlib.machinery.EXTENSION_SUFFIXES)
    )
    assert compiled == _native.is_compiled()
    if os.environ.get(_native.PURE_ENV):
        assert not compiled


@needs_compiled
def test_default_is_compiled() -> None:
    mode, protocol, ws, stderr = probe({})
    assert mode == "compiled (mypyc)"
    assert protocol.endswith(".so") and ws.endswith(".so")
    assert "stale" not in stderr


@needs_compiled
def test_pure_python_env_runs_the_sources() -> None:
    mode, protocol, ws, _ = probe({_native.PURE_ENV: "1"})
    assert mode == f"pure Python ({_native.PURE_ENV} is set)"
    assert protocol.endswith("protocol.py") and ws.endswith("connection.py")


@needs_compiled
def test_an_edited_source_is_never_shadowed_by_its_stale_build(tmp_path: Path) -> None:
    copy = tmp_path / "cello"
    shutil.copytree(ROOT / "cello", copy, ignore=shutil.ignore_patterns("__pycache__"))
    wire = copy / "server" / "http" / "wire.py"
    wire.write_text(wire.read_text("utf-8") + "\nEDITED = True\n", "utf-8")
    mode, protocol, ws, stderr = probe({}, pythonpath=tmp_path)
    assert mode == "pure Python (cello.server.http.wire changed since compiled)"
    # All or nothing: the group's modules call each other natively, so none of them runs compiled.
    assert protocol == str(copy / "server" / "http" / "protocol.py")
    assert ws == str(copy / "server" / "websocket" / "connection.py")
    assert "compiled runtime is stale" in stderr and "pip install -e ." in stderr


@needs_compiled
def test_a_build_without_its_record_is_not_trusted(tmp_path: Path) -> None:
    copy = tmp_path / "cello"
    shutil.copytree(ROOT / "cello", copy, ignore=shutil.ignore_patterns("__pycache__", _native.RECORD))
    mode, protocol, _, _ = probe({}, pythonpath=tmp_path)
    assert mode.startswith("pure Python (") and protocol.endswith("protocol.py")


@needs_compiled
def test_a_module_compiled_by_no_build_makes_the_others_run_as_sources(tmp_path: Path) -> None:
    # A module added to the group (or moved) since the last build: the extensions present are
    # an older build's, and running them beside the new module's source would mix versions.
    copy = tmp_path / "cello"
    shutil.copytree(ROOT / "cello", copy, ignore=shutil.ignore_patterns("__pycache__"))
    for extension in (copy / "server" / "http").glob("wire.*"):
        if extension.suffix != ".py":
            extension.unlink()
    mode, protocol, ws, stderr = probe({}, pythonpath=tmp_path)
    assert mode == "pure Python (cello.server.http.wire not compiled)"
    assert protocol == str(copy / "server" / "http" / "protocol.py")
    assert ws == str(copy / "server" / "websocket" / "connection.py")
    assert "compiled runtime is stale" in stderr


def test_sources_alone_run_pure_python(tmp_path: Path) -> None:
    # What a machine without a C compiler installs: the same package, no extensions.
    copy = tmp_path / "cello"
    shutil.copytree(ROOT / "cello", copy, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    mode, protocol, _, stderr = probe({}, pythonpath=tmp_path)
    assert mode == "pure Python" and protocol.endswith("protocol.py")
    assert "stale" not in stderr


# -- Request and Response stay open to Python subclasses --------------------------------------


class TimedResponse(Response):
    """A user's subclass: an extra attribute and an overridden method."""

    def __init__(self, body: str, took: float) -> None:
        super().__init__(body, 200, {"x-took": f"{took:g}"})
        self.took = took

    def content_type(self) -> str | None:
        return "text/x-timed"


class TaggedRequest(Request):
    def tag(self) -> str:
        return f"{self.method}:{self.path}"


def test_python_subclasses_of_request_and_response_work_on_both_runtimes() -> None:
    app = App()

    @app.get("/timed")
    def timed(request: Request) -> Response:
        return TimedResponse("done", 0.25)

    with running_server(app) as url:
        response = httpx.get(url + "/timed")
    assert response.status_code == 200
    assert response.text == "done"
    assert response.headers["x-took"] == "0.25"
    own = TimedResponse("x", 1.5)
    assert isinstance(own, Response) and own.took == 1.5 and own.content_type() == "text/x-timed"
    request = TaggedRequest("post", "/a%20b", body={"k": 1})
    assert request.tag() == "POST:/a b" and request.json() == {"k": 1}


def test_what_the_server_builds_are_requests_and_responses() -> None:
    app = App()
    seen: list[object] = []

    @app.get("/")
    def index(request: Request) -> dict[str, str]:
        seen.append(request)
        return {"ok": "yes"}

    @app.after_request
    def after(response: Response) -> None:
        seen.append(response)

    with running_server(app) as url:
        assert httpx.get(url + "/").json() == {"ok": "yes"}
    request, response = seen
    assert isinstance(request, Request) and isinstance(response, Response)
    assert repr(request) == "<Request GET />" and repr(response) == "<Response 200 application/json>"
