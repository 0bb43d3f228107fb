"""The import graph of ``cello/`` and ``codegen/``: no cycles, and DESIGN.md's layering.

Every ``import`` and ``from ... import`` counts, inside functions too (an import moved into a
function still makes a cycle, only a later one); those under ``if TYPE_CHECKING:`` do not
(they never run). ``from cello import x`` counts as importing the submodule ``cello.x`` when
there is one, and importing ``cello.a.b`` as importing that module only (not the package
``cello/__init__``, which every such import also runs: counting it would join everything).
``codegen/`` and ``templates/`` are installed as ``cello.codegen`` and ``cello.templates``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (("cello", "cello"), ("codegen", "cello.codegen"), ("templates", "cello.templates"))

# The one import of build-time code by the runtime: `cello build` runs the code generator,
# inside its command function (cello/cli.py, _cmd_build), never at import.
BUILD_COMMAND = ("cello.cli", "cello.codegen.build")


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory, package in PACKAGES:
        for path in sorted((ROOT / directory).rglob("*.py")):
            parts = [package, *path.relative_to(ROOT / directory).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def resolve(target: str) -> str | None:
        if target.startswith("codegen"):
            target = "cello." + target
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target if target and target != name else None

    def walk(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    yield from walk_one(other, in_function)
                continue
            yield from walk_one(child, in_function)

    def walk_one(node: ast.AST, in_function: bool) -> Iterator[Import]:
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from package import submodule` imports the submodule.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            targets = [node.args[0].value]
        for target in dict.fromkeys(targets):
            resolved = resolve(target)
            if resolved is not None:
                yield Import(name, resolved, getattr(node, "lineno", 0), inner)
        yield from walk(node, inner)

    yield from walk(ast.parse(path.read_text("utf-8"), str(path)), False)


def _graph() -> dict[str, list[Import]]:
    modules = _modules()
    return {name: list(_imports(name, path, modules)) for name, path in modules.items()}


def _strongly_connected(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = [edge.target for edge in graph[node]]
            for i in range(position, len(targets)):
                target = targets[i]
                if target not in index:
                    work.append((node, i + 1))
                    work.append((target, 0))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return found


def _describe(component: list[str], graph: dict[str, list[Import]]) -> str:
    lines = [" <-> ".join(component)]
    for name in component:
        for edge in graph[name]:
            if edge.target in component:
                where = "in a function" if edge.in_function else "at module level"
                lines.append(f"    {name} imports {edge.target} (line {edge.line}, {where})")
    return "\n".join(lines)


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles = [component for component in _strongly_connected(graph) if len(component) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_the_cycle_finder_finds_cycles() -> None:
    edge = Import("a", "b", 1, True)
    graph = {"a": [edge], "b": [Import("b", "c", 2, False)], "c": [Import("c", "a", 3, False)], "d": []}
    assert sorted(map(sorted, _strongly_connected(graph))) == [["a", "b", "c"], ["d"]]


def test_the_runtime_never_imports_codegen() -> None:
    """Build-time code stays out of `cello`: only the `cello build` command imports it."""
    graph = _graph()
    offending = [
        edge
        for name, edges in graph.items()
        if not name.startswith(("cello.codegen", "cello.templates"))
        for edge in edges
        if edge.target.startswith("cello.codegen") and (edge.source, edge.target) != BUILD_COMMAND
    ]
    assert not offending, offending
    (command,) = [edge for edge in graph["cello.cli"] if edge.target == BUILD_COMMAND[1]]
    assert command.in_function


def test_the_server_knows_nothing_of_apps_and_routing() -> None:
    graph = _graph()
    above = ("cello.app", "cello.routing", "cello.blueprint", "cello.endpoints", "cello.asgi")
    offending = [
        edge
        for name, edges in graph.items()
        if name.startswith("cello.server")
        for edge in edges
        if edge.target.startswith(above)
    ]
    assert not offending, offending


def test_app_stands_at_the_top() -> None:
    """What App composes never imports it at run time (DESIGN.md's layering)."""
    graph = _graph()
    below = ("cello.blueprint", "cello.endpoints", "cello.asgi", "cello.runner", "cello.middleware")
    offending = [
        edge for name, edges in graph.items() if name.startswith(below) for edge in edges if edge.target == "cello.app"
    ]
    assert not offending, offending


def test_imports_inside_functions_say_why() -> None:
    """An import left inside a function is for an optional or heavy dependency, and a comment
    right above it says so; the others were dodging cycles and are gone."""
    allowed = {
        BUILD_COMMAND,
        # The server loads only when serving (an app run by an ASGI server never loads it).
        ("cello.runner", "cello.server.supervisor"),
        ("cello.runner", "cello.server.config"),
        ("cello.runner", "cello.server.tls"),
        # redis-py is optional: only an app whose channels name a Redis imports it.
        ("cello.channels", "cello.channels.redis_broker"),
        ("cello.sessions", "cello.sessions.redis_store"),
        # OpenTelemetry is optional: only an app that calls enable_tracing() imports it.
        ("cello.app", "cello.middleware.tracing"),
        ("cello.ratelimit", "cello.ratelimit.redis_store"),
        ("cello.ratelimit", "cello.redis_url"),
        # Jinja2 loads on an app's first render: apps without templates never import it.
        ("cello.templating", "cello._jinja"),
    }
    graph = _graph()
    found = {(edge.source, edge.target) for edges in graph.values() for edge in edges if edge.in_function}
    assert found <= allowed, sorted(found - allowed)
