"""A name that is a factory on the class and a field on instances.

Cello's documentation spells some constructors like the field they fill:
``SseEvent.data(x)`` builds an event while ``event.data`` reads its data, and
``WebSocketMessage.text("hi")`` builds a message while ``message.text`` reads its text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")  # the field's type, read on instances
M = TypeVar("M")  # what the factory builds, called on the class


class FactoryOrField(Generic[T, M]):
    """On the class: ``factory`` bound as a classmethod. On an instance: the ``_<name>`` slot."""

    def __init__(self, factory: Callable[..., M]) -> None:
        self._factory = factory
        self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = "_" + name

    @overload
    def __get__(self, obj: None, owner: type) -> Callable[..., M]: ...

    @overload
    def __get__(self, obj: object, owner: type) -> T: ...

    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self._factory.__get__(owner, owner)
        return getattr(obj, self._slot)

    def __set__(self, obj: object, value: T) -> None:
        setattr(obj, self._slot, value)
