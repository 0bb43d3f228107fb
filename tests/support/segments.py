"""Path segment values on the edges of the param kinds (int, float, uuid, str, catch-all), for
the routing property tests: the plan (tests/test_plan.py) and the routers' equivalence
(tests/test_router_equivalence.py) draw request paths from them."""

from __future__ import annotations

SEGMENT_VALUES = [
    "a",
    "b",
    "users",
    "items",
    "x",
    "5",
    "007",
    "1.5",
    "0.5",
    "9" * 18,
    "9" * 19,
    "١",
    "٣.٥",
    "０",
    "%35",
    "%C3%A9",
    "é",
    "a%2Fb",
    "%2F",
    "%ZZ",
    "%FF",
    "%",
    "12345678-1234-1234-1234-1234567890ab",
    "12345678-1234-1234-1234-1234567890AB",
    "12345678-1234-1234-1234-1234567890a",
    "",
    "5.",
    ".5",
    "1.2.3",
    "-1",
    "1e5",
    "+5",
    "1" * 65,
    "12345678-1234-1234-1234-12345678901g",
    "-" * 36,
]
