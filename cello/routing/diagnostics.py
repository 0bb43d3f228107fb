"""What ``cello routes`` and ``cello build`` tell about a plan: routes no path can reach
(shadowed) and the decision tree printed by ``cello routes --tree``.

Build and command-line time only: the server never calls these.
"""

from __future__ import annotations

from urllib.parse import quote

from cello.routing.codes import is_route
from cello.routing.interpreted import InterpretedRouter
from cello.routing.pattern import CATCHALL, FLOAT, INT, KIND_NAMES, STATIC, UUID
from cello.routing.plan import Node, Plan
from cello.routing.table import Route


def shadowed(plan: Plan) -> list[str]:
    """Warnings for routes some method can never reach.

    Each route is probed with a witness path: its static text, and for each param a
    value that no static text and no more specific converter accepts ("~" for str,
    "0.5" for float, a catch-all rest of "/" i.e. two empty segments, which only a
    catch-all matches). Any route that matches the witness is then the same shape or
    less specific at the first difference, so the route must win it for its methods.
    With the current converters every route therefore has a witness and this list is
    empty; the probe stays as a check on that argument and on future converters.
    """
    router = InterpretedRouter(plan)
    statics: set[str] = set()
    for route in plan.routes:
        for seg in route.pattern.segments:
            if seg.kind == STATIC:
                statics.add(seg.value)
    warnings: list[str] = []
    for route_id, route in enumerate(plan.routes):
        path = _witness(route, statics)
        code = router.dispatch(route.method, path)[0]
        if code != route_id:
            winner = plan.routes[code].pattern.raw if is_route(code) else "nothing"
            warnings.append(
                f"route {route.method} {route.pattern.raw!r} at {route.source} looks "
                f"unreachable: its witness path {path!r} goes to {winner}"
            )
    return warnings


def format_tree(plan: Plan) -> str:
    """The decision tree, one node per line (``cello routes --tree``)."""
    lines: list[str] = []
    _format(plan.root, "", lines, plan.routes)
    return "\n".join(lines)


def _witness_value(kind: int, k: int) -> str:
    # The k-th value accepted by ``kind`` and by no more specific kind but static text.
    if kind == INT:
        return str(7 * 10**k)
    if kind == FLOAT:
        return "0." + "5" * (k + 1)
    if kind == UUID:
        return f"00000000-0000-4000-8000-{k:012x}"
    return "~" * (k + 1)


def _witness(route: Route, statics: set[str]) -> str:
    parts: list[str] = []
    for seg in route.pattern.segments:
        if seg.kind == STATIC:
            # Percent-encoded so that the decoded segment is exactly the static text.
            parts.append(quote(seg.value, safe="!$&'()*+,;=:@-._~"))
        elif seg.kind == CATCHALL:
            parts.append("/")
        else:
            k = 0
            while _witness_value(seg.kind, k) in statics:
                k += 1
            parts.append(_witness_value(seg.kind, k))
    return "/" + "/".join(parts)


def _format(node: Node, indent: str, lines: list[str], routes: tuple[Route, ...]) -> None:
    terminal = node.terminal
    if terminal is not None:
        methods = ", ".join(
            f"{method} -> #{rid} {routes[rid].pattern.raw}" for method, rid in sorted(terminal.routes.items())
        )
        lines.append(f"{indent}= terminal {terminal.index}: {methods}")
    for kind, text, child in node.children():
        label = repr(text) if kind == STATIC else "{" + KIND_NAMES[kind] + "}"
        lines.append(f"{indent}{label}")
        _format(child, indent + "  ", lines, routes)
