"""``memory://``: the broker inside one process (the default; ``--workers`` need Redis)."""

from __future__ import annotations

from cello.channels.subscription import Subscription


class MemoryBroker:
    """Channel name -> its subscriptions; publishing hands the message to each, in order."""

    url = "memory://"
    shared_between_processes = False

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    async def publish(self, channel: str, payload: bytes) -> None:
        for subscription in tuple(self._subscribers.get(channel, ())):
            subscription.deliver(channel, payload)

    async def add(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            self._subscribers.setdefault(channel, set()).add(subscription)

    def remove(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[channel]

    def channel_count(self) -> int:
        """Channels with at least one subscriber (nothing is kept for the others)."""
        return len(self._subscribers)

    async def close(self) -> None:
        self._subscribers.clear()
