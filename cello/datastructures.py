"""Small mappings shared by requests and forms."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Union
from urllib.parse import parse_qsl

QuerySource = Union[str, bytes, Mapping[str, str], Iterable[tuple[str, str]], None]


class MultiDict(dict[str, str]):
    """A plain dict of the last value per key (so it serialises and compares like one),
    which also remembers every value: ``get_all(key)``."""

    __slots__ = ("_all",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        everything: dict[str, list[str]] = {}
        for key, value in pairs:
            self[key] = value
            values = everything.get(key)
            if values is None:
                everything[key] = [value]
            else:
                values.append(value)
        self._all = everything

    def get_all(self, key: str) -> list[str]:
        return list(self._all.get(key, ()))

    getlist = get_all

    def multi_items(self) -> list[tuple[str, str]]:
        return [(k, v) for k, values in self._all.items() for v in values]


class QueryParams(MultiDict):
    """Query-string parameters: last value wins, ``get_all`` gives every value."""

    __slots__ = ()

    @classmethod
    def parse(cls, source: QuerySource) -> QueryParams:
        if source is None:
            return cls()
        if isinstance(source, bytes):
            source = source.decode("latin-1")
        if isinstance(source, str):
            return cls(parse_qsl(source, keep_blank_values=True))
        if isinstance(source, Mapping):
            return cls((str(k), str(v)) for k, v in source.items())
        return cls((str(k), str(v)) for k, v in source)
