"""The interpreted binder: a plan's parameters bound from a request, one after the other.

``cello build`` renders the same steps as straight-line code per route into the compiled
dispatch module (codegen/binders.py); the two must agree value for value and problem for
problem (tests/test_binding_equivalence.py holds them to it). Every problem found is
collected, so one 422 names them all.
"""

from __future__ import annotations

from typing import Any

from cello.binding.markers import BODY, COOKIE, HEADER, QUERY
from cello.binding.plan import FILE, FILES, FORM, PATH, REQUEST, BinderPlan
from cello.request import Request


def bind(request: Request, plan: BinderPlan) -> list[Any]:
    """The handler's arguments, in signature order; raises the 422 listing every problem."""
    args: list[Any] = []
    problems: list[Any] = []
    converters = plan.converters
    for index, param in enumerate(plan.params):
        source = param.source
        if source == REQUEST:
            args.append(request)
            continue
        raw = _fetch(request, plan, source, param.key, param.multiple)
        if raw is None:
            if param.required:
                problems.extend(plan.missing(index))
            args.append(plan.defaults[index])
            continue
        converter = converters[index]
        if converter is None:
            args.append(raw)
            continue
        try:
            args.append(converter(raw))
        except ValueError as exc:
            problems.extend(plan.problems(index, exc))
            args.append(None)
    if problems:
        raise plan.failed(problems)
    return args


def _fetch(request: Request, plan: BinderPlan, source: str, key: str, multiple: bool) -> Any:
    """The raw value of one parameter, None when the request has none."""
    if source == PATH:
        return request.params.get(key)
    if source == QUERY:
        return (request.query.get_all(key) or None) if multiple else request.query.get(key)
    if source == HEADER:
        return (request.headers.get_all(key) or None) if multiple else request.headers.get(key)
    if source == COOKIE:
        return request.cookies.get(key)
    if source == BODY:
        return plan.read_body(request)
    if source == FORM:
        return request.form()
    if source == FILE:
        return request.form().get_file(key)
    if source == FILES:
        return request.form().get_files(key) or None
    raise AssertionError(f"unknown parameter source {source!r}")
