"""What a dispatch function answers: ``(code, params)``, and the names of its codes.

Every executor of a plan (``interpreted.py``, the generated module of ``templates/``, its
mypyc build) answers with one int code:

- a route id (``code >= FIRST_ROUTE``): the index of the route in canonical order;
- ``NOT_FOUND``: no route matches the path (404);
- a 405 code (``code < NOT_FOUND``): routes match the path, none has the method; it is
  ``-1 - mask``, where bit ``t`` of ``mask`` is set for each matching terminal ``t``
  (``Plan.allow(code)`` decodes it into the ``Allow`` header).

The generated module spells these numbers out (it imports nothing of Cello, and a literal is
what mypyc compiles best); everything else reads them through the names here.
"""

from __future__ import annotations

from typing import Final

FIRST_ROUTE: Final = 0
"""Route ids count from here: a code at least this is a route id."""
NOT_FOUND: Final = -1
"""No route matches the path."""


def is_route(code: int) -> bool:
    """Whether ``code`` is a route id."""
    return code >= FIRST_ROUTE


def is_method_not_allowed(code: int) -> bool:
    """Whether ``code`` says routes match the path but not the method (405)."""
    return code < NOT_FOUND


def method_not_allowed(mask: int) -> int:
    """The 405 code for a non-empty bit mask of matching terminals (``NOT_FOUND`` for 0)."""
    return -1 - mask


def terminal_mask(code: int) -> int:
    """The bit mask of matching terminals a 405 code carries (0 for ``NOT_FOUND``)."""
    return -1 - code
