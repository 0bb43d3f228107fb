"""Binder plans -> the typed routes' binders, rendered into the dispatch module.

A generated binder does what ``cello.binding.binder.bind`` does for the same plan, unrolled:
one block per parameter, its source and key written into the code, no loop and no branching
on the kind of source per request. Everything that is a Python object rather than code (the
converters, the defaults, how problems are worded) is read from the plan the binder is called
with, so the module imports nothing of the app and stays valid for any plan with the same
``BinderPlan.signature()`` (which is part of the build's fingerprint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cello.binding.markers import BODY, COOKIE, HEADER, QUERY
from cello.binding.plan import FILE, FILES, FORM, PATH, REQUEST, BinderPlan, Parameter, describe_type

from .text import printable

_INDENT = "    "


@dataclass
class RenderedBinder:
    """The source lines of one route's binder function (the template prints them)."""

    route_id: int
    name: str
    doc: str
    lines: list[str] = field(default_factory=list)


def _safe(text: str) -> str:
    """``text`` on one line, safe inside a comment or docstring of the generated module."""
    return printable(" ".join(text.split()))


def _fetch(param: Parameter) -> str:
    """The expression of a parameter's raw value (None when the request has none); ``query``,
    ``headers`` and ``cookies`` are locals read once per request."""
    key = repr(param.key)
    source = param.source
    if source == PATH:
        return f"request.params.get({key})"
    if source in (QUERY, HEADER):
        mapping = "query" if source == QUERY else "headers"
        return f"({mapping}.get_all({key}) or None)" if param.multiple else f"{mapping}.get({key})"
    if source == COOKIE:
        return f"cookies.get({key})"
    if source == BODY:
        return "plan.read_body(request)"
    if source == FORM:
        return "request.form()"
    if source == FILE:
        return f"request.form().get_file({key})"
    if source == FILES:
        return f"(request.form().get_files({key}) or None)"
    raise AssertionError(f"unknown parameter source {source!r}")


def render_binder(route_id: int, route: str, plan: BinderPlan) -> RenderedBinder:
    handler = plan.handler
    name = getattr(handler, "__qualname__", repr(handler))
    arguments = ", ".join(param.name for param in plan.params)
    binder = RenderedBinder(route_id, f"_bind_{route_id}", _safe(f"{route} -> {name}({arguments})"))

    def emit(indent: int, line: str) -> None:
        binder.lines.append(_INDENT * indent + line)

    if not plan.params:
        emit(1, "return []")
        return binder
    sources = {param.source for param in plan.params}
    if any(param.convert is not None for param in plan.params):
        emit(1, "converters = plan.converters")
    if any(param.source != REQUEST for param in plan.params):
        emit(1, "defaults = plan.defaults")
    for source, local in ((QUERY, "query"), (HEADER, "headers"), (COOKIE, "cookies")):
        if source in sources:
            emit(1, f"{local} = request.{local}")
    emit(1, "problems: list[object] = []")
    for index, param in enumerate(plan.params):
        value = f"a{index}"
        where = "the request" if param.source == REQUEST else f"{param.source} {param.key!r}"
        qualities = [where, "required" if param.required else "optional"]
        if param.multiple:
            qualities.append("every value")
        if param.convert is not None:
            qualities.append("converted")
        emit(1, f"# {index}. {_safe(param.name)}: {_safe(describe_type(param.type))} ({', '.join(qualities)})")
        if param.source == REQUEST:
            emit(1, f"{value}: object = request")
            continue
        emit(1, f"{value}: object = {_fetch(param)}")
        emit(1, f"if {value} is None:")
        if param.required:
            emit(2, f"problems.extend(plan.missing({index}))")
        emit(2, f"{value} = defaults[{index}]")
        if param.convert is not None:
            emit(1, "else:")
            emit(2, "try:")
            emit(3, f"{value} = converters[{index}]({value})")
            emit(2, "except ValueError as exc:")
            emit(3, f"problems.extend(plan.problems({index}, exc))")
            emit(3, f"{value} = None")
    emit(1, "if problems:")
    emit(2, "raise plan.failed(problems)")
    emit(1, "return [" + ", ".join(f"a{index}" for index in range(len(plan.params))) + "]")
    return binder


def render_binders(plans: Mapping[int, BinderPlan], routes: Mapping[int, str]) -> list[RenderedBinder]:
    """The binders of ``plans`` (route id -> plan), in route-id order; ``routes`` names each
    route (``GET /notes``) for its docstring."""
    return [render_binder(route_id, routes[route_id], plans[route_id]) for route_id in sorted(plans)]
