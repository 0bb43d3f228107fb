"""Where a typed handler's parameter comes from, and its constraints: ``Query``, ``Header``,
``Cookie`` and ``Body``, used as ``Annotated[int, Query(ge=1, le=100)]``.

The constraints are msgspec's (``msgspec.Meta``), so a constraint means the same in a query
parameter as in a field of a body model, and documents itself the same way in OpenAPI.
"""

from __future__ import annotations

from typing import Any

import msgspec

QUERY = "query"
HEADER = "header"
COOKIE = "cookie"
BODY = "body"


class Param:
    """A parameter's source and constraints. ``name`` is its name in that source (default: the
    Python parameter's name; for headers with ``_`` as ``-``)."""

    source = ""

    __slots__ = ("name", "meta", "description", "deprecated")

    def __init__(
        self,
        name: str | None = None,
        *,
        gt: int | float | None = None,
        ge: int | float | None = None,
        lt: int | float | None = None,
        le: int | float | None = None,
        multiple_of: int | float | None = None,
        pattern: str | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        description: str | None = None,
        examples: list[Any] | None = None,
        deprecated: bool = False,
    ) -> None:
        self.name = name
        self.description = description
        self.deprecated = deprecated
        constraints = {
            "gt": gt,
            "ge": ge,
            "lt": lt,
            "le": le,
            "multiple_of": multiple_of,
            "pattern": pattern,
            "min_length": min_length,
            "max_length": max_length,
            "description": description,
            "examples": examples,
        }
        given: dict[str, Any] = {key: value for key, value in constraints.items() if value is not None}
        self.meta: msgspec.Meta | None = msgspec.Meta(**given) if given else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})" if self.name else f"{type(self).__name__}()"


class Query(Param):
    """A query-string parameter (the default for scalars; use it for a name or constraints)."""

    source = QUERY
    __slots__ = ()


class Header(Param):
    """A request header: ``Annotated[str | None, Header("x-token")]``."""

    source = HEADER
    __slots__ = ()


class Cookie(Param):
    """A cookie: ``Annotated[str, Cookie("session")]``."""

    source = COOKIE
    __slots__ = ()


class Body(Param):
    """The JSON body, for a type that would otherwise be read from the query (``list[int]``)."""

    source = BODY
    __slots__ = ()
