"""Load a generated dispatch module (compiled .so or plain .py) by exact path, verified.

Runtime side: never imports ``cello.codegen``. A module is used only if it was generated
for these routes (fingerprint and route count), by this generator version, and, when
compiled, for this CPython ABI; otherwise the caller gets the reason and falls back to the
interpreted router.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cello.routing.table import GENERATOR_VERSION

DispatchFn = Callable[[str, str], tuple[int, tuple[object, ...]]]

# mypyc builds a module of a batch as a shim plus this library beside it.
_LIBRARY_SUFFIX = "__mypyc"


@dataclass(frozen=True, slots=True)
class LoadResult:
    dispatch: DispatchFn | None
    reason: str = ""
    compiled: bool = False
    # Route id -> the generated binder of a typed handler (called with the request and its plan).
    binders: dict[int, Callable[..., Any]] = field(default_factory=dict)


def module_name_for(fingerprint: str) -> str:
    return f"_dispatch_{fingerprint[:16]}"


def _split_extension(name: str) -> tuple[str, str]:
    """(module name, suffix) of an extension file name, longest known suffix first."""
    for suffix in sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return "", ""


def _import(name: str, path: Path) -> ModuleType | str:
    """The module executed from ``path``, or why it could not be."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return f"cannot import {path}"
    # An extension that fails to load (wrong ABI, missing symbol) raises; say why.
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError, SyntaxError) as exc:
        return f"cannot import {path.name}: {exc}"
    return module


def load_compiled(path: str | Path, expected_fingerprint: str, expected_route_count: int) -> LoadResult:
    """Import the dispatch module at ``path`` if it fits; else a LoadResult with a reason."""
    file = Path(path)
    if not file.is_file():
        return LoadResult(None, f"{file} does not exist")
    compiled = file.suffix != ".py"
    if compiled:
        name, suffix = _split_extension(file.name)
        if not name:
            return LoadResult(None, f"{file.name} is neither a .py nor a CPython extension")
        if "." in name:
            # Only the bare ".so" matched: the file carries another interpreter's tag.
            tag = name.partition(".")[2]
            here = importlib.machinery.EXTENSION_SUFFIXES[0]
            return LoadResult(None, f"{file.name} was built for {tag}, this Python loads *{here}")
    else:
        name, suffix = file.stem, ""
    expected_name = module_name_for(expected_fingerprint)
    if name != expected_name:
        return LoadResult(None, f"{file.name} is not {expected_name}: built for other routes")
    if compiled:
        library_name = name + _LIBRARY_SUFFIX
        library = file.with_name(library_name + suffix)
        if library.is_file() and library_name not in sys.modules:
            loaded = _import(library_name, library)
            if isinstance(loaded, str):
                return LoadResult(None, loaded)
            # The shim imports its library by name: it must be found in sys.modules.
            sys.modules[library_name] = loaded
    module = _import(name, file)
    if isinstance(module, str):
        return LoadResult(None, module)
    return _verify(module, file, expected_fingerprint, expected_route_count, compiled)


def _verify(module: ModuleType, file: Path, fingerprint: str, route_count: int, compiled: bool) -> LoadResult:
    found_version = getattr(module, "GENERATOR_VERSION", None)
    if found_version != GENERATOR_VERSION:
        return LoadResult(None, f"{file.name} comes from generator {found_version!r}, not {GENERATOR_VERSION!r}")
    found_fingerprint = getattr(module, "FINGERPRINT", None)
    if found_fingerprint != fingerprint:
        return LoadResult(None, f"{file.name} has fingerprint {found_fingerprint!r}, expected {fingerprint!r}")
    found_count = getattr(module, "ROUTE_COUNT", None)
    if found_count != route_count:
        return LoadResult(None, f"{file.name} has {found_count!r} routes, the app has {route_count}")
    dispatch = getattr(module, "dispatch", None)
    if not callable(dispatch):
        return LoadResult(None, f"{file.name} has no dispatch function")
    function: DispatchFn = dispatch
    binders = getattr(module, "BINDERS", {})
    if not isinstance(binders, dict):
        return LoadResult(None, f"{file.name} has no table of binders")
    return LoadResult(function, "", compiled, dict(binders))
