"""Dev-mode dispatch: walks the plan's tree at run time (and is the oracle in tests)."""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

from cello.routing.converters import convert, is_float, is_int, is_uuid
from cello.routing.pattern import STR
from cello.routing.plan import Node, Plan

_NO_PARAMS: Final[tuple[object, ...]] = ()


def _find(node: Node, segs: list[str], i: int, n: int, method: str) -> int:
    """The id of the first route (in precedence order) matching segs[i:] and the method."""
    # Static-only levels leave nothing to backtrack to: descend them without recursing.
    while not node.dynamic:
        if i == n:
            return node.lookup.get(method, -1)
        static_child = node.static.get(segs[i])
        if static_child is None:
            return -1
        node = static_child
        i += 1
    if i == n:
        return node.lookup.get(method, -1)
    seg = segs[i]
    child = node.static.get(seg)
    if child is not None:
        found = _find(child, segs, i + 1, n, method)
        if found >= 0:
            return found
    child = node.int_child
    if child is not None and is_int(seg):
        found = _find(child, segs, i + 1, n, method)
        if found >= 0:
            return found
    child = node.float_child
    if child is not None and is_float(seg):
        found = _find(child, segs, i + 1, n, method)
        if found >= 0:
            return found
    child = node.uuid_child
    if child is not None and is_uuid(seg):
        found = _find(child, segs, i + 1, n, method)
        if found >= 0:
            return found
    child = node.str_child
    if child is not None and seg:
        found = _find(child, segs, i + 1, n, method)
        if found >= 0:
            return found
    child = node.catchall
    if child is not None:
        return child.lookup.get(method, -1)
    return -1


def _collect(node: Node, segs: list[str], i: int, n: int) -> int:
    """The bit mask of every terminal matching segs[i:], whatever the method."""
    if i == n:
        terminal = node.terminal
        return 0 if terminal is None else 1 << terminal.index
    seg = segs[i]
    mask = 0
    child = node.static.get(seg)
    if child is not None:
        mask |= _collect(child, segs, i + 1, n)
    child = node.int_child
    if child is not None and is_int(seg):
        mask |= _collect(child, segs, i + 1, n)
    child = node.float_child
    if child is not None and is_float(seg):
        mask |= _collect(child, segs, i + 1, n)
    child = node.uuid_child
    if child is not None and is_uuid(seg):
        mask |= _collect(child, segs, i + 1, n)
    child = node.str_child
    if child is not None and seg:
        mask |= _collect(child, segs, i + 1, n)
    child = node.catchall
    if child is not None:
        terminal = child.terminal
        if terminal is not None:
            mask |= 1 << terminal.index
    return mask


class InterpretedRouter:
    def __init__(self, plan: Plan) -> None:
        self.plan: Plan = plan
        self._root: Node = plan.root
        self._static: dict[str, dict[str, int]] = {
            path: terminal.lookup for path, terminal in plan.static_paths.items()
        }
        # (index into path.split("/"), kind) per param: the leading "" shifts indexes by one.
        self._params: list[tuple[tuple[int, int], ...]] = [
            tuple([(index + 1, kind) for index, kind in t.params]) for t in plan.route_terminal
        ]

    def dispatch(self, method: str, path: str) -> tuple[int, tuple[object, ...]]:
        """``(route id, params)``; ``(-1, ())`` for 404; ``(code <= -2, ())`` for 405."""
        lookup = self._static.get(path)
        if lookup is not None:
            route_id = lookup.get(method, -1)
            if route_id >= 0:
                return route_id, _NO_PARAMS
            # A param route further down may still have the method: walk the tree.
        segs = path.split("/")
        if segs[0]:
            # Not starting with "/" (splitting whole saves a slice: segment k is segs[k + 1]).
            return -1, _NO_PARAMS
        if "%" in path:
            # Decode after splitting so that an encoded "/" stays inside its segment.
            segs = [unquote(seg, "utf-8", "replace") for seg in segs]
        n = len(segs)
        route_id = _find(self._root, segs, 1, n, method)
        if route_id >= 0:
            spec = self._params[route_id]
            if not spec:
                return route_id, _NO_PARAMS
            if len(spec) == 1:
                # The common single-param case, without a list and a comprehension.
                index, kind = spec[0]
                return route_id, (segs[index] if kind == STR else convert(kind, segs, index),)
            return route_id, tuple([convert(kind, segs, index) for index, kind in spec])
        mask = _collect(self._root, segs, 1, n)
        if mask == 0:
            return -1, _NO_PARAMS
        return -1 - mask, _NO_PARAMS

    def allow(self, code: int) -> str:
        return self.plan.allow(code)

    def allowed_methods(self, code: int) -> frozenset[str]:
        return self.plan.allowed_methods(code)

    def allows_websocket(self, code: int) -> bool:
        return self.plan.allows_websocket(code)
