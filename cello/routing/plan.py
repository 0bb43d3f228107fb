"""Routes -> decision tree: the single source of matching semantics.

The interpreter (``interpreted.py``) walks this tree and the code generator renders it, so
both see the same nodes, the same child order and the same terminal numbers.

Matching, segment by segment from the left, tries at each node: the static child named by
the (decoded) segment, then the int, float, uuid and str param children, then the
catch-all, backtracking on failure. A terminal reached with every segment consumed answers
if it has the method (HEAD falls back to GET); otherwise it is remembered for the 405.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cello.errors import RouteError
from cello.routing.codes import terminal_mask
from cello.routing.pattern import CATCHALL, FLOAT, INT, STATIC, STR, UUID
from cello.routing.table import Route

# The param children of a node in precedence order (static children come first).
PARAM_KINDS: Final[tuple[int, ...]] = (INT, FLOAT, UUID, STR, CATCHALL)


class Terminal:
    """The end of one or more patterns of the same shape; one route per method."""

    def __init__(self, shape: str, params: tuple[tuple[int, int], ...]) -> None:
        self.index: int = -1
        self.shape: str = shape
        self.patterns: list[str] = []
        # Declared method -> route id.
        self.routes: dict[str, int] = {}
        # Method -> route id as dispatch answers it: declared routes plus HEAD -> GET.
        self.lookup: dict[str, int] = {}
        # (segment index, kind) of each param in pattern order, shared by every route here.
        self.params: tuple[tuple[int, int], ...] = params

    def allowed_methods(self) -> list[str]:
        methods = [m for m in self.routes if m != "WEBSOCKET"]
        if "GET" in self.routes and "HEAD" not in self.routes:
            methods.append("HEAD")
        return methods


class Node:
    """A tree level: children are tried static first, then by PARAM_KINDS order."""

    def __init__(self) -> None:
        self.static: dict[str, Node] = {}
        self.int_child: Node | None = None
        self.float_child: Node | None = None
        self.uuid_child: Node | None = None
        self.str_child: Node | None = None
        # A catch-all is always a pattern's last segment, so this child is a leaf terminal.
        self.catchall: Node | None = None
        self.terminal: Terminal | None = None
        # The terminal's lookup, or an empty dict: saves a None check per visit.
        self.lookup: dict[str, int] = {}
        # Whether any param child exists: static-only levels need no backtracking.
        self.dynamic: bool = False

    def param_child(self, kind: int) -> Node | None:
        if kind == INT:
            return self.int_child
        if kind == FLOAT:
            return self.float_child
        if kind == UUID:
            return self.uuid_child
        if kind == STR:
            return self.str_child
        return self.catchall

    def child_for(self, kind: int, text: str) -> Node:
        if kind == STATIC:
            node = self.static.get(text)
            if node is None:
                node = Node()
                self.static[text] = node
            return node
        found = self.param_child(kind)
        if found is not None:
            return found
        node = Node()
        self.dynamic = True
        if kind == INT:
            self.int_child = node
        elif kind == FLOAT:
            self.float_child = node
        elif kind == UUID:
            self.uuid_child = node
        elif kind == STR:
            self.str_child = node
        else:
            self.catchall = node
        return node

    def children(self) -> list[tuple[int, str, Node]]:
        """(kind, static text or "", child) in precedence order; static text sorted."""
        out: list[tuple[int, str, Node]] = [(STATIC, text, self.static[text]) for text in sorted(self.static)]
        for kind in PARAM_KINDS:
            child = self.param_child(kind)
            if child is not None:
                out.append((kind, "", child))
        return out


class Plan:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        self.root: Node = Node()
        self.terminals: list[Terminal] = []
        # Fully static path -> its terminal: a fast path for hits only.
        self.static_paths: dict[str, Terminal] = {}
        # Route id -> its terminal.
        self.route_terminal: list[Terminal] = []
        self._allow: dict[int, str] = {}
        self._allowed: dict[int, frozenset[str]] = {}
        self._build()

    def _build(self) -> None:
        for route_id, route in enumerate(self.routes):
            node = self.root
            for seg in route.pattern.segments:
                node = node.child_for(seg.kind, seg.value)
            terminal = node.terminal
            if terminal is None:
                params = tuple((i, seg.kind) for i, seg in enumerate(route.pattern.segments) if seg.kind != STATIC)
                terminal = Terminal(route.pattern.shape, params)
                node.terminal = terminal
                node.lookup = terminal.lookup
            if route.method in terminal.routes:
                other = self.routes[terminal.routes[route.method]]
                raise RouteError(
                    f"duplicate route {route.method} {route.pattern.raw!r}: declared at "
                    f"{route.source} and at {other.source}"
                )
            terminal.routes[route.method] = route_id
            if route.pattern.raw not in terminal.patterns:
                terminal.patterns.append(route.pattern.raw)
            self.route_terminal.append(terminal)
        self._number(self.root)
        for terminal in self.terminals:
            terminal.lookup.update(terminal.routes)
            if "GET" in terminal.routes and "HEAD" not in terminal.routes:
                terminal.lookup["HEAD"] = terminal.routes["GET"]
        for route_id, route in enumerate(self.routes):
            key = _static_key(route)
            if key:
                self.static_paths[key] = self.route_terminal[route_id]

    def _number(self, node: Node) -> None:
        # Pre-order in precedence order: deterministic for a given set of routes.
        if node.terminal is not None:
            node.terminal.index = len(self.terminals)
            self.terminals.append(node.terminal)
        for _, _, child in node.children():
            self._number(child)

    # -- 405 codes ---------------------------------------------------------------------

    def terminals_of(self, code: int) -> list[Terminal]:
        """The terminals whose bits a 405 code carries (see ``codes.py``)."""
        mask = terminal_mask(code)
        out: list[Terminal] = []
        while mask > 0:
            low = mask & -mask
            out.append(self.terminals[low.bit_length() - 1])
            mask ^= low
        return out

    def allowed_methods(self, code: int) -> frozenset[str]:
        found = self._allowed.get(code)
        if found is None:
            methods: set[str] = {"OPTIONS"}
            for terminal in self.terminals_of(code):
                methods.update(terminal.allowed_methods())
            found = frozenset(methods)
            self._allowed[code] = found
        return found

    def allow(self, code: int) -> str:
        """The ``Allow`` header value for a 405 code, e.g. "GET, HEAD, OPTIONS, POST"."""
        found = self._allow.get(code)
        if found is None:
            found = ", ".join(sorted(self.allowed_methods(code)))
            self._allow[code] = found
        return found

    def allows_websocket(self, code: int) -> bool:
        return any("WEBSOCKET" in terminal.routes for terminal in self.terminals_of(code))


def build_plan(routes: Sequence[Route]) -> Plan:
    """Plan routes given in canonical order (a route's id is its index)."""
    return Plan(routes)


def _static_key(route: Route) -> str:
    if not route.pattern.is_static:
        return ""
    texts = [seg.value for seg in route.pattern.segments]
    # Decoded "/" or "%" in static text would make the raw path differ from what the tree
    # compares; such routes are still found by the tree walk.
    for text in texts:
        if "/" in text or "%" in text:
            return ""
    return "/" + "/".join(texts)
