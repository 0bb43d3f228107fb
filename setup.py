"""Compiles the runtime's hot modules with mypyc at install time; pure Python without a compiler.

Everything else about the package is in pyproject.toml. The modules in ``cello/_native.py``'s
``COMPILED`` run as C extensions when this build succeeds; when mypyc or a C compiler is
missing, or ``CELLO_COMPILE=0`` is set, the same sources install and run as plain Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "cello"))
# _native.py imports nothing from cello, so it can be read before the package is installed.
from _native import COMPILED, GROUP, RECORD  # noqa: E402

sys.path.pop(0)


def _sources() -> list[str]:
    return [name.replace(".", "/") + ".py" for name in COMPILED]


def _wanted() -> bool:
    return os.environ.get("CELLO_COMPILE", "1").strip().lower() not in ("0", "no", "false", "")


class OptionalBuildExt(build_ext):
    """Builds the extensions, or leaves the pure-Python package when that is impossible.

    On success it writes ``cello/_native.json`` (sha256 of every compiled source) beside
    them, so that an import can tell a compiled module from a stale one (an edited source
    in an editable install) and fall back to the sources instead of running old code.
    """

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "install pure Python"
            self._give_up(exc)
            return
        self._write_record()

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._give_up(exc)
            raise

    def _give_up(self, exc: BaseException) -> None:
        print(f"cello: could not compile the runtime with mypyc ({exc}); installing pure Python", file=sys.stderr)
        self.extensions = []

    def _write_record(self) -> None:
        if not self.extensions:
            return
        digests = {
            name: hashlib.sha256((HERE / src).read_bytes()).hexdigest() for name, src in zip(COMPILED, _sources())
        }
        target_root = HERE if self.inplace else Path(self.build_lib)
        target = target_root / "cello" / RECORD
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"group": GROUP, "sources": digests}, indent=1) + "\n", "utf-8")

    def get_outputs(self) -> list[str]:
        outputs: list[str] = super().get_outputs()
        if self.extensions:
            outputs.append(os.path.join(self.build_lib, "cello", RECORD))
        return outputs


def _extensions() -> list[Any]:
    if not _wanted():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("cello: mypyc is not available; installing pure Python", file=sys.stderr)
        return []
    try:
        # C sources go under build/native, beside what `cello build` writes to build/.
        return list(mypycify(_sources(), opt_level="3", group_name=GROUP, target_dir="build/native"))
    except BaseException as exc:  # mypyc reports type errors with SystemExit
        print(f"cello: mypyc refused the runtime ({exc!r}); installing pure Python", file=sys.stderr)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
