"""Routing: patterns -> route table -> plan, executed by the interpreter or compiled code."""

from cello.routing.interpreted import InterpretedRouter
from cello.routing.pattern import Pattern, Segment, parse_pattern
from cello.routing.plan import Plan, build_plan
from cello.routing.table import GENERATOR_VERSION, Route, RouteTable, fingerprint_of

__all__ = [
    "GENERATOR_VERSION",
    "InterpretedRouter",
    "Pattern",
    "Plan",
    "Route",
    "RouteTable",
    "Segment",
    "build_plan",
    "fingerprint_of",
    "parse_pattern",
]
