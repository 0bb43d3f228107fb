"""The ``cello`` command: build, serve, routes, openapi."""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cello import _native
from cello.app import App, __version__
from cello.build_artifacts import BuildError, attach_build, read_manifest
from cello.endpoints import RouteEntry
from cello.openapi.schemas import SchemaConflict
from cello.reloader import is_reloader_child, run_with_reload
from cello.routing import build_plan
from cello.routing.diagnostics import format_tree, shadowed
from cello.runner import RunError, RunOptions, add_run_flags, configure_logging, run_app


class AppLoadError(Exception):
    pass


def load_app(reference: str, command: str = "serve") -> App:
    """Import an app from ``module:attr``, ``module`` or ``path/to/file.py[:attr]``; errors
    name what ``cello COMMAND`` should be given instead."""
    target, _, attr = reference.partition(":")
    attr = attr or "app"
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target).resolve()
        if not path.is_file():
            raise AppLoadError(f"no such file: {target}")
        # Let the app import its sibling modules, as `python file.py` would.
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise AppLoadError(f"cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            if exc.name == target:
                raise AppLoadError(
                    f"no module named {target!r} (run from the app's directory or pass a file path)"
                ) from None
            raise
    app = getattr(module, attr, None)
    if isinstance(app, App):
        return app
    if app is None:
        problem = f"module {module.__name__!r} has no attribute {attr!r}"
    else:
        problem = f"{target}:{attr} is of type {type(app).__name__}, not a cello.App"
    apps = [name for name, value in vars(module).items() if isinstance(value, App)]
    if apps:
        named = ", ".join(repr(name) for name in apps)
        noun = "its App is named" if len(apps) == 1 else "its Apps are named"
        hint = f"{noun} {named}: use `cello {command} {target}:{apps[0]}`"
    else:
        hint = "it defines no cello.App (create one with `app = App()`)"
    raise AppLoadError(f"{problem}; {hint}")


def _cmd_serve(args: argparse.Namespace) -> int:
    if args.reload:
        if not is_reloader_child():
            # Before importing the app: an app that fails to import is reported by the
            # child and retried on the next change, instead of ending the session.
            target = (args.app or "").partition(":")[0]
            watched = Path(target).resolve().parent if target.endswith(".py") else Path.cwd()
            configure_logging(False, False if args.no_logs else None, args.log_format)
            return run_with_reload([watched], [Path(args.out)])
    build_dir = Path(args.out)
    reference = args.app
    if reference is None:
        manifest = read_manifest(build_dir)
        if manifest is None:
            print(
                f"error: no app given and no build in {build_dir}/ (run `cello build app:app` first)", file=sys.stderr
            )
            return 2
        reference = manifest.app
    app = load_app(reference)
    try:
        attach_build(app, build_dir, require=args.require_compiled, reference=reference)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return run_app(app, RunOptions(port=8000).merged(args))
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _cmd_routes(args: argparse.Namespace) -> int:
    app = load_app(args.app, "routes")
    routes = app.routes()
    rows = [("METHOD", "PATTERN", "HANDLER", "BLUEPRINT")]
    for route in routes:
        entry = route.endpoint
        assert isinstance(entry, RouteEntry)  # what App puts in its route table
        handler = entry.spec.handler
        name = f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"
        rows.append((route.method, route.pattern.raw, name, entry.blueprint or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    plan = build_plan(routes)
    if args.tree:
        print()
        print(format_tree(plan))
    for warning in shadowed(plan):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _openapi_text(app: App) -> str | None:
    """The app's OpenAPI document, or None after saying why it cannot be written."""
    try:
        return app.openapi_json()
    except SchemaConflict as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _cmd_openapi(args: argparse.Namespace) -> int:
    app = load_app(args.app, "openapi")
    text = _openapi_text(app)
    if text is None:
        return 1
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, "utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


# A drift report names the first differences; the rest is one command away.
_DIFF_LINES = 40


def _check_openapi(app: App, reference: str, path: Path) -> int:
    """0 when the spec file at ``path`` is the app's document, else 1 with a short diff."""
    generated = _openapi_text(app)
    if generated is None:
        return 1
    fix = f"`cello openapi {reference} -o {path}` (or `cello build {reference} --openapi {path}`) updates it"
    if not path.is_file():
        print(f"error: no OpenAPI document at {path}; {fix}", file=sys.stderr)
        return 1
    committed = path.read_text("utf-8")
    if committed == generated:
        return 0
    diff = list(
        difflib.unified_diff(
            committed.splitlines(keepends=True), generated.splitlines(keepends=True), str(path), "generated", n=2
        )
    )
    print(f"API drift: {path} differs from the document of {reference}; {fix}", file=sys.stderr)
    sys.stderr.writelines(diff[:_DIFF_LINES])
    if len(diff) > _DIFF_LINES:
        print(f"... ({len(diff) - _DIFF_LINES} more diff lines)", file=sys.stderr)
    return 1


def _cmd_build(args: argparse.Namespace) -> int:
    app = load_app(args.app, "build")
    openapi = Path(args.openapi) if args.openapi else None
    if args.check and openapi is not None:
        return _check_openapi(app, args.app, openapi)
    if args.check:
        try:
            attach_build(app, Path(args.out), require=True, reference=args.app)
        except BuildError as exc:
            print(f"out of date: {exc}", file=sys.stderr)
            return 1
        return 0
    # Build-time code (Jinja2, mypyc), imported only by this command: the runtime never
    # imports codegen (tests/test_architecture.py allows this one import and no other).
    build = importlib.import_module("cello.codegen.build")
    code: int = build.run_build(app, args.app, Path(args.out), compile=not args.no_compile)
    if code == 0 and openapi is not None:
        text = _openapi_text(app)
        if text is None:
            return 1
        openapi.write_text(text, "utf-8")
        print(f"wrote {openapi}")
    return code


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cello", description="Cello: a fast Python web framework with compiled routes."
    )
    parser.add_argument("--version", action="version", version=f"cello {__version__} (runtime: {_native.mode()})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    build = commands.add_parser("build", help="generate and compile the app's dispatch module")
    build.add_argument("app", help="module:app or path/to/file.py[:app]")
    build.add_argument("--out", default="build", help="output directory (default build/)")
    build.add_argument("--no-compile", action="store_true", help="write the generated .py only")
    build.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if the build in --out is current, 1 if not; with --openapi, check that file instead",
    )
    build.add_argument(
        "--openapi",
        metavar="PATH",
        help="also write the OpenAPI document to PATH; with --check, exit 1 (and show a diff) if PATH differs",
    )
    build.set_defaults(func=_cmd_build)

    serve = commands.add_parser("serve", help="serve an app (compiled router when a matching build exists)")
    serve.add_argument(
        "app", nargs="?", default=None, help="module:app or file.py (default: the app in build/manifest.json)"
    )
    serve.add_argument("--out", default="build", help="build directory to load from (default build/)")
    serve.add_argument(
        "--require-compiled", action="store_true", help="refuse to start without a matching compiled router"
    )
    add_run_flags(serve)
    serve.set_defaults(func=_cmd_serve)

    routes = commands.add_parser("routes", help="print the route table")
    routes.add_argument("app", help="module:app or path/to/file.py[:app]")
    routes.add_argument("--tree", action="store_true", help="also print the decision tree")
    routes.set_defaults(func=_cmd_routes)

    openapi = commands.add_parser("openapi", help="print the app's OpenAPI document (JSON)")
    openapi.add_argument("app", help="module:app or path/to/file.py[:app]")
    openapi.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of standard output")
    openapi.set_defaults(func=_cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except AppLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
