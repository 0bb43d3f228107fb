"""Plan -> source of the dispatch module (rendered through ``templates/dispatch.py.j2``).

All decisions live here; the template only prints. The generated ``dispatch`` executes the
plan exactly as ``cello.routing.interpreted`` does: the same tree, the same child order,
the same terminal numbers (so the runtime's ``Plan.allow(code)`` decodes its 405 codes).

In the generated code ``segs = path.split("/")``, so the segment after ``d`` consumed ones
is ``segs[d + 1]``, held in ``s{d + 1}`` (and its int value in ``v{d + 1}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import jinja2

from cello.binding.plan import BinderPlan
from cello.routing.pattern import CATCHALL, FLOAT, INT, UUID
from cello.routing.plan import Node, Plan, Terminal, build_plan
from cello.routing.table import GENERATOR_VERSION, Route

from .binders import render_binders
from .text import printable

# Most terminals a function body inlines; bigger subtrees get functions of their own
# because mypyc's memory use grows quadratically with the size of a function.
MAX_INLINE_TERMINALS: Final = 32
# Above this many static children a level looks the segment up in a dict (text -> index)
# and branches on the index: a string ``match`` compiles to a chain of comparisons.
MAX_MATCH_CASES: Final = 8
# Tree levels one function nests before the next level becomes a function, keeping well
# inside the parser's indentation limit.
MAX_NESTED_LEVELS: Final = 8

_INDENT: Final = "    "


def module_name(fingerprint: str) -> str:
    return f"_dispatch_{fingerprint[:16]}"


@dataclass
class Function:
    """A generated function for one subtree (``dispatch`` itself for the root)."""

    name: str
    label: str
    # Index into segs of the first segment this function reads itself: earlier segments
    # have no local variable here.
    first: int
    lines: list[str] = field(default_factory=list)

    def emit(self, indent: int, line: str) -> None:
        self.lines.append(_INDENT * indent + line)


@dataclass
class FanOut:
    """Static text -> index of the branch, for levels with many static children."""

    name: str
    label: str
    entries: list[str]


class _Generator:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.functions: list[Function] = []
        self.fanouts: list[FanOut] = []
        self.split: set[int] = set()  # id() of the nodes rendered as functions of their own
        self._mark_splits(plan.root, 0)

    def _mark_splits(self, node: Node, levels: int) -> int:
        """Mark the children that become functions; return the terminals left inline."""
        inline = 1 if node.terminal is not None else 0
        sizes: list[tuple[int, int, Node]] = []
        for position, (_, _, child) in enumerate(node.children()):
            deep = levels + 1 >= MAX_NESTED_LEVELS
            size = self._mark_splits(child, 0 if deep else levels + 1)
            if deep:
                self.split.add(id(child))
            else:
                sizes.append((size, position, child))
                inline += size
        # Largest subtrees first, ties in tree order: deterministic output.
        for size, _, child in sorted(sizes, key=lambda item: (-item[0], item[1])):
            if inline <= MAX_INLINE_TERMINALS:
                break
            self.split.add(id(child))
            inline -= size
        return inline

    def render(self) -> None:
        root = Function("dispatch", "/", 1)
        self.functions.append(root)
        self._node(root, self.plan.root, 1, 1, "/")

    def _function_for(self, node: Node, at: int, label: str) -> str:
        function = Function(f"_node_{len(self.functions)}", label, at)
        # Appended before its body is rendered: callers come before their callees.
        self.functions.append(function)
        self._node(function, node, at, 1, label)
        return function.name

    def _call(self, function: Function, indent: int, callee: str) -> None:
        function.emit(indent, f"r = {callee}(method, segs, n)")
        function.emit(indent, "if r[0] >= 0:")
        function.emit(indent + 1, "return r")
        function.emit(indent, "mask |= -1 - r[0]")

    def _child(self, function: Function, node: Node, at: int, indent: int, label: str) -> None:
        if id(node) in self.split:
            self._call(function, indent, self._function_for(node, at, label))
        else:
            self._node(function, node, at, indent, label)

    def _node(self, function: Function, node: Node, at: int, indent: int, label: str) -> None:
        """Code for ``node``, whose next segment is segs[at] (reached with n >= at)."""
        has_children = bool(node.children())
        if node.terminal is not None:
            function.emit(indent, f"if n == {at}:")
            self._terminal(function, node.terminal, indent + 1)
            if has_children:
                function.emit(indent, "else:")
                self._children(function, node, at, indent + 1, label)
        elif has_children:
            function.emit(indent, f"if n > {at}:")
            self._children(function, node, at, indent + 1, label)

    def _children(self, function: Function, node: Node, at: int, indent: int, label: str) -> None:
        """The children of ``node`` in precedence order; here n > at."""
        seg = f"s{at}"
        prefix = label if label.endswith("/") else label + "/"
        statics = sorted(node.static)
        params = (node.int_child, node.float_child, node.uuid_child, node.str_child)
        if statics or any(child is not None for child in params):
            function.emit(indent, f"{seg} = segs[{at}]")
        if len(statics) > MAX_MATCH_CASES:
            self._fan_out(function, node, statics, at, indent, prefix)
        elif statics:
            function.emit(indent, f"match {seg}:")
            for text in statics:
                function.emit(indent + 1, f"case {text!r}:")
                self._child(function, node.static[text], at + 1, indent + 2, prefix + text)
        if node.int_child is not None:
            function.emit(indent, f"v{at} = _int_value({seg})")
            function.emit(indent, f"if v{at} >= 0:")
            self._child(function, node.int_child, at + 1, indent + 1, prefix + "{int}")
        for check, child, name in (
            (f"_is_float({seg})", node.float_child, "{float}"),
            (f"_is_uuid({seg})", node.uuid_child, "{uuid}"),
            (seg, node.str_child, "{str}"),
        ):
            if child is not None:
                function.emit(indent, f"if {check}:")
                self._child(function, child, at + 1, indent + 1, prefix + name)
        if node.catchall is not None and node.catchall.terminal is not None:
            # The catch-all takes the rest, even a single empty segment: n > at here.
            self._terminal(function, node.catchall.terminal, indent)

    def _fan_out(self, function: Function, node: Node, statics: list[str], at: int, indent: int, prefix: str) -> None:
        table = FanOut(f"_FANOUT_{len(self.fanouts) + 1}", printable(prefix + "*"), [])
        self.fanouts.append(table)
        table.entries = [f"{text!r}: {index}," for index, text in enumerate(statics)]
        key = f"k{at}"
        function.emit(indent, f"{key} = {table.name}.get(s{at}, -1)")
        function.emit(indent, f"if {key} >= 0:")
        self._branches(function, node, statics, key, 0, len(statics), at, indent + 1, prefix)

    def _branches(
        self,
        function: Function,
        node: Node,
        statics: list[str],
        key: str,
        low: int,
        high: int,
        at: int,
        indent: int,
        prefix: str,
    ) -> None:
        """A binary search on the fan-out index over statics[low:high]."""
        if high - low <= 4:
            for index in range(low, high):
                keyword = "if" if index == low else "elif"
                function.emit(indent, f"{keyword} {key} == {index}:  # {printable(statics[index])}")
                text = statics[index]
                self._child(function, node.static[text], at + 1, indent + 1, prefix + text)
            return
        middle = (low + high) // 2
        function.emit(indent, f"if {key} < {middle}:")
        self._branches(function, node, statics, key, low, middle, at, indent + 1, prefix)
        function.emit(indent, "else:")
        self._branches(function, node, statics, key, middle, high, at, indent + 1, prefix)

    def _terminal(self, function: Function, terminal: Terminal, indent: int) -> None:
        methods = ", ".join(sorted(terminal.routes))
        patterns = " | ".join(printable(pattern) for pattern in terminal.patterns)
        function.emit(indent, f"# terminal {terminal.index}: {patterns} [{methods}]")
        params = _params_expr(terminal, function.first)
        by_route: dict[int, list[str]] = {}
        for method in sorted(terminal.lookup):
            by_route.setdefault(terminal.lookup[method], []).append(method)
        function.emit(indent, "match method:")
        for route_id in sorted(by_route):
            alternatives = " | ".join(repr(method) for method in by_route[route_id])
            function.emit(indent + 1, f"case {alternatives}:")
            function.emit(indent + 2, f"return {route_id}, {params}")
        function.emit(indent, f"mask |= 1 << {terminal.index}")


def _params_expr(terminal: Terminal, first_local: int) -> str:
    """The params tuple; locals hold the segments this function has read itself."""
    values: list[str] = []
    for position, kind in terminal.params:
        at = position + 1
        local = at >= first_local
        seg = f"s{at}" if local else f"segs[{at}]"
        if kind == INT:
            values.append(f"v{at}" if local else f"int({seg})")
        elif kind == FLOAT:
            values.append(f"float({seg})")
        elif kind == UUID:
            values.append(f"UUID({seg})")
        elif kind == CATCHALL:
            values.append(f'"/".join(segs[{at}:])')
        else:
            values.append(seg)
    if not values:
        return "_NO_PARAMS"
    if len(values) == 1:
        return f"({values[0]},)"
    return "(" + ", ".join(values) + ")"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("cello.templates", ""),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def generate_source(routes: Sequence[Route], fingerprint: str, binders: Mapping[int, BinderPlan] | None = None) -> str:
    """The dispatch module for ``routes`` (canonical order: a route's id is its index), with
    the binders of the typed routes in ``binders`` (route id -> plan)."""
    plan = build_plan(routes)
    generator = _Generator(plan)
    generator.render()
    static_paths = [
        f"{path!r}: {{{', '.join(f'{m!r}: {i}' for m, i in sorted(terminal.lookup.items()))}}},"
        for path, terminal in sorted(plan.static_paths.items())
    ]
    for function in generator.functions:
        function.label = printable(function.label)
    template = _environment().get_template("dispatch.py.j2")
    return template.render(
        module=module_name(fingerprint),
        fingerprint=fingerprint,
        generator_version=GENERATOR_VERSION,
        routes=[f"({route.method!r}, {route.pattern.raw!r})," for route in plan.routes],
        terminal_count=len(plan.terminals),
        static_paths=static_paths,
        dispatch=generator.functions[0],
        functions=generator.functions[1:],
        fanouts=generator.fanouts,
        binders=render_binders(
            binders or {}, {route_id: f"{route.method} {route.pattern.raw}" for route_id, route in enumerate(routes)}
        ),
    )
