"""Case-insensitive, multi-valued header mappings.

Request headers arrive as raw ``(name, value)`` byte pairs and are decoded only when a
handler first looks at them; response headers are a plain list of ``(name, value)`` str
pairs that the server writes as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Union

HeaderSource = Union[Mapping[str, str], Iterable[tuple[str, str]], "Headers", None]

# RFC 9110 §5.1: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: a field value is visible characters, SP, HTAB and obs-text (0x80-0xFF).
# Every other control character is refused (CR and LF above all: they would forge headers or
# a body), and so is what latin-1, the encoding of the head, cannot carry.
_NOT_FIELD_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f\u0100-\U0010ffff]")
# RFC 6265 §4.1.1: a cookie attribute's value is US-ASCII without controls or ';'.
_NOT_COOKIE_ATTRIBUTE = re.compile("[^\x20-\x3a\x3c-\x7e]")


def check_header_value(name: str, value: str) -> None:
    """Refuse a field that would not reach the client as written: a name that is not a token,
    a value with a control character other than HTAB, or a character beyond latin-1.

    Every way a handler sets a response header comes here, once, when it is set; the server
    then writes the list as it is.
    """
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid header name {name!r}: a header name is a token (RFC 9110 §5.1)")
    # Most values are printable ASCII, which needs no closer look.
    if not (value.isascii() and value.isprintable()):
        bad = _NOT_FIELD_VALUE.search(value)
        if bad is not None:
            raise ValueError(f"invalid character {bad.group()!r} in header {name!r}")


def check_cookie_name(name: str) -> None:
    """A cookie name is a token (RFC 6265 §4.1.1): ``;`` or ``=`` in it would forge attributes."""
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid cookie name {name!r}: a cookie name is a token (RFC 6265 §4.1.1)")


def check_cookie_attribute(attribute: str, value: str) -> None:
    """Path, Domain and Expires are ASCII without ';' or controls (RFC 6265 §4.1.1), so a
    value cannot add attributes of its own."""
    bad = _NOT_COOKIE_ATTRIBUTE.search(value)
    if bad is not None:
        raise ValueError(f"invalid character {bad.group()!r} in cookie {attribute} {value!r}")


def _pairs(source: HeaderSource) -> list[tuple[str, str]]:
    if source is None:
        return []
    if isinstance(source, Headers):
        return list(source.items())
    if isinstance(source, Mapping):
        return [(str(k), str(v)) for k, v in source.items()]
    return [(str(k), str(v)) for k, v in source]


class Headers(Mapping[str, str]):
    """Read-only request headers. ``headers["X-A"]`` and ``get`` give the last value;
    ``get_all`` gives every value in order."""

    __slots__ = ("_raw", "_items", "_index")

    def __init__(self, source: HeaderSource = None) -> None:
        self._raw: list[tuple[bytes, bytes]] | None = None
        self._items: list[tuple[str, str]] | None = _pairs(source)
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        headers = cls.__new__(cls)
        headers._raw = raw
        headers._items = None
        headers._index = None
        return headers

    def _build(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for name, value in self.items():
            key = name.lower()
            values = index.get(key)
            if values is None:
                index[key] = [value]
            else:
                values.append(value)
        self._index = index
        return index

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        items = self._items
        if items is None:
            raw = self._raw if self._raw is not None else []
            items = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
            self._items = items
        return items

    def raw(self) -> list[tuple[bytes, bytes]]:
        if self._raw is None:
            self._raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in self.items()]
        return self._raw

    def __getitem__(self, key: str) -> str:
        index = self._index if self._index is not None else self._build()
        return index[key.lower()][-1]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        index = self._index if self._index is not None else self._build()
        values = index.get(key.lower())
        return values[-1] if values else default

    def get_all(self, key: str) -> list[str]:
        index = self._index if self._index is not None else self._build()
        return list(index.get(key.lower(), ()))

    getlist = get_all

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        index = self._index if self._index is not None else self._build()
        return key.lower() in index

    def __iter__(self) -> Iterator[str]:
        index = self._index if self._index is not None else self._build()
        return iter(index)

    def __len__(self) -> int:
        index = self._index if self._index is not None else self._build()
        return len(index)

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


class MutableHeaders(MutableMapping[str, str]):
    """Response headers: a view over the response's own list of pairs."""

    __slots__ = ("_list",)

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._list = pairs

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        lower = key.lower()
        found = default
        for name, value in self._list:
            if name.lower() == lower:
                found = value
        return found

    def get_all(self, key: str) -> list[str]:
        lower = key.lower()
        return [value for name, value in self._list if name.lower() == lower]

    getlist = get_all

    def __setitem__(self, key: str, value: str) -> None:
        """Replace every value of ``key`` with ``value``."""
        value = str(value)
        check_header_value(key, value)
        lower = key.lower()
        self._list[:] = [(n, v) for n, v in self._list if n.lower() != lower]
        self._list.append((key, value))

    def add(self, key: str, value: str) -> None:
        """Append a value, keeping earlier ones (``Set-Cookie``, ``Vary``...)."""
        value = str(value)
        check_header_value(key, value)
        self._list.append((key, value))

    append = add

    def setdefault(self, key: str, default: str = "") -> str:
        current = self.get(key)
        if current is None:
            self[key] = default
            return default
        return current

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        kept = [(n, v) for n, v in self._list if n.lower() != lower]
        if len(kept) == len(self._list):
            raise KeyError(key)
        self._list[:] = kept

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        lower = key.lower()
        return any(n.lower() == lower for n, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for name, _ in self._list:
            seen.setdefault(name.lower(), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({name.lower() for name, _ in self._list})

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return list(self._list)

    def __repr__(self) -> str:
        return f"MutableHeaders({self._list!r})"
