"""Generated dispatch modules -> CPython extensions, by mypyc in a subprocess.

One mypyc invocation compiles any number of modules: the type check runs once and the C
compiler runs in parallel. A single module builds as one standalone extension; in a batch
mypyc splits each module into a small shim plus its own ``<module>__mypyc`` library, which
``cello.routing.loader`` loads from beside the shim.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Final

BUILD_DIR: Final = ".mypyc-build"
LOG_NAME: Final = "mypyc.log"

# Runs inside the subprocess: mypycify, then setuptools' build_ext into out_dir.
_BUILD_SCRIPT: Final = """
import sys
from setuptools import setup
from mypyc.build import mypycify

out_dir, temp_dir, opt_level, jobs, *sources = sys.argv[1:]
setup(
    name="cello-dispatch",
    ext_modules=mypycify(sources, opt_level=opt_level, separate=len(sources) > 1, target_dir="c"),
    script_args=["build_ext", "--build-lib", out_dir, "--build-temp", temp_dir, "--parallel", jobs],
)
"""


class CompileError(Exception):
    """The dispatch module could not be compiled; the message is one line."""


def extension_path(out_dir: Path, module: str) -> Path:
    return out_dir / (module + importlib.machinery.EXTENSION_SUFFIXES[0])


def _c_compiler() -> str:
    configured = str(sysconfig.get_config_var("CC") or "cc")
    return os.environ.get("CC", configured).split()[0]


def check_toolchain() -> None:
    """Raise CompileError naming what is missing to compile with mypyc."""
    if importlib.util.find_spec("mypyc") is None:
        raise CompileError("mypyc is not installed (pip install 'cello-framework[build]')")
    if importlib.util.find_spec("setuptools") is None:
        # mypyc drives the C compiler through setuptools, which Python 3.12+ venvs lack.
        raise CompileError("mypyc needs setuptools, which is not installed (pip install setuptools)")
    compiler = _c_compiler()
    if shutil.which(compiler) is None:
        raise CompileError(f"no C compiler: {compiler!r} is not on PATH (install gcc)")


def compile_modules(
    py_paths: Sequence[Path],
    out_dir: Path,
    opt_level: str = "3",
    jobs: int = 2,
    timeout: float | None = None,
) -> list[Path]:
    """Compile generated modules (distinct names) in one mypyc run; their .so paths."""
    check_toolchain()
    if not py_paths:
        return []
    out_dir = out_dir.resolve()
    build = out_dir / BUILD_DIR
    build.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for py_path in py_paths:
        # mypyc names a module after its path relative to the working directory.
        shutil.copyfile(py_path, build / py_path.name)
        names.append(py_path.name)
    if len(set(names)) != len(names):
        raise CompileError("two modules of one batch have the same name")
    command = [sys.executable, "-c", _BUILD_SCRIPT, str(out_dir), "temp", opt_level, str(jobs), *names]
    log = build / LOG_NAME
    with log.open("wb") as sink:
        try:
            process = subprocess.run(
                command, cwd=build, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise CompileError(f"mypyc did not finish within {timeout:.0f} s; full log: {log}") from None
    outputs = [extension_path(out_dir, Path(name).stem) for name in names]
    if process.returncode != 0:
        raise CompileError(f"mypyc failed ({_last_error(log)}); full log: {log}")
    missing = [path.name for path in outputs if not path.is_file()]
    if missing:
        raise CompileError(f"mypyc produced no {', '.join(missing)}; full log: {log}")
    return outputs


def compile_module(py_path: Path, out_dir: Path, opt_level: str = "3", timeout: float | None = None) -> Path:
    """Compile one generated module into a standalone extension in ``out_dir``."""
    return compile_modules([py_path], out_dir, opt_level=opt_level, timeout=timeout)[0]


def _last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text("utf-8", "replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "no output"
