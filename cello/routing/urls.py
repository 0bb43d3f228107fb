"""Building URLs from route names: the reverse of dispatch.

Each route's :class:`UrlBuilder` is made once, when the route is registered: its static text
is percent-encoded then, and each parameter keeps the converter that formats and checks its
value, so ``url_for`` only formats values and joins strings. A URL built here dispatches back
to the same route with the same parameters (tests/test_url_for.py holds it to that).
"""

from __future__ import annotations

import decimal
import difflib
import math
import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlencode

from cello.errors import RouteError, UrlBuildError
from cello.routing.converters import FLOAT_MAX_CHARS, is_float, is_int, is_uuid
from cello.routing.pattern import CATCHALL, FLOAT, INT, KIND_NAMES, STATIC, STR, UUID, Pattern

# RFC 3986 pchar minus "/": what a path segment may hold unencoded. "/" is added for the
# catch-all, whose value spans segments.
_SEGMENT_SAFE: Final = "!$&'()*+,;=:@-._~"
_PATH_SAFE: Final = _SEGMENT_SAFE + "/"


def _encode_segment(text: str, safe: str = _SEGMENT_SAFE) -> str:
    encoded = quote(text, safe=safe)
    # "." and ".." would be resolved away by clients (RFC 3986 dot segments) before they
    # reach the router: encoded, they arrive as the text they are.
    if encoded.strip(".") == "" and encoded:
        return "%2E" * len(encoded)
    return encoded


def _encode_path(text: str) -> str:
    return "/".join([_encode_segment(piece, _SEGMENT_SAFE) for piece in text.split("/")])


def format_param(kind: int, value: Any) -> str | None:
    """``value`` as its converter writes it in a URL (encoded), or None when the converter
    would not match it (so the URL could not route back to the route)."""
    if kind == INT:
        if isinstance(value, bool):
            return None
        text = str(value) if isinstance(value, int) else value
        return text if isinstance(text, str) and is_int(text) else None
    if kind == FLOAT:
        if isinstance(value, bool):
            return None
        if isinstance(value, float):
            if not math.isfinite(value):
                return None
            text = repr(value)
            if "e" in text:
                # The converter reads digits and one dot: 1e-05 is written 0.00001 (the
                # shortest repr's exact decimal, so it parses back to the same float).
                text = format(decimal.Decimal(text), "f")
        elif isinstance(value, (int, str)):
            text = str(value)
        else:
            return None
        return text if is_float(text) else None
    if kind == UUID:
        text = str(value) if isinstance(value, uuid.UUID) else value
        return text if isinstance(text, str) and is_uuid(text) else None
    text = value if isinstance(value, str) else str(value)
    if kind == CATCHALL:
        return _encode_path(text)
    return _encode_segment(text) if text else None


def _expects(kind: int) -> str:
    if kind == INT:
        return "a non-negative int of at most 18 digits"
    if kind == FLOAT:
        return f"a finite non-negative number of at most {FLOAT_MAX_CHARS} characters in decimal"
    if kind == UUID:
        return "a UUID"
    if kind == CATCHALL:
        return "a path"
    return "a non-empty string"


class UrlBuilder:
    """Formats one route's URL from parameter values."""

    __slots__ = ("name", "pattern", "source", "_pieces", "_params", "_static")

    def __init__(self, name: str, pattern: Pattern, source: str) -> None:
        self.name = name
        self.pattern = pattern
        self.source = source
        # Static segments encoded now; a param is (name, kind) and is formatted per call.
        self._pieces: list[str | tuple[str, int]] = [
            _encode_segment(seg.value) if seg.kind == STATIC else (seg.value, seg.kind) for seg in pattern.segments
        ]
        self._params = frozenset(pattern.param_names)
        # A route without params has one URL: built now.
        self._static = "" if self._params else "/" + "/".join([str(piece) for piece in self._pieces])

    @property
    def param_names(self) -> frozenset[str]:
        return self._params

    def build(self, params: Mapping[str, Any]) -> str:
        """The path (and query string, from the params that are not path params)."""
        if not self._params:
            path = self._static
        else:
            parts: list[str] = []
            for piece in self._pieces:
                if isinstance(piece, str):
                    parts.append(piece)
                    continue
                name, kind = piece
                if name not in params:
                    raise UrlBuildError(
                        f"url_for({self.name!r}): missing parameter {name!r} for route {self.pattern.raw!r}"
                        f" (needs {', '.join(repr(p) for p in self.pattern.param_names)})"
                    )
                text = format_param(kind, params[name])
                if text is None:
                    raise UrlBuildError(
                        f"url_for({self.name!r}): parameter {name!r} of route {self.pattern.raw!r} is "
                        f"{KIND_NAMES[kind] if kind != STR else 'str'}: expected {_expects(kind)}, "
                        f"got {params[name]!r}"
                    )
                parts.append(text)
            path = "/" + "/".join(parts)
        if len(params) > len(self._params):
            query = [(key, value) for key, value in params.items() if key not in self._params and value is not None]
            if query:
                path += "?" + urlencode(query, doseq=True)
        return path


class UrlMap:
    """Route name -> builders. A name may have several builders only when they serve one
    handler (a function decorated twice, a blueprint registered under two prefixes)."""

    def __init__(self) -> None:
        self._builders: dict[str, list[tuple[UrlBuilder, object]]] = {}
        # Names that several handlers made by one factory share: url_for refuses them.
        self._ambiguous: dict[str, str] = {}

    def check(self, name: str, pattern: Pattern, handler: object, source: str) -> None:
        """Raise RouteError if ``name`` is taken by another handler at another path.

        Handlers defined at one place (closures a factory makes, one per route) share their
        name without the user having chosen it: they are registered, and only url_for of
        that name is refused."""
        for builder, owner in self._builders.get(name, ()):
            if owner is not handler and builder.pattern.raw != pattern.raw and builder.source != source:
                raise RouteError(
                    f"duplicate route name {name!r}: {pattern.raw!r} declared at {source} and "
                    f"{builder.pattern.raw!r} at {builder.source}; pass name=... to one of them"
                )

    def add(self, name: str, pattern: Pattern, handler: object, source: str) -> None:
        builders = self._builders.setdefault(name, [])
        if any(builder.pattern.raw == pattern.raw for builder, _ in builders):
            return  # another method of the same path: one URL
        for builder, owner in builders:
            if owner is not handler and name not in self._ambiguous:
                self._ambiguous[name] = (
                    f"url_for: the route name {name!r} is shared by handlers made at {source} for "
                    f"{builder.pattern.raw!r} and {pattern.raw!r}; give each route its own name=..."
                )
        builders.append((UrlBuilder(name, pattern, source), handler))

    def names(self) -> list[str]:
        return sorted(self._builders)

    def build(self, name: str, params: Mapping[str, Any]) -> str:
        builders = self._builders.get(name)
        if builders is None or name in self._ambiguous:
            if name in self._ambiguous:
                raise UrlBuildError(self._ambiguous[name])
            close = difflib.get_close_matches(name, list(self._builders), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            known = "" if close else f"; known names: {', '.join(repr(n) for n in sorted(self._builders)[:20])}"
            raise UrlBuildError(f"url_for: no route named {name!r}{hint}{known}")
        if len(builders) > 1:
            # The first whose path params are all given, as Flask picks among one endpoint's rules.
            for builder, _ in builders:
                if builder.param_names <= params.keys():
                    return builder.build(params)
        return builders[0][0].build(params)
