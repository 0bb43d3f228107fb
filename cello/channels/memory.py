"""``memory://``: the broker inside one process (the default; ``--workers`` need Redis)."""

from __future__ import annotations

from cello.channels.broker import LocalSubscribers, Receiver


class MemoryBroker:
    """Publishing hands the message to each subscription of the channel in this process, in order."""

    url = "memory://"
    shared_between_processes = False

    def __init__(self) -> None:
        self._local = LocalSubscribers()

    async def publish(self, channel: str, payload: bytes) -> None:
        self._local.deliver(channel, payload)

    async def add(self, receiver: Receiver) -> None:
        self._local.add(receiver)

    def remove(self, receiver: Receiver) -> None:
        self._local.remove(receiver)

    def channel_count(self) -> int:
        return len(self._local)

    def channel_names(self) -> set[str]:
        return self._local.channels()

    async def close(self) -> None:
        self._local.clear()
