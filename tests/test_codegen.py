"""The route compiler: generated source, fingerprints, splitting, compiling and loading."""

from __future__ import annotations

import ast
import importlib.machinery
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import msgspec
import pytest

from cello import App, Cookie, FormData, Header, Query, Request, UploadedFile
from cello.codegen import compile as compile_mod
from cello.codegen.compile import CompileError, check_toolchain, compile_module, compile_modules
from cello.codegen.generate import MAX_INLINE_TERMINALS, generate_source, module_name
from cello.routing import GENERATOR_VERSION, InterpretedRouter, RouteTable, build_plan
from cello.routing.converters import is_float, is_int, is_uuid
from cello.routing.loader import load_compiled

Table = list[tuple[str, str]]

SAMPLE: Table = [
    ("GET", "/"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/{id:int}"),
    ("DELETE", "/users/{id}"),
    ("GET", "/files/{path:path}"),
    ("WEBSOCKET", "/ws/{room}"),
]


def table_of(routes: Table) -> RouteTable:
    table = RouteTable()
    for method, pattern in routes:
        table.add(method, pattern, None, "app.py:1")
    return table


def module_of(source: str, name: str = "_generated") -> ModuleType:
    module = ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def write(table: RouteTable, directory: Path, extra: str = "test") -> tuple[Path, str]:
    fingerprint = table.fingerprint(extra)
    path = directory / f"{module_name(fingerprint)}.py"
    path.write_text(generate_source(table.routes(), fingerprint), "utf-8")
    return path, fingerprint


def functions_of(source: str) -> dict[str, str]:
    """Function name -> its source text."""
    tree = ast.parse(source)
    return {
        node.name: ast.get_source_segment(source, node) or "" for node in tree.body if isinstance(node, ast.FunctionDef)
    }


# -- the generated source -------------------------------------------------------------------


def test_constants_and_module_name() -> None:
    table = table_of(SAMPLE)
    fingerprint = table.fingerprint("0.3.0")
    source = generate_source(table.routes(), fingerprint)
    module = module_of(source)
    assert fingerprint == module.FINGERPRINT
    assert module.GENERATOR_VERSION == GENERATOR_VERSION
    assert len(SAMPLE) == module.ROUTE_COUNT
    assert tuple((r.method, r.pattern.raw) for r in table.routes()) == module.ROUTES
    assert module_name(fingerprint) == "_dispatch_" + fingerprint[:16]


def test_source_is_deterministic_and_declaration_order_free() -> None:
    one, two = table_of(SAMPLE), table_of(list(reversed(SAMPLE)))
    assert one.fingerprint() == two.fingerprint()
    assert generate_source(one.routes(), one.fingerprint()) == generate_source(two.routes(), two.fingerprint())


def test_comments_name_patterns_at_terminals() -> None:
    table = table_of(SAMPLE)
    source = generate_source(table.routes(), table.fingerprint())
    plan = build_plan(table.routes())
    for terminal in plan.terminals:
        assert f"# terminal {terminal.index}: {' | '.join(terminal.patterns)}" in source


def test_generated_module_passes_mypy_strict(tmp_path: Path) -> None:
    routes = SAMPLE + [("GET", f"/many/r{i}/{{x:float}}/{{u:uuid}}") for i in range(40)]
    path, _ = write(table_of(routes), tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version", "3.10", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_odd_pattern_text_stays_valid_python() -> None:
    routes = [
        ("GET", '/q"""uote'),
        ("GET", "/back\\slash/{x}"),
        ("GET", "/new%0Aline"),
        ("GET", "/it's/{y:int}"),
        ("GET", "/caf%C3%A9/✓"),
    ]
    table = table_of(routes)
    module = module_of(generate_source(table.routes(), table.fingerprint()))
    router = InterpretedRouter(build_plan(table.routes()))
    for path in ['/q"""uote', "/back\\slash/z", "/new%0Aline", "/it's/5", "/café/✓", "/caf%C3%A9/%E2%9C%93"]:
        assert module.dispatch("GET", path) == router.dispatch("GET", path)
        assert module.dispatch("GET", path)[0] >= 0


def test_empty_table() -> None:
    module = module_of(generate_source([], "0" * 64))
    assert module.ROUTE_COUNT == 0
    assert module.dispatch("GET", "/") == (-1, ())
    assert module.dispatch("GET", "") == (-1, ())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "5",
        "007",
        "9" * 18,
        "9" * 19,
        "-1",
        "+1",
        "1.5",
        "1.",
        ".5",
        "1.2.3",
        "1e5",
        "٣",
        "٣.٥",
        "０",
        "²",
        "1" * 64,
        "1" * 65,
        "12345678-1234-1234-1234-1234567890ab",
        "12345678-1234-1234-1234-1234567890AB",
        "12345678-1234-1234-1234-1234567890aG",
        "-" * 36,
        "12345678123412341234123456789012",
        "123456781234-1234-1234-1234567890ab-",
    ],
)
def test_generated_converters_agree_with_cello_routing(text: str) -> None:
    module = module_of(generate_source([], "0" * 64))
    assert (module._int_value(text) >= 0) == is_int(text)
    if is_int(text):
        assert module._int_value(text) == int(text)
    assert module._is_float(text) == is_float(text)
    assert module._is_uuid(text) == is_uuid(text)


def test_generated_converters_agree_on_all_short_ascii_strings() -> None:
    module = module_of(generate_source([], "0" * 64))
    alphabet = "0159.-aAfgG"
    texts = [a + b + c for a in alphabet for b in alphabet + "" for c in ["", *alphabet]]
    for text in texts:
        assert (module._int_value(text) >= 0) == is_int(text), text
        assert module._is_float(text) == is_float(text), text


# -- splitting ------------------------------------------------------------------------------


def terminals_per_function(source: str) -> dict[str, int]:
    return {name: text.count("# terminal ") for name, text in functions_of(source).items()}


def test_big_subtrees_become_functions() -> None:
    # 3 levels x 12 x 10: a single subtree of 360 terminals under /api.
    routes = (
        [("GET", f"/api/g{g}/r{r}/{{id:int}}") for g in range(12) for r in range(10)]
        + [("POST", f"/api/g{g}/r{r}") for g in range(12) for r in range(10)]
        + [("GET", f"/api/g{g}/r{r}/{{id:int}}/{{name}}") for g in range(12) for r in range(10)]
    )
    table = table_of(routes)
    source = generate_source(table.routes(), table.fingerprint())
    counts = terminals_per_function(source)
    assert sum(counts.values()) == len(build_plan(table.routes()).terminals)
    assert len(counts) > 5
    assert max(counts.values()) <= MAX_INLINE_TERMINALS
    module = module_of(source)
    router = InterpretedRouter(build_plan(table.routes()))
    for path in ["/api/g3/r7/42", "/api/g11/r0/1/x", "/api/g3/r7", "/api/g3/r77/1", "/api/g3/r7/x"]:
        for method in ["GET", "POST", "DELETE"]:
            assert module.dispatch(method, path) == router.dispatch(method, path)


def test_wide_levels_use_a_fan_out_dict() -> None:
    routes = [("GET", f"/r{i}/{{x:int}}") for i in range(50)]
    table = table_of(routes)
    source = generate_source(table.routes(), table.fingerprint())
    assert "_FANOUT_1.get(s1, -1)" in source
    module = module_of(source)
    assert module.dispatch("GET", "/r37/5") == (
        table.routes().index(next(r for r in table.routes() if r.pattern.raw == "/r37/{x:int}")),
        (5,),
    )
    assert module.dispatch("GET", "/r99/5") == (-1, ())


def test_deep_patterns_are_split_to_stay_within_the_parser() -> None:
    deep = "/" + "/".join(f"{{p{i}:int}}" for i in range(60))
    table = table_of([("GET", deep), ("GET", "/" + "/".join(["x"] * 60))])
    source = generate_source(table.routes(), table.fingerprint())
    indents = max(len(line) - len(line.lstrip(" ")) for line in source.splitlines())
    assert indents <= 4 * 40
    module = module_of(source)
    route_id = [r.pattern.raw for r in table.routes()].index(deep)
    assert module.dispatch("GET", "/" + "/".join(str(i) for i in range(60))) == (route_id, tuple(range(60)))
    assert module.dispatch("GET", "/" + "/".join(["x"] * 60)) == (1 - route_id, ())


# -- compiling and loading ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[RouteTable, Path, Path, str]:
    try:
        check_toolchain()
    except CompileError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("compiled")
    table = table_of(SAMPLE)
    py, fingerprint = write(table, out)
    so = compile_module(py, out)
    return table, py, so, fingerprint


def test_compile_module_gives_a_standalone_extension(compiled: tuple[RouteTable, Path, Path, str]) -> None:
    table, py, so, fingerprint = compiled
    assert so.name == module_name(fingerprint) + importlib.machinery.EXTENSION_SUFFIXES[0]
    assert not list(so.parent.glob("*__mypyc*"))  # one file: nothing else to ship
    result = load_compiled(so, fingerprint, len(table))
    assert result.dispatch is not None and result.compiled and result.reason == ""
    router = InterpretedRouter(build_plan(table.routes()))
    for method, path in [
        ("GET", "/users/5"),
        ("DELETE", "/users/5"),
        ("PUT", "/users"),
        ("GET", "/files/a/b"),
        ("GET", "/ws/x"),
        ("HEAD", "/users"),
        ("GET", "/nope"),
        ("GET", "nope"),
    ]:
        assert result.dispatch(method, path) == router.dispatch(method, path)


def test_loader_refuses_mismatches(compiled: tuple[RouteTable, Path, Path, str], tmp_path: Path) -> None:
    table, py, so, fingerprint = compiled
    count = len(table)
    assert load_compiled(py, fingerprint, count).dispatch is not None
    assert "does not exist" in load_compiled(tmp_path / "nope.so", fingerprint, count).reason
    # Other routes: the file name already tells.
    other = "f" * 64
    assert "built for other routes" in load_compiled(so, other, count).reason
    # Renamed to pass the name check: FINGERPRINT inside still differs.
    renamed = tmp_path / (module_name(other) + ".py")
    shutil.copyfile(py, renamed)
    assert "fingerprint" in load_compiled(renamed, other, count).reason
    assert "routes" in load_compiled(py, fingerprint, count + 1).reason
    # Another generator version.
    old = tmp_path / "old" / py.name
    old.parent.mkdir()
    old.write_text(py.read_text("utf-8").replace(GENERATOR_VERSION, "cello-dispatch/0"), "utf-8")
    assert "generator" in load_compiled(old, fingerprint, count).reason


def test_loader_refuses_other_abis_and_broken_files(
    compiled: tuple[RouteTable, Path, Path, str], tmp_path: Path
) -> None:
    table, _, so, fingerprint = compiled
    name = module_name(fingerprint)
    foreign = tmp_path / f"{name}.cpython-39-x86_64-linux-gnu.so"
    shutil.copyfile(so, foreign)
    reason = load_compiled(foreign, fingerprint, len(table)).reason
    assert "built for cpython-39" in reason
    broken = tmp_path / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
    broken.write_bytes(b"not an ELF file")
    assert "cannot import" in load_compiled(broken, fingerprint, len(table)).reason
    text = tmp_path / f"{name}.txt"
    text.write_text("x")
    assert "neither" in load_compiled(text, fingerprint, len(table)).reason


def test_loader_does_not_use_sys_path(compiled: tuple[RouteTable, Path, Path, str]) -> None:
    table, _, so, fingerprint = compiled
    before = set(sys.modules)
    assert load_compiled(so, fingerprint, len(table)).dispatch is not None
    assert module_name(fingerprint) not in set(sys.modules) - before
    assert str(so.parent) not in sys.path


def test_batch_builds_load_by_path(tmp_path: Path) -> None:
    try:
        check_toolchain()
    except CompileError as exc:
        pytest.skip(str(exc))
    tables = [table_of([("GET", f"/t{i}/{{x:int}}")]) for i in range(2)]
    written = [write(table, tmp_path) for table in tables]
    sos = compile_modules([py for py, _ in written], tmp_path / "out", opt_level="0")
    for i, (so, (_, fingerprint)) in enumerate(zip(sos, written)):
        result = load_compiled(so, fingerprint, 1)
        assert result.dispatch is not None, result.reason
        assert result.dispatch("GET", f"/t{i}/12") == (0, (12,))


def test_compile_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "_dispatch_bad.py"
    bad.write_text("def dispatch(method: str, path: str) -> int:\n    return 'x'\n")
    try:
        check_toolchain()
    except CompileError as exc:
        pytest.skip(str(exc))
    with pytest.raises(CompileError) as info:
        compile_module(bad, tmp_path / "out", opt_level="0")
    assert "\n" not in str(info.value) and "mypyc failed" in str(info.value)
    with pytest.raises(CompileError, match="did not finish within"):
        compile_module(bad, tmp_path / "out", timeout=0.01)
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(CompileError, match="no C compiler: 'no-such-cc'"):
        compile_module(bad, tmp_path / "out")
    monkeypatch.delenv("CC")
    real_find_spec = compile_mod.importlib.util.find_spec
    monkeypatch.setattr(compile_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CompileError, match="mypyc is not installed"):
        check_toolchain()
    monkeypatch.setattr(
        compile_mod.importlib.util, "find_spec", lambda name: None if name == "setuptools" else real_find_spec(name)
    )
    with pytest.raises(CompileError, match="needs setuptools"):
        check_toolchain()


def test_runtime_never_imports_codegen() -> None:
    code = (
        "import sys, cello.routing, cello.routing.loader, cello.routing.interpreted\n"
        "bad = [m for m in sys.modules if m.startswith(('cello.codegen', 'cello.templates', 'jinja2'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    routing = Path(__file__).resolve().parent.parent / "cello" / "routing"
    for source in routing.rglob("*.py"):
        text = source.read_text("utf-8")
        assert not re.search(r"^\s*(from|import)\s+cello\.codegen", text, re.M), source


# -- typed routes' binders ------------------------------------------------------------------


class _Item(msgspec.Struct):
    name: str


def _typed_app() -> App:
    app = App()

    @app.get("/notes/{id:int}")
    def get_note(
        id: int,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1)] = 20,
        token: Annotated[str | None, Header()] = None,
        sid: Annotated[str | None, Cookie()] = None,
        tags: list[str] | None = None,
    ) -> dict[str, Any]:
        return {}

    @app.post("/notes", status=201)
    def create(request: Request, *, body: _Item) -> _Item:
        return body

    @app.post("/upload")
    def upload(form: FormData, file: UploadedFile, more: list[UploadedFile]) -> None: ...

    @app.get("/")
    def classic(request: Request) -> dict[str, str]:
        return {}

    return app


def test_generated_binders_pass_mypy_strict(tmp_path: Path) -> None:
    app = _typed_app()
    source = generate_source(app.routes(), app.fingerprint(), app.binder_plans())
    path = tmp_path / "_generated_binders.py"
    path.write_text(source, "utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-version", "3.10", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    binders = {name for name in functions_of(source) if name.startswith("_bind_")}
    # One binder per typed route; the classic handler gets none.
    assert len(binders) == 3 == len(module_of(source).BINDERS)
    # Each parameter's source and key is written into the code, commented.
    assert "# 3. token: str (header 'token', optional)" in source
    assert "a2: object = query.get('limit')" in source


def test_the_fingerprint_follows_what_generated_binders_depend_on() -> None:
    def fingerprint(handler: Any) -> str:
        app = App()
        app.get("/n")(handler)
        return app.fingerprint()

    def limit_20(limit: int = 20) -> None: ...

    def limit_30(limit: int = 30) -> None: ...

    def limit_text(limit: str = "x") -> None: ...

    # A default is read from the plan at run time: the build stays valid.
    assert fingerprint(limit_20) == fingerprint(limit_30)
    # str needs no conversion, int does: the generated code differs.
    assert fingerprint(limit_text) != fingerprint(limit_20)
