"""A Server-Sent Events parser written from the WHATWG HTML standard (9.2.6), for the tests.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Event:
    type: str
    data: str
    last_event_id: str


def parse(stream: str) -> tuple[list[Event], int | None]:
    """Dispatched events and the last reconnection time, as a browser's EventSource sees them."""
    events: list[Event] = []
    data = ""
    event_type = ""
    last_id = ""
    retry: int | None = None
    if stream.startswith("\ufeff"):
        stream = stream[1:]
    lines = stream.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # The final piece after the last line break is an incomplete line: ignored.
    for line in lines[:-1]:
        if line == "":
            if data:
                events.append(Event(event_type or "message", data[:-1] if data.endswith("\n") else data, last_id))
            data = ""
            event_type = ""
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\x00" not in value:
                last_id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                retry = int(value)
    return events, retry
