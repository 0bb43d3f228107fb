"""A receiver that is called with each message as the broker delivers it, with no queue.

For code inside Cello that forwards messages as they come (``ws.join``): it gets the encoded
payload (cello.channels.message) and must not block. A ``Subscription`` is the public,
queued, decoded way to receive.
"""

from __future__ import annotations

from collections.abc import Callable


class Listener:
    """Calls ``callback(channel, payload)`` for each message of ``channels`` until closed."""

    __slots__ = ("channels", "_callback", "_on_close", "_closed")

    def __init__(
        self,
        channels: tuple[str, ...],
        callback: Callable[[str, bytes], None],
        on_close: Callable[[Listener], None],
    ) -> None:
        self.channels = channels
        self._callback = callback
        self._on_close = on_close
        self._closed = False

    def deliver(self, channel: str, payload: bytes) -> None:
        if not self._closed:
            self._callback(channel, payload)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close(self)
