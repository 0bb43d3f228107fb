"""Route patterns: ``"/users/{id:int}"`` -> :class:`Pattern`, validated once at registration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

from cello.errors import RouteError

# Segment kinds double as precedence ranks: a lower kind is more specific.
STATIC: Final = 0
INT: Final = 1
FLOAT: Final = 2
UUID: Final = 3
STR: Final = 4
CATCHALL: Final = 5

KIND_NAMES: Final[tuple[str, ...]] = ("static", "int", "float", "uuid", "str", "path")

# Converter name -> segment kind; "path" is the named spelling of the catch-all.
CONVERTERS: Final[dict[str, int]] = {
    "str": STR,
    "int": INT,
    "float": FLOAT,
    "uuid": UUID,
    "path": CATCHALL,
}

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Other frameworks' parameter syntax, which would otherwise be taken as literal text.
# `<name>`, Flask's `<converter:name>` (arguments allowed) and Sanic's `<name:type>`: a URL path
# never holds a raw "<" or ">", so no static text is lost by refusing them.
_ANGLE_PARAM: Final = re.compile(r"<(?:([A-Za-z_][A-Za-z0-9_]*)(?:\([^<>]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")
_FLASK_CONVERTERS: Final = frozenset({"default", "string", "any", "path", "int", "float", "uuid"})
_SANIC_TYPES: Final = frozenset({"str", "strorempty", "alpha", "slug", "path", "int", "float", "uuid", "ymd", "ext"})
# Express's `:name`, only at the start of a segment: `/a:b` and Google-style `/v1/files:batchGet`
# stay static text.
_COLON_PARAM: Final = re.compile(r"(?:^|(?<=/)):([A-Za-z_][A-Za-z0-9_]*)")
# Converters Cello spells the same; the others (string, any, slug, ...) become a plain `{name}`.
_SHARED_CONVERTERS: Final = ("int", "float", "path", "uuid")

# Characters left readable in a shape's static text; everything else is escaped so that
# static text (which may hold a decoded "{" or "/") can never collide with a param token.
_SHAPE_SAFE: Final = "!$&'()*+,;=:@-._~"


@dataclass(frozen=True, slots=True)
class Segment:
    """One "/"-separated piece of a pattern.

    ``value`` is the percent-decoded static text for ``STATIC``, else the param name.
    """

    kind: int
    value: str

    @property
    def is_param(self) -> bool:
        return self.kind != STATIC

    def shape(self) -> str:
        if self.kind == STATIC:
            return quote(self.value, safe=_SHAPE_SAFE)
        if self.kind == CATCHALL:
            return "{*}"
        return "{" + KIND_NAMES[self.kind] + "}"


@dataclass(frozen=True, slots=True)
class Pattern:
    raw: str
    segments: tuple[Segment, ...]
    param_names: tuple[str, ...]
    # Param names erased: two patterns with the same shape match exactly the same paths.
    shape: str
    is_static: bool

    @property
    def has_catchall(self) -> bool:
        return self.segments[-1].kind == CATCHALL

    def __str__(self) -> str:
        return self.raw


def _error(raw: str, reason: str, source: str) -> RouteError:
    where = f" (at {source})" if source else ""
    return RouteError(f"invalid route pattern {raw!r}{where}: {reason}")


def _known_converters() -> str:
    return ", ".join(sorted(CONVERTERS))


def _foreign_param(match: re.Match[str]) -> tuple[str, str]:
    """(framework, Cello spelling) of a parameter found by ``_ANGLE_PARAM`` or ``_COLON_PARAM``."""
    if match.re is _COLON_PARAM:
        return "Express", "{" + match[1] + "}"
    first, second = match[1], match[2]
    if first is not None and first not in _FLASK_CONVERTERS and second in _SANIC_TYPES:
        framework, name, converter = "Sanic", first, second
    else:
        framework, name, converter = "Flask", second, first
    return framework, "{" + name + (":" + converter if converter in _SHARED_CONVERTERS else "") + "}"


def _to_cello(match: re.Match[str]) -> str:
    return _foreign_param(match)[1]


def _refuse_foreign_syntax(raw: str, text: str, source: str) -> None:
    """Raise if static ``text`` holds a Flask, Sanic or Express parameter, with its Cello spelling."""
    match = _ANGLE_PARAM.search(text) or _COLON_PARAM.search(text)
    if match is None:
        return
    framework, spelling = _foreign_param(match)
    hint = f"did you mean {spelling!r}"
    rewritten = _COLON_PARAM.sub(_to_cello, _ANGLE_PARAM.sub(_to_cello, raw))
    try:
        parse_pattern(rewritten)
        hint += f", as in {rewritten!r}?"
    except RouteError:
        # `/page-<int:n>.html`: a Cello parameter is always a whole segment.
        hint += "? (a parameter must be a whole segment)"
    raise _error(
        raw,
        f"{match[0]!r} is {framework} syntax, which Cello would match as literal text; {hint} "
        "Percent-encode it to match the text itself.",
        source,
    )


def _parse_segment(raw: str, text: str, is_last: bool, source: str) -> Segment:
    has_open = "{" in text
    has_close = "}" in text
    if not has_open and not has_close:
        if text.startswith("*"):
            name = text[1:]
            if not _IDENTIFIER.match(name):
                raise _error(raw, f"bad catch-all name {text!r} (write '*name')", source)
            if not is_last:
                raise _error(raw, f"catch-all {text!r} must be the last segment", source)
            return Segment(CATCHALL, name)
        _refuse_foreign_syntax(raw, text, source)
        # Static text is matched against decoded path segments, so decode it the same way.
        value = unquote(text, encoding="utf-8", errors="replace") if "%" in text else text
        return Segment(STATIC, value)
    if text.count("{") != text.count("}") or text.find("{") > text.find("}"):
        raise _error(raw, f"unbalanced braces in segment {text!r}", source)
    if not (text.startswith("{") and text.endswith("}")) or text.count("{") != 1:
        raise _error(raw, f"a parameter must be a whole segment, got {text!r}", source)
    inner = text[1:-1]
    if not inner:
        raise _error(raw, "empty parameter '{}'", source)
    if inner.startswith("*"):
        name = inner[1:]
        kind = CATCHALL
    else:
        name, sep, converter = inner.partition(":")
        if sep and converter not in CONVERTERS:
            raise _error(
                raw,
                f"unknown converter {converter!r} in {text!r} (known: {_known_converters()})",
                source,
            )
        kind = CONVERTERS[converter] if sep else STR
    if not _IDENTIFIER.match(name):
        raise _error(raw, f"bad parameter name {name!r} in {text!r}", source)
    if kind == CATCHALL and not is_last:
        raise _error(raw, f"catch-all {text!r} must be the last segment", source)
    return Segment(kind, name)


def parse_pattern(pattern: str, source: str = "") -> Pattern:
    """Parse and validate a route pattern; ``source`` ("file:line") is quoted in errors."""
    if not pattern.startswith("/"):
        raise _error(pattern, f"a pattern must start with '/' (did you mean {'/' + pattern!r}?)", source)
    texts = pattern[1:].split("/")
    last = len(texts) - 1
    segments: list[Segment] = []
    names: list[str] = []
    for i, text in enumerate(texts):
        # An empty last segment is a trailing slash ("/" itself is one empty segment).
        if not text and i != last:
            raise _error(pattern, "empty segment ('//')", source)
        seg = _parse_segment(pattern, text, i == last, source)
        if seg.kind != STATIC:
            if seg.value in names:
                raise _error(pattern, f"duplicate parameter name {seg.value!r}", source)
            names.append(seg.value)
        segments.append(seg)
    shape = "/" + "/".join([seg.shape() for seg in segments])
    return Pattern(
        raw=pattern,
        segments=tuple(segments),
        param_names=tuple(names),
        shape=shape,
        is_static=not names,
    )
