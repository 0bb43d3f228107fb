"""What every broker is, and the part they share: handing messages to this process's receivers.

A broker moves encoded messages (cello.channels.message) between publishers and the
subscriptions of the processes using it. Whatever carries a message between processes, the
last step is the same: ``LocalSubscribers`` finds the subscriptions of its channel in this
process and delivers it to each one.
"""

from __future__ import annotations

from typing import Protocol


class Receiver(Protocol):
    """Where a broker delivers: a subscription (cello.channels.subscription) or a listener."""

    @property
    def channels(self) -> tuple[str, ...]: ...

    def deliver(self, channel: str, payload: bytes) -> None:
        """Take one message; never blocks."""


class Broker(Protocol):
    url: str
    # Whether workers (--workers N) and other instances see each other's messages.
    shared_between_processes: bool

    async def publish(self, channel: str, payload: bytes) -> None: ...

    async def add(self, receiver: Receiver) -> None:
        """Start delivering to ``receiver``; returns once a message published after it would arrive."""

    def remove(self, receiver: Receiver) -> None:
        """Stop delivering to ``receiver`` (called when it closes; never blocks)."""

    def channel_count(self) -> int:
        """Channels this process has at least one subscriber for."""

    def channel_names(self) -> set[str]:
        """Those channels' names."""

    async def close(self) -> None: ...


class LocalSubscribers:
    """Channel name -> its receivers in this process, and nothing for a channel without any."""

    def __init__(self) -> None:
        self._by_channel: dict[str, set[Receiver]] = {}

    def add(self, receiver: Receiver) -> None:
        for channel in receiver.channels:
            self._by_channel.setdefault(channel, set()).add(receiver)

    def remove(self, receiver: Receiver) -> None:
        for channel in receiver.channels:
            receivers = self._by_channel.get(channel)
            if receivers is not None:
                receivers.discard(receiver)
                if not receivers:
                    del self._by_channel[channel]

    def deliver(self, channel: str, payload: bytes) -> None:
        # Every receiver gets the same bytes object: one that prepares what it sends from it
        # (a WebSocket frame) can do so once per message rather than once per receiver.
        for receiver in tuple(self._by_channel.get(channel, ())):
            receiver.deliver(channel, payload)

    def channels(self) -> set[str]:
        return set(self._by_channel)

    def __len__(self) -> int:
        return len(self._by_channel)

    def clear(self) -> None:
        self._by_channel.clear()
