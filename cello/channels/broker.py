"""What every broker is, and the part they share: handing messages to this process's subscribers.

A broker moves encoded messages (cello.channels.message) between publishers and the
subscriptions of the processes using it. Whatever carries a message between processes, the
last step is the same: ``LocalSubscribers`` finds the subscriptions of its channel in this
process and delivers it to each one.
"""

from __future__ import annotations

from typing import Protocol

from cello.channels.subscription import Subscription


class Broker(Protocol):
    url: str
    # Whether workers (--workers N) and other instances see each other's messages.
    shared_between_processes: bool

    async def publish(self, channel: str, payload: bytes) -> None: ...

    async def add(self, subscription: Subscription) -> None:
        """Start delivering to ``subscription``; returns once a message published after it would arrive."""

    def remove(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription`` (called when it closes; never blocks)."""

    def channel_count(self) -> int:
        """Channels this process has at least one subscriber for."""

    def channel_names(self) -> set[str]:
        """Those channels' names."""

    async def close(self) -> None: ...


class LocalSubscribers:
    """Channel name -> its subscriptions in this process, and nothing for a channel without any."""

    def __init__(self) -> None:
        self._by_channel: dict[str, set[Subscription]] = {}

    def add(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            self._by_channel.setdefault(channel, set()).add(subscription)

    def remove(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            subscribers = self._by_channel.get(channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_channel[channel]

    def deliver(self, channel: str, payload: bytes) -> None:
        for subscription in tuple(self._by_channel.get(channel, ())):
            subscription.deliver(channel, payload)

    def channels(self) -> set[str]:
        return set(self._by_channel)

    def __len__(self) -> int:
        return len(self._by_channel)

    def clear(self) -> None:
        self._by_channel.clear()
