"""The wheel that `python -m build` makes holds what an installed Cello needs, and works.

The checkout maps `codegen/` and `templates/` into the `cello` package (pyproject's
package-dir): an editable install hides a mistake there, an installed wheel does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from cello import _native
from cello.codegen.compile import CompileError, check_toolchain

ROOT = Path(__file__).resolve().parent.parent
# What the wheel is built from: the sources, not this checkout's venvs, builds and caches
# (setuptools would also write its build/lib next to build/tests).
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "build",
    "dist",
    "site",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "results",
    "corpus",
    "*.so",
    "_native.json",
)

pytestmark = pytest.mark.slow


def run(argv: list[str], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def can_compile() -> bool:
    try:
        check_toolchain()
    except CompileError:
        return False
    return True


def build_wheel(work: Path, *extra: str, env: dict[str, str] | None = None) -> Path:
    pytest.importorskip("build", reason="build is in the test extra: pip install -e '.[test]'")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES, symlinks=True)
    # An isolated build fetches setuptools and mypy and compiles the runtime: minutes when loaded.
    run(
        [sys.executable, "-m", "build", "--wheel", *extra, "--outdir", str(work / "dist"), str(source)],
        work,
        timeout=600,
        env=env,
    )
    (built,) = (work / "dist").glob("cello_framework-*.whl")
    return built


def install(wheel: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel in it (dependencies seen through this interpreter's)."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], tmp_path)
    # The dependencies come from this interpreter's site-packages through a .pth line, which
    # adds the folder but not its own .pth files: the editable Cello there stays out of sight.
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path).strip())
    (site / "test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", _native.PURE_ENV)}
    return venv, env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = {key: value for key, value in os.environ.items() if key != "CELLO_COMPILE"}
    return build_wheel(tmp_path_factory.mktemp("wheel"), env=env)


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cello/py.typed" in names
    assert "cello/templates/dispatch.py.j2" in names
    for folder, package in (("codegen", "cello/codegen"), ("cello", "cello")):
        for module in (ROOT / folder).rglob("*.py"):
            assert f"{package}/{module.relative_to(ROOT / folder).as_posix()}" in names, module
    tops = {name.split("/", 1)[0] for name in names}
    assert "codegen" not in tops and "templates" not in tops and "tests" not in tops, sorted(tops)
    (entry_points,) = (name for name in names if name.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[console_scripts]" in text and "cello = cello.cli:main" in text, text
    if can_compile():
        # The compiled server ships beside its sources, with the record that vouches for them.
        for module in _native.COMPILED:
            path = module.replace(".", "/")
            assert any(name.startswith(path + ".cpython-") and name.endswith(".so") for name in names), module
        assert "cello/_native.json" in names
        assert any(name.startswith("cello/_native__mypyc.") for name in names), sorted(tops)


def test_installed_wheel_runs(wheel: Path, tmp_path: Path) -> None:
    venv, env = install(wheel, tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path).strip())
    runtime = "compiled (mypyc)" if can_compile() else "pure Python"
    assert (
        run([str(venv / "bin" / "cello"), "--version"], tmp_path, env=env).strip()
        == f"cello 0.3.0 (runtime: {runtime})"
    )
    where = run(
        [str(python), "-c", "import cello.codegen.generate, cello.templates; print(cello.__file__)"], tmp_path, env=env
    )
    assert Path(where.strip()).is_relative_to(site), where
    app = tmp_path / "tiny.py"
    app.write_text(
        "from cello import App\napp = App()\n\n@app.get('/users/{id:int}')\ndef user(request):\n    return {}\n"
    )
    # The installed codegen renders the installed template (no compiler: that is tested elsewhere).
    run([str(venv / "bin" / "cello"), "build", "tiny.py", "--out", "out", "--no-compile"], tmp_path, env=env)
    generated = list((tmp_path / "out").rglob("*.py"))
    assert generated and any("/users/" in path.read_text() for path in generated), generated


def test_wheel_without_compiling_is_pure_python(tmp_path: Path) -> None:
    # What a machine without a C compiler builds: a universal wheel that runs the sources.
    env = {**os.environ, "CELLO_COMPILE": "0"}
    built = build_wheel(tmp_path / "pure", "--no-isolation", env=env)
    assert built.name.endswith("-py3-none-any.whl"), built.name
    names = zipfile.ZipFile(built).namelist()
    assert not [name for name in names if name.endswith(".so")]
    assert "cello/server/http/protocol.py" in names and "cello/_native.py" in names
    venv, run_env = install(built, tmp_path)
    assert (
        run([str(venv / "bin" / "cello"), "--version"], tmp_path, env=run_env).strip()
        == "cello 0.3.0 (runtime: pure Python)"
    )
