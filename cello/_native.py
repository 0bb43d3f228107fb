"""Which runtime modules run compiled (mypyc, built at install time by setup.py), and the guard
that falls back to their sources when the compiled build must not be used.

The compiled modules are one mypyc group: they call each other natively, so they are used
all together or not at all. Their sources ship beside them and are used instead when

- ``CELLO_PURE_PYTHON=1`` is set (the pure-Python fallback, also how the test suite runs it), or
- a source differs from the one compiled (an edited file in an editable install): running the
  old compiled code would silently ignore the edit, so the sources run, with a warning.

This module imports nothing from cello: setup.py reads it before the package is installed.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Final

# The HTTP/WebSocket server (per-request and per-frame code, where interpreted Python showed
# in profiles), the Request and Response classes every request builds, the handler chains
# (pipeline) and what they call for every request when enabled (request ids, metrics). Request
# and Response stay open to subclasses defined in Python (allow_interpreted_subclasses); the
# app, blueprints and other middleware stay interpreted.
COMPILED: Final = (
    "cello.metrics",
    "cello.middleware.request_id",
    "cello.pipeline",
    "cello.request",
    "cello.response",
    "cello.server.http.body",
    "cello.server.http.head",
    "cello.server.http.parsers",
    "cello.server.http.protocol",
    "cello.server.http.state",
    "cello.server.http.wire",
    "cello.server.websocket.connection",
    "cello.server.websocket.driver",
    "cello.server.websocket.handshake",
    "cello.server.write_gate",
)
# mypyc's shared library for the group is cello/_native__mypyc.<abi>.so.
GROUP: Final = "cello._native"
RECORD: Final = "_native.json"
PURE_ENV: Final = "CELLO_PURE_PYTHON"

_PACKAGE: Final = Path(__file__).resolve().parent
_mode = "pure Python"


def _source(module: str) -> Path:
    return _PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")


def _extension(module: str) -> Path | None:
    base = _PACKAGE.parent.joinpath(*module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.exists():
            return candidate
    return None


def _stale() -> list[str]:
    """Compiled modules whose source is not the one compiled (all of them without a record)."""
    try:
        record = json.loads((_PACKAGE / RECORD).read_text("utf-8"))
        digests: dict[str, str] = record["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return list(COMPILED)
    stale = []
    for module in COMPILED:
        source = _source(module)
        if source.exists() and hashlib.sha256(source.read_bytes()).hexdigest() != digests.get(module):
            stale.append(module)
    return stale


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Imports the compiled modules from their ``.py`` files instead."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, _source(fullname))


def install() -> None:
    """Decide, once, before any compiled module is imported (cello/__init__.py calls this)."""
    global _mode
    missing = [module for module in COMPILED if _extension(module) is None]
    if len(missing) == len(COMPILED):
        _mode = "pure Python"
        return
    reason = ""
    if os.environ.get(PURE_ENV, "").strip().lower() not in ("", "0", "no", "false"):
        reason = f"{PURE_ENV} is set"
    else:
        # A module added to the group since the last build has no extension: the others'
        # extensions are then from an older build, and must not run beside its source.
        stale = missing or _stale()
        if stale:
            reason = f"{', '.join(stale)} {'not compiled' if missing else 'changed since compiled'}"
            warnings.warn(
                f"cello: the compiled runtime is stale ({reason}); running the sources. "
                "Rebuild it with `pip install -e .` (or `make native`).",
                RuntimeWarning,
                stacklevel=2,
            )
    if reason:
        if not any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _SourceFinder())
        _mode = f"pure Python ({reason})"
    else:
        _mode = "compiled (mypyc)"


def mode() -> str:
    """How the server modules run: ``compiled (mypyc)`` or ``pure Python (...)``."""
    return _mode


def is_compiled() -> bool:
    return _mode == "compiled (mypyc)"
