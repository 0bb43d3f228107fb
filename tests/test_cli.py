"""The `cello` command and `app.run()`: build, serve, routes, flags, fallbacks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.artifacts import ROOT
from support.ports import free_port

from cello import _native

HELLO = ROOT / "examples" / "hello.py"


def cello(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cello", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


class Served:
    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.port = free_port()
        self.log = cwd / f"serve-{self.port}.log"
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [*argv, "--port", str(self.port)], cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
            )

    def wait(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exited {self.process.returncode}: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("did not start")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(15)
        return self.process.returncode

    def __enter__(self) -> Served:
        self.wait()
        return self

    def __exit__(self, *args: object) -> None:
        self.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/hello.py, built once."""
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(HELLO, folder / "hello.py")
    result = cello("build", "hello.py", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[4/4] compiled" in result.stdout
    return folder


def test_build_writes_manifest_and_readable_module(project: Path) -> None:
    manifest = json.loads((project / "build" / "manifest.json").read_text())
    assert manifest["app"] == "hello.py"
    assert manifest["compiled"] is True
    assert manifest["route_count"] == 6
    assert ["GET", "/users/{id:int}"] in manifest["routes"]
    assert manifest["artifact"].endswith(".so")
    assert {"collect", "plan", "render", "compile"} <= set(manifest["timings"])
    source = (project / "build" / manifest["generated"]).read_text()
    assert f'FINGERPRINT: Final = "{manifest["fingerprint"]}"' in source or manifest["fingerprint"] in source
    assert "/users/{id:int}" in source  # terminals name their patterns


def test_serve_uses_compiled_module_without_argument(project: Path) -> None:
    with Served([sys.executable, "-m", "cello", "serve"], project) as served:
        assert httpx.get(f"http://127.0.0.1:{served.port}/users/1").json() == {"id": 1, "name": "Ada"}
        assert "router: compiled" in served.output()
    assert served.stop() == 0


def test_changed_routes_fall_back_and_require_compiled_refuses(project: Path, tmp_path: Path) -> None:
    changed = tmp_path / "hello.py"
    changed.write_text(
        (project / "hello.py").read_text() + '\n\n@app.get("/added")\ndef added(request):\n    return "new"\n'
    )
    shutil.copytree(project / "build", tmp_path / "build", ignore=shutil.ignore_patterns(".mypyc-build"))
    with Served([sys.executable, "-m", "cello", "serve", "hello.py"], tmp_path) as served:
        assert httpx.get(f"http://127.0.0.1:{served.port}/added").text == "new"
        output = served.output()
        assert "routes changed since the build" in output
        assert "router: interpreted" in output
    refused = cello("serve", "hello.py", "--require-compiled", "--port", str(free_port()), cwd=tmp_path, timeout=30)
    assert refused.returncode != 0
    assert "routes changed since the build" in refused.stderr


def test_no_compile_and_py_fallback(tmp_path: Path) -> None:
    shutil.copy(HELLO, tmp_path / "hello.py")
    result = cello("build", "hello.py", "--no-compile", cwd=tmp_path)
    assert result.returncode == 0
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert manifest["compiled"] is False and manifest["artifact"].endswith(".py")
    with Served([sys.executable, "-m", "cello", "serve"], tmp_path) as served:
        assert httpx.get(f"http://127.0.0.1:{served.port}/").status_code == 200
        assert "router: compiled (_dispatch_" in served.output()


def test_missing_compiler_explains_in_one_line(tmp_path: Path) -> None:
    shutil.copy(HELLO, tmp_path / "hello.py")
    env = {**os.environ, "CC": "/nonexistent/cc"}
    result = subprocess.run(
        [sys.executable, "-m", "cello", "build", "hello.py"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0
    assert "not compiled: no C compiler" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert json.loads((tmp_path / "build" / "manifest.json").read_text())["compiled"] is False


def test_routes_command(project: Path) -> None:
    result = cello("routes", "hello.py", "--tree", cwd=project)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["METHOD", "PATTERN", "HANDLER", "BLUEPRINT"]
    assert any(line.split()[:3] == ["GET", "/users/{id:int}", "hello.get_user"] for line in lines)
    assert "users" in result.stdout.split("\n\n", 1)[1]  # the tree


def test_routes_shows_blueprints() -> None:
    result = cello("routes", "tests/apps/seed_blueprints.py", cwd=ROOT)
    assert any(
        line.split() == ["GET", "/api/v1/users/{id}", "seed_blueprints.get_user", "/users"]
        for line in result.stdout.splitlines()
    )


def test_version_and_help() -> None:
    # The version line says how the server modules run (see test_native.py for both modes).
    assert cello("--version", cwd=ROOT).stdout.strip() == f"cello 0.3.0 (runtime: {_native.mode()})"
    for command in ("build", "serve", "routes"):
        result = cello(command, "--help", cwd=ROOT)
        assert result.returncode == 0 and "usage: cello " + command in result.stdout


def test_bad_app_reference() -> None:
    result = cello("serve", "no_such_module:app", cwd=ROOT)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: no module named 'no_such_module' (run from the app's directory or pass a file path)"
    )


def test_port_taken_is_one_clear_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = cello("serve", "examples/hello.py", "--port", str(port), cwd=ROOT, timeout=30)
    assert result.returncode != 0
    assert f"error: cannot bind 127.0.0.1:{port}: address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_app_run_flags_override_code_and_use_build(project: Path) -> None:
    script = project / "runner.py"
    script.write_text("from hello import app\napp.run(port=1)\n")  # --port on the command line wins
    with Served([sys.executable, "runner.py", "--debug"], project) as served:
        assert httpx.get(f"http://127.0.0.1:{served.port}/hello/x").text == "Hello, x!"
        output = served.output()
        assert f"Cello serving on http://127.0.0.1:{served.port}" in output
        assert "router: compiled" in output  # app.run() found the matching build in ./build


def test_no_logs_still_prints_start_line(project: Path) -> None:
    with Served([sys.executable, "-m", "cello", "serve", "hello.py", "--no-logs"], project) as served:
        httpx.get(f"http://127.0.0.1:{served.port}/")
        time.sleep(0.2)
        output = served.output()
    assert f"Cello serving on http://127.0.0.1:{served.port}" in output
    assert "INFO" not in output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "99999"], "argument --port: must be an integer from 0 to 65535, got '99999'"),
        (["--port", "-1"], "argument --port: must be an integer from 0 to 65535, got '-1'"),
        (["--workers", "0"], "argument --workers: must be an integer of at least 1, got '0'"),
        (["--keep-alive-timeout", "0"], "argument --keep-alive-timeout: must be a number greater than 0, got '0'"),
        (["--handler-timeout", "nan"], "argument --handler-timeout: must be a number greater than 0, got 'nan'"),
        (["--worker-timeout", "-5"], "argument --worker-timeout: must be a number greater than 0, got '-5'"),
        (["--max-connections", "0"], "argument --max-connections: must be an integer of at least 1, got '0'"),
        (["--backlog", "many"], "argument --backlog: must be an integer of at least 1, got 'many'"),
    ],
)
def test_numeric_flags_are_validated(flags: list[str], message: str) -> None:
    # Refused by the argument parser, before the app is imported or a port is bound.
    result = cello("serve", "examples/hello.py", *flags, cwd=ROOT, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"cello serve: error: {message}"


def test_app_run_validates_its_arguments_and_flags(tmp_path: Path) -> None:
    from cello import App
    from cello.runner import RunOptions

    app = App()
    with pytest.raises(ValueError, match=r"^port must be an integer from 0 to 65535, got 99999$"):
        app.run(port=99999, argv=[])
    with pytest.raises(ValueError, match=r"^workers must be an integer of at least 1, got 0$"):
        app.run(workers=0, argv=[])
    with pytest.raises(ValueError, match=r"^port must be an integer from 0 to 65535, got 8000.5$"):
        app.run(port=8000.5, argv=[])  # type: ignore[arg-type]
    # A rate of 0 means "no minimum", unlike the other counts.
    assert RunOptions(min_body_rate=0).min_body_rate == 0
    assert RunOptions().with_argv(["--min-body-rate", "0"]).min_body_rate == 0
    with pytest.raises(ValueError, match=r"^min_body_rate must be an integer of at least 0, got -1$"):
        RunOptions(min_body_rate=-1)
    script = tmp_path / "app.py"
    script.write_text("from cello import App\napp = App()\napp.run()\n")
    result = subprocess.run(
        [sys.executable, str(script), "--port", "70000"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert (
        result.stderr.splitlines()[-1]
        == "app.py: error: argument --port: must be an integer from 0 to 65535, got '70000'"
    )


def test_wrong_app_name_lists_the_apps_of_the_module(tmp_path: Path) -> None:
    (tmp_path / "service.py").write_text("from cello import App\nsettings = {}\napi = App()\nadmin = App()\n")
    missing = cello("serve", "service.py", cwd=tmp_path, timeout=30)
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "error: module 'service' has no attribute 'app'; its Apps are named 'api', 'admin': "
        "use `cello serve service.py:api`",
    )
    wrong = cello("routes", "service:settings", cwd=tmp_path, timeout=30)
    assert wrong.stderr.strip() == (
        "error: service:settings is of type dict, not a cello.App; its Apps are named 'api', 'admin': "
        "use `cello routes service:api`"
    )
    (tmp_path / "plain.py").write_text("x = 1\n")
    none = cello("build", "plain", cwd=tmp_path, timeout=30)
    assert (
        none.stderr.strip()
        == "error: module 'plain' has no attribute 'app'; it defines no cello.App (create one with `app = App()`)"
    )


def test_build_of_another_app_says_which_command_to_run(project: Path, tmp_path: Path) -> None:
    (tmp_path / "other.py").write_text(
        "from cello import App\napi = App()\n\n@api.get('/')\ndef index(request):\n    return 'other'\n"
    )
    shutil.copytree(project / "build", tmp_path / "out", ignore=shutil.ignore_patterns(".mypyc-build"))
    refused = cello(
        "serve", "other:api", "--out", "out", "--require-compiled", "--port", str(free_port()), cwd=tmp_path, timeout=30
    )
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        == "error: the build in out/ is for hello.py, not other:api; run `cello build other:api --out out` again"
    )
    check = cello("build", "other.py:api", "--out", "out", "--check", cwd=tmp_path, timeout=30)
    assert check.stderr.strip() == (
        "out of date: the build in out/ is for hello.py, not other.py:api; run `cello build other.py:api --out out` again"
    )


SLOW_APP = """
import asyncio, time
from cello import App

app = App()

@app.get("/slow/{n}")
def slow(request):
    time.sleep(0.25)
    return "slow"

@app.get("/quick")
def quick(request):
    return "quick"

@app.get("/threaded", threaded=True)
def threaded(request):
    time.sleep(0.25)
    return "threaded"

@app.get("/async")
async def asynchronous(request):
    await asyncio.sleep(0.25)
    return "async"
"""


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_debug_warns_once_per_route_about_a_blocking_sync_handler(tmp_path: Path, debug: bool) -> None:
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    argv = [sys.executable, "-m", "cello", "serve", "slowapp.py", *(["--debug"] if debug else [])]
    with Served(argv, tmp_path) as served:
        url = f"http://127.0.0.1:{served.port}"
        for path in ("/slow/1", "/slow/2", "/slow/3", "/quick", "/threaded", "/async"):
            assert httpx.get(url + path, timeout=10).status_code == 200
        time.sleep(0.2)
        warnings = [line for line in served.output().splitlines() if "blocked the event loop" in line]
    if not debug:
        assert warnings == []
        return
    assert len(warnings) == 1, warnings
    assert "GET /slow/{n}: the sync handler slow blocked the event loop for" in warnings[0]
    assert "declare the route with threaded=True or make it `async def`" in warnings[0]


def test_blocking_handler_check_costs_nothing_outside_debug_mode() -> None:
    from cello import App
    from cello.request import Request

    app = App()

    @app.get("/")
    def index(request: Request) -> str:
        return "ok"

    assert app.resolve(Request("GET", "/")).handler is index
    app.debug = True
    assert app.resolve(Request("GET", "/")).handler is not index


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_installs_no_test_tools_and_make_test_still_does(tmp_path: Path) -> None:
    # A venv whose python and cello only record how they were called: the Makefile's recipes
    # run for real, in order, without installing anything.
    venv = tmp_path / "venv"
    calls = tmp_path / "calls.log"
    tools = tmp_path / "tools"
    for folder, name in (
        (venv / "bin", "python"),
        (venv / "bin", "cello"),
        (venv / "bin", "ruff"),
        (tools, "chromium"),
    ):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n')
        (folder / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MAKEFLAGS", None)

    def make(target: str) -> list[str]:
        calls.write_text("")
        result = subprocess.run(
            ["make", target, f"VENV={venv}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return calls.read_text().splitlines()

    installs = [call for call in make("demo") if "pip install" in call]
    assert any("-e .[build]" in call for call in installs), installs
    assert not any("[test]" in call for call in installs), installs
    assert installs[-1] == "python -m pip install --quiet --no-deps --no-build-isolation -e ."  # compiled runtime
    after_demo = make("test")
    assert "python -m pip install --quiet -e .[test]" in after_demo
    # The test extras reinstall the package pure, so the compiled runtime is built again after.
    native = after_demo.index("python -m pip install --quiet --no-deps --no-build-isolation -e .")
    assert native > after_demo.index("python -m pip install --quiet -e .[test]")
    assert any(call.startswith("python -m pytest") for call in after_demo[native:])
    assert not any("pip install" in call for call in make("demo"))  # nothing to redo
