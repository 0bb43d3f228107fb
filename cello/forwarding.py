"""A channel forwarded to a WebSocket connection: what ``ws.join(channel)`` sets up.

Fan-out is where a chat room or a live feed spends its time: one message, a thousand
connections. So a joined channel is not a task reading a queue per connection; the broker's
delivery calls ``Forwarding.deliver`` directly, and each message becomes one ``SharedMessage``
whose frame the server builds once and writes to every connection that can take it now.

A connection whose client reads slowly cannot take it now: its messages wait in a bounded
backlog, sent by a task of its own as the client catches up. When the backlog is full the
oldest message is dropped, as for any subscriber (docs/channels.md): the client falls behind,
never the publisher nor the other connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from cello.channels import Channels, Listener
from cello.channels.message import as_sent
from cello.server.interface import SharedMessage

if TYPE_CHECKING:
    from cello.server.interface import WebSocketSession

log = logging.getLogger("cello.channels")

# The message being fanned out and what it became: every connection of this process gets the
# same payload object from the broker, so the conversion (and the frame) happens once.
_last: tuple[bytes, SharedMessage] | None = None


def shared(payload: bytes) -> SharedMessage:
    global _last
    last = _last
    if last is not None and last[0] is payload:
        return last[1]
    message = SharedMessage(as_sent(payload))
    _last = (payload, message)
    return message


class Forwarding:
    """One joined channel of one connection."""

    __slots__ = ("channel", "_session", "_max_queue", "_listener", "_backlog", "_sender", "dropped", "joined")

    def __init__(self, channel: str, session: WebSocketSession, max_queue: int) -> None:
        self.channel = channel
        self._session = session
        self._max_queue = max_queue
        self._listener: Listener | None = None
        # Messages waiting for a slow client (None: none wait, the next one goes straight out).
        self._backlog: deque[SharedMessage] | None = None
        self._sender: asyncio.Task[None] | None = None
        self.dropped = 0
        # Resolved once subscribed: a concurrent join() of the same channel waits for it.
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self, channels: Channels) -> None:
        try:
            self._listener = await channels.listen(self.channel, self.deliver)
        except BaseException as exc:
            if not self.joined.done():
                self.joined.set_exception(exc)
                self.joined.exception()  # retrieved: the join() that started it raises it
            raise
        self.joined.set_result(None)

    def deliver(self, channel: str, payload: bytes) -> None:
        session = self._session
        if session.close_code:
            # The client is gone: leave now, rather than when the handler notices and ends.
            self.stop()
            return
        message = shared(payload)
        backlog = self._backlog
        if backlog is None:
            if session.send_nowait(message):
                return
            backlog = self._backlog = deque()
            self._sender = asyncio.ensure_future(self._send_backlog(backlog))
        elif len(backlog) >= self._max_queue:
            backlog.popleft()
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "a WebSocket joined to %s is %d messages behind: dropping the oldest (channel_max_queue)",
                    self.channel,
                    self._max_queue,
                )
        backlog.append(message)

    async def _send_backlog(self, backlog: deque[SharedMessage]) -> None:
        """Send what waits, each once the client has read enough, then go back to sending directly."""
        session = self._session
        while backlog:
            try:
                sent = await session.send(backlog.popleft().data)
            except Exception:  # noqa: BLE001 - an ASGI server may raise for a client gone
                sent = False
            if not sent:
                # The client is gone: leave now, rather than when the handler notices and ends.
                self._sender = None  # this task: it ends here, nothing to cancel
                self.stop()
                return
        self._backlog = None

    def stop(self) -> None:
        """Leave the channel: nothing more is delivered from now on."""
        if self._listener is not None:
            self._listener.close()
        if self._sender is not None:
            self._sender.cancel()
        self._backlog = None
