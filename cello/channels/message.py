"""What travels on a channel: ``str``, ``bytes`` or a JSON-able value, arriving as it was sent.

Every backend carries messages as bytes with a one-byte tag saying which of the three they
were, so a subscriber gets a ``str`` for a ``str``, ``bytes`` for ``bytes`` and an equal (never
the same, shared) object for a JSON value, whether the broker is in this process or Redis.
The tags are control bytes no text starts with, so a message another program publishes to the
same Redis channel (``redis-cli PUBLISH room hello``) arrives whole, as ``bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from cello.errors import HTTPException

_TEXT: Final = b"\x01"
_BYTES: Final = b"\x02"
_JSON: Final = b"\x03"


class ChannelError(Exception):
    """Publishing or subscribing failed: the broker is unreachable, or the message cannot be sent."""


class BrokerUnavailable(ChannelError, HTTPException):
    """The broker cannot be reached. Left to escape a handler, it answers 503: the client learns
    that the service is briefly unavailable, never where the broker is (the log says that)."""

    def __init__(self, message: str) -> None:
        HTTPException.__init__(self, 503, "Service Unavailable: the channels broker cannot be reached")
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"BrokerUnavailable({self.message!r})"


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """One message as a subscriber receives it."""

    channel: str
    data: Any


def encode(data: Any) -> bytes:
    if isinstance(data, str):
        return _TEXT + data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _BYTES + bytes(data)
    try:
        return _JSON + orjson.dumps(data)
    except TypeError as exc:
        raise ChannelError(f"a channel message is str, bytes or JSON-able, not {type(data).__name__}: {exc}") from None


def decode(payload: bytes) -> Any:
    tag, body = payload[:1], payload[1:]
    if tag == _TEXT:
        return body.decode("utf-8")
    if tag == _BYTES:
        return body
    if tag == _JSON:
        return orjson.loads(body)
    return payload  # published by another program: delivered as it came


def as_sent(payload: bytes) -> str | bytes:
    """What to send on a wire that carries text or bytes: a str as it was, bytes as they were,
    a JSON value as its JSON text (already encoded: never parsed again)."""
    tag, body = payload[:1], payload[1:]
    if tag in (_TEXT, _JSON):
        return body.decode("utf-8")
    if tag == _BYTES:
        return body
    return payload
