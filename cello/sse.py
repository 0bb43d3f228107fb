"""Server-Sent Events: the event type, its wire encoding, and streams of events (among them
``SseStream.from_channel``, which forwards the messages of the app's channels)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Union

import orjson

from cello._descriptors import FactoryOrField
from cello.concurrency import iterate_in_threadpool
from cello.config import Config
from cello.response import Response, register_builder

if TYPE_CHECKING:
    from cello.channels import Channels

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
KEEPALIVE = b": keep-alive\n\n"
# Seconds of silence before a keep-alive comment, for a stream served outside any app.
DEFAULT_KEEPALIVE = Config.sse_keepalive


def _check_field(name: str, value: str | None) -> str | None:
    if value is not None and ("\n" in value or "\r" in value or "\x00" in value):
        # A newline would end the field and let the value forge a new event.
        raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")
    return value


def _data_lines(data: str) -> list[str]:
    return data.replace("\r\n", "\n").replace("\r", "\n").split("\n")


class SseEvent:
    """One event. Non-str ``data`` is sent as JSON; multi-line data as several ``data:`` lines."""

    __slots__ = ("_data", "event", "id", "retry", "comment")

    _data: Any

    def _make_data(cls, value: Any) -> SseEvent:  # noqa: N805 - bound by FactoryOrField
        return SseEvent(value)

    data: FactoryOrField[Any, SseEvent] = FactoryOrField(_make_data)

    def __init__(
        self,
        data: Any = None,
        event: str | None = None,
        id: str | int | None = None,  # noqa: A002 - the SSE field is called id
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        self.data = data
        self.event = _check_field("event", event)
        self.id = _check_field("id", None if id is None else str(id))
        if retry is not None and (not isinstance(retry, int) or retry < 0):
            raise ValueError("SSE retry must be a non-negative int (milliseconds)")
        self.retry = retry
        self.comment = comment

    @classmethod
    def with_event(cls, event: str, data: Any) -> SseEvent:
        return cls(data, event=event)

    @classmethod
    def from_item(cls, item: Any) -> SseEvent:
        """Accept what a stream may yield: an SseEvent, a dict of fields, or data."""
        if isinstance(item, SseEvent):
            return item
        if isinstance(item, dict):
            unknown = set(item) - {"data", "event", "id", "retry", "comment"}
            if unknown:
                raise ValueError(f"unknown SSE field(s): {', '.join(sorted(unknown))}")
            return cls(item.get("data"), item.get("event"), item.get("id"), item.get("retry"), item.get("comment"))
        return cls(item)

    def data_text(self) -> str | None:
        value = self._data
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bytes):
            return value.decode("utf-8")
        return orjson.dumps(value).decode("utf-8")

    def to_sse_string(self) -> str:
        lines: list[str] = []
        if self.comment is not None:
            lines.extend(f": {line}" for line in _data_lines(self.comment))
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        text = self.data_text()
        if text is not None:
            lines.extend(f"data: {line}" for line in _data_lines(text))
        if not lines:
            lines.append("data: ")
        return "\n".join(lines) + "\n\n"

    def encode(self) -> bytes:
        return self.to_sse_string().encode("utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SseEvent):
            return NotImplemented
        return (self._data, self.event, self.id, self.retry, self.comment) == (
            other._data,
            other.event,
            other.id,
            other.retry,
            other.comment,
        )

    def __repr__(self) -> str:
        return f"SseEvent(data={self._data!r}, event={self.event!r}, id={self.id!r}, retry={self.retry!r})"


# The first thing a channel's stream sends, once it is subscribed.
SUBSCRIBED = SseEvent(comment="subscribed")

EventSource = Union[AsyncIterable[Any], Iterable[Any], None]


class SseStream:
    """A stream of events from an async generator, a sync generator, or events added up front."""

    def __init__(self, source: EventSource = None, keepalive: float | None = None) -> None:
        self._source = source
        self._events: list[SseEvent] = []
        self.keepalive = keepalive

    @classmethod
    def from_channel(cls, channels: Channels, *names: str, keepalive: float | None = None) -> SseStream:
        """A stream of the messages published to the channels ``names`` (``app.channels``).

        It subscribes when the response starts being sent, then sends a ``: subscribed``
        comment (which EventSource ignores), so the response head goes out at once on every
        server and a client knows that no message published from then on is missed. It
        unsubscribes when the client disconnects or the stream is closed. Each message is one
        event with no ``event:`` field (so a browser's ``onmessage`` gets them all): a str as
        its data, bytes decoded as UTF-8 (undecodable bytes become U+FFFD), any other value as
        JSON.
        """
        if not names or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"from_channel() takes one or more non-empty channel names, not {names!r}")
        return cls(_channel_events(channels, names), keepalive)

    def add(self, event: SseEvent | dict[str, Any] | str) -> SseStream:
        self._events.append(SseEvent.from_item(event))
        return self

    def add_data(self, data: Any) -> SseStream:
        return self.add(SseEvent(data))

    def add_event(self, event: str, data: Any) -> SseStream:
        return self.add(SseEvent(data, event=event))

    def len(self) -> int:
        return len(self._events)

    def __len__(self) -> int:
        return len(self._events)

    @property
    def events(self) -> list[SseEvent]:
        return list(self._events)

    def to_response(self, keepalive: float | None = None) -> Response:
        interval = self.keepalive or keepalive or DEFAULT_KEEPALIVE
        response = Response(None, 200, None, SSE_CONTENT_TYPE)
        response.set_header("cache-control", "no-cache")
        response.set_header("x-accel-buffering", "no")
        response.body_chunks = self._encoded()
        # The server writes the keep-alive comment itself when the stream has been silent
        # that long: no timeout wraps each event, and the generator is never interrupted.
        response.idle_filler = (interval, KEEPALIVE)
        return response

    async def _items(self) -> AsyncGenerator[Any, None]:
        for event in self._events:
            yield event
        source = self._source
        if source is None:
            return
        stream = source if isinstance(source, AsyncIterable) else iterate_in_threadpool(source)
        try:
            async for item in stream:
                yield item
        finally:
            # `async for` does not close what it iterates: do it so the user's `finally` runs now.
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    async def _encoded(self) -> AsyncIterator[bytes]:
        items = self._items()
        try:
            async for item in items:
                yield SseEvent.from_item(item).encode()
        finally:
            await items.aclose()


async def _channel_events(channels: Channels, names: tuple[str, ...]) -> AsyncGenerator[SseEvent, None]:
    async with channels.subscribe(*names) as messages:
        yield SUBSCRIBED
        async for message in messages:
            yield SseEvent(_channel_data(message.data))


def _channel_data(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return orjson.dumps(data).decode("utf-8")


def _sse_response(stream: Any) -> Response:
    events = stream if isinstance(stream, SseStream) else SseStream(stream)
    return events.to_response()


register_builder("sse", _sse_response)
