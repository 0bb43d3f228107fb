"""``memory://``: counters in this process (one worker's view; see docs for ``--workers``).

One dict per limit, client key -> ``[window, current, previous]``; a request costs a lookup and
a little arithmetic. Memory stays bounded: a key whose windows are both over counts nothing and
is dropped by a sweep that runs each time the dict has doubled since the last one (amortised
O(1) per request), and past ``MAX_KEYS`` live keys the oldest are forgotten (those clients
start afresh) with a warning, rather than letting a flood of distinct keys eat the memory.
"""

from __future__ import annotations

import logging
from typing import Final

from cello.ratelimit.window import Outcome, Rate, outcome

log = logging.getLogger("cello.ratelimit")

# Live keys one limit keeps per process; each costs about 200 bytes.
MAX_KEYS: Final = 100_000
# The dict size that triggers the first sweep.
FIRST_SWEEP: Final = 1024


class MemoryCounters:
    """The counters of one limit (one ``enable_rate_limit`` or ``rate_limit=`` route option)."""

    __slots__ = ("rate", "sliding", "_entries", "_sweep_at", "_max_keys", "_warned")

    def __init__(self, rate: Rate, sliding: bool, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.sliding = sliding
        self._entries: dict[str, list[int]] = {}
        self._sweep_at = FIRST_SWEEP
        self._max_keys = max_keys
        self._warned = False

    def __len__(self) -> int:
        return len(self._entries)

    def hit(self, key: str, now: float) -> Outcome:
        rate = self.rate
        period = rate.period
        index = int(now // period)
        elapsed = now - index * period
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._sweep_at:
                self._sweep(index)
            entry = [index, 0, 0]
            self._entries[key] = entry
        elif entry[0] != index:
            entry[2] = entry[1] if entry[0] == index - 1 else 0
            entry[1] = 0
            entry[0] = index
        current = entry[1]
        previous = entry[2]
        if self.sliding and previous:
            used = int(previous * (period - elapsed) / period) + current
        else:
            used = current
        if used < rate.amount:
            # window.outcome's allowed case, inline: the one every request of a client under
            # its limit takes (the tests hold the two equal).
            entry[1] = current + 1
            reset = (2 * period if self.sliding else period) - elapsed
            return Outcome(True, rate, rate.amount - used - 1, reset, 0.0)
        return outcome(rate, self.sliding, False, current, previous, elapsed)

    def _sweep(self, index: int) -> None:
        entries = self._entries
        # Last counted before the previous window: nothing of it counts any more.
        for key in [key for key, entry in entries.items() if entry[0] < index - 1]:
            del entries[key]
        if len(entries) >= self._max_keys:
            if not self._warned:
                self._warned = True
                log.warning(
                    "rate limit %s: more than %d clients in two windows; forgetting the oldest "
                    "(they start afresh). Use a Redis store for this many clients",
                    self.rate.text,
                    self._max_keys,
                )
            # A tenth more than needed, so that the next sweep is that many new keys away.
            for key in list(entries)[: len(entries) - self._max_keys * 9 // 10]:
                del entries[key]
        self._sweep_at = min(max(FIRST_SWEEP, 2 * len(entries)), self._max_keys)


class MemoryStore:
    """Counters kept by this process, by limit: they survive the app rebuilding its endpoints."""

    url = "memory://"
    shared_between_processes = False

    def __init__(self) -> None:
        self._counters: dict[tuple[str, Rate, bool], MemoryCounters] = {}

    def counters(self, namespace: str, rate: Rate, sliding: bool) -> MemoryCounters:
        found = self._counters.get((namespace, rate, sliding))
        if found is None:
            found = self._counters[(namespace, rate, sliding)] = MemoryCounters(rate, sliding)
        return found

    async def close(self) -> None:
        """Nothing to close: the counters live as long as the app."""
