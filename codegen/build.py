"""`cello build`: collect -> plan -> render -> compile -> artifact + manifest.

Build time only. Each step prints one line with its duration; compiling prints elapsed time
while mypyc runs. Without a C compiler or mypy the build says why in one line and leaves the
generated pure-Python module as the artifact, which `cello serve` loads just the same.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cello.build_artifacts import MANIFEST, Manifest
from cello.routing import build_plan
from cello.routing.diagnostics import shadowed

from .compile import CompileError, check_toolchain, compile_module
from .generate import generate_source, module_name

if TYPE_CHECKING:
    from cello.app import App

T = TypeVar("T")

# The API description of the build's routes, beside the manifest.
OPENAPI = "openapi.json"


def _say(message: str) -> None:
    print(message, flush=True)


def _with_progress(label: str, work: Callable[[], T], interval: float = 2.0) -> T:
    """Run ``work`` in a thread, printing elapsed seconds so a long compile shows life."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    started = time.perf_counter()
    thread.start()
    interactive = sys.stdout.isatty()
    while True:
        thread.join(interval)
        if not thread.is_alive():
            break
        elapsed = time.perf_counter() - started
        if interactive:
            print(f"\r      {label}... {elapsed:.0f}s", end="", flush=True)
        else:
            _say(f"      {label}... {elapsed:.0f}s")
    if interactive:
        print("\r", end="")
    error = box.get("error")
    if isinstance(error, BaseException):
        raise error
    return box["value"]  # type: ignore[return-value]


def _remove_stale(out_dir: Path, keep: str) -> None:
    """Drop artifacts of earlier builds so a directory never offers two candidates."""
    for path in out_dir.glob("_dispatch_*"):
        if path.is_file() and not path.name.startswith(keep):
            path.unlink()


def run_build(app: App, app_ref: str, out_dir: Path, compile: bool = True) -> int:
    """Build ``app``'s dispatch module into ``out_dir``; returns the exit code."""
    timings: dict[str, float] = {}
    out_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    routes = app.routes()
    fingerprint = app.fingerprint()
    timings["collect"] = time.perf_counter() - started
    _say(f"[1/4] collected {len(routes)} routes from {app_ref} ({timings['collect'] * 1000:.0f} ms)")

    started = time.perf_counter()
    plan = build_plan(routes)
    warnings = shadowed(plan)
    timings["plan"] = time.perf_counter() - started
    _say(f"[2/4] planned {len(plan.terminals)} terminals ({timings['plan'] * 1000:.0f} ms)")
    for warning in warnings:
        _say(f"      warning: {warning}")

    started = time.perf_counter()
    name = module_name(fingerprint)
    source = generate_source(routes, fingerprint, app.binder_plans())
    py_path = out_dir / f"{name}.py"
    _remove_stale(out_dir, name)
    py_path.write_text(source, "utf-8")
    timings["render"] = time.perf_counter() - started
    _say(f"[3/4] generated {py_path} ({len(source.splitlines())} lines, {timings['render'] * 1000:.0f} ms)")

    artifact = py_path
    compiled = False
    if compile:
        started = time.perf_counter()
        try:
            check_toolchain()
            artifact = _with_progress("compiling with mypyc", lambda: compile_module(py_path, out_dir))
            compiled = True
            timings["compile"] = time.perf_counter() - started
            _say(f"[4/4] compiled {artifact} ({timings['compile']:.1f} s)")
        except CompileError as exc:
            timings["compile"] = time.perf_counter() - started
            _say(f"[4/4] not compiled: {exc}; `cello serve` will use the generated .py")
    else:
        _say("[4/4] skipped compiling (--no-compile); `cello serve` will use the generated .py")

    manifest = Manifest(
        app=app_ref,
        fingerprint=fingerprint,
        artifact=artifact.name,
        compiled=compiled,
        python_tag=f"{sys.implementation.cache_tag}",
        route_count=len(routes),
        routes=[[route.method, route.pattern.raw] for route in routes],
        timings={key: round(value, 4) for key, value in timings.items()},
        extra={"module": name, "generated": py_path.name, "warnings": warnings},
    )
    (out_dir / MANIFEST).write_text(manifest.to_json(), "utf-8")
    _say(f"wrote {out_dir / MANIFEST}")
    try:
        (out_dir / OPENAPI).write_text(app.openapi_json(), "utf-8")
        _say(f"wrote {out_dir / OPENAPI}")
    except ValueError as exc:  # the API cannot be described (two models of one name): the build still serves
        _say(f"      warning: no {OPENAPI}: {exc}")
    return 0
