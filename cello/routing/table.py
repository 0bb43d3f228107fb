"""The route table: registration-time conflict checks, canonical order and fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Final

from cello.errors import RouteError
from cello.routing.pattern import Pattern, parse_pattern

# Bump whenever the generated dispatch module or the matching semantics change: it is
# part of every fingerprint, so stale compiled modules are refused instead of misrouting.
GENERATOR_VERSION: Final = "cello-dispatch/2"

# RFC 9110 "token" characters: what a method name may consist of.
_TCHARS: Final = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


# Whatever the app registers; routing never looks inside. A module-level name because
# mypyc, compiling a dataclass, looks field types up in the module's globals (not builtins).
Endpoint = object


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: Pattern
    endpoint: Endpoint
    source: str
    name: str = ""


def _check_method(method: str, pattern: str, source: str) -> str:
    upper = method.upper()
    if not upper or not _TCHARS.issuperset(upper):
        where = f" at {source}" if source else ""
        raise RouteError(f"invalid method {method!r} for route {pattern!r}{where}")
    return upper


def fingerprint_of(routes: list[tuple[str, str]], extra: str = "") -> str:
    """sha256 over the generator version, ``extra`` and canonical (method, pattern) pairs."""
    # JSON keeps the encoding unambiguous whatever characters a pattern holds.
    payload = json.dumps([GENERATOR_VERSION, extra, routes], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class RouteTable:
    """Routes keyed by (method, shape); ids are indexes into the canonical order."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Route] = {}
        self._sorted: list[Route] | None = None

    def add(
        self,
        method: str,
        pattern: str | Pattern,
        endpoint: object,
        source: str,
        name: str = "",
    ) -> Route:
        parsed, upper = self.check(method, pattern, source)
        key = (upper, parsed.shape)
        route = Route(upper, parsed, endpoint, source, name)
        self._by_key[key] = route
        self._sorted = None
        return route

    def check(self, method: str, pattern: str | Pattern, source: str) -> tuple[Pattern, str]:
        """Raise RouteError if (method, pattern) cannot be added; return it parsed."""
        parsed = pattern if isinstance(pattern, Pattern) else parse_pattern(pattern, source)
        upper = _check_method(method, parsed.raw, source)
        existing = self._by_key.get((upper, parsed.shape))
        if existing is not None:
            same = existing.pattern.raw == parsed.raw
            what = repr(parsed.raw) if same else f"{parsed.raw!r} (same as {existing.pattern.raw!r})"
            raise RouteError(f"duplicate route {upper} {what}: declared at {source} and already at {existing.source}")
        return parsed, upper

    def routes(self) -> list[Route]:
        """Routes in canonical order, sorted by (pattern, method): declaration order is moot."""
        if self._sorted is None:
            self._sorted = sorted(self._by_key.values(), key=_canonical_key)
        return list(self._sorted)

    def fingerprint(self, extra: str = "") -> str:
        return fingerprint_of([(r.method, r.pattern.raw) for r in self.routes()], extra)

    def __len__(self) -> int:
        return len(self._by_key)


def _canonical_key(route: Route) -> tuple[str, str]:
    return (route.pattern.raw, route.method)
