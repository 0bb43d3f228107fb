"""Rates and window counting, without I/O or clocks: what every store computes.

A rate is "N per period". Time is cut into windows of one period, aligned on multiples of it
(so "10/second" starts afresh at every whole second, in every process and on every Redis
client alike). A client's state is three numbers: the index of its window, the requests
counted in it (``current``) and in the window before (``previous``). Only allowed requests are
counted: a client that keeps knocking while refused does not push its own reset further away.

- fixed: a request is allowed while ``current < limit``.
- sliding: the previous window's count is weighted by the part of it still inside the sliding
  period: ``floor(previous * (period - elapsed) / period) + current < limit`` (what the
  ``limits`` library and slowapi call the sliding window counter). It smooths the burst a fixed
  window allows at its edges (``limit`` at the end of one window, ``limit`` again at the start
  of the next) at the cost of two counters per client.

The Redis store runs the same steps in a Lua script (cello/ratelimit/redis_store.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

STRATEGIES: Final = ("fixed", "sliding")
UNITS: Final = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"\s*(\d+)\s*(?:/|per\s)\s*(\d*)\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """``amount`` requests per ``period`` seconds, as parsed from ``text``."""

    amount: int
    period: int
    text: str

    def describe(self) -> str:
        """``"3 per 2 seconds"``, ``"10 per second"``: for the 429 message."""
        for unit, seconds in reversed(UNITS.items()):
            if self.period % seconds == 0:
                count = self.period // seconds
                return f"{self.amount} per {unit}" if count == 1 else f"{self.amount} per {count} {unit}s"
        return f"{self.amount} per {self.period} seconds"  # pragma: no cover - seconds divide every period


def parse_rate(text: str) -> Rate:
    """``"100/minute"``, ``"10/second"``, ``"1000/hour"``, ``"5/10seconds"``, ``"5 per day"``;
    ValueError naming ``text`` for anything else."""
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[1]) < 1 or match[2] == "0":
        raise ValueError(
            f"rate limit {text!r}: expected N/period with N >= 1, such as '100/minute', '10/second' "
            "or '5/10seconds' (periods: second, minute, hour, day)"
        )
    count = int(match[2]) if match[2] else 1
    return Rate(int(match[1]), count * UNITS[match[3].lower()], text.strip())


class Outcome:
    """What one request got: allowed or not, and what the ``RateLimit-*`` headers say.

    ``reset``: seconds until the whole quota is available again; ``retry_after``: seconds until
    a refused request would be allowed (0.0 when allowed). ``request.state.rate_limit`` is one.
    """

    __slots__ = ("allowed", "limit", "remaining", "reset", "retry_after", "rate")

    def __init__(self, allowed: bool, rate: Rate, remaining: int, reset: float, retry_after: float) -> None:
        self.allowed = allowed
        self.rate = rate
        self.limit = rate.amount
        self.remaining = remaining
        self.reset = reset
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"Outcome(allowed={self.allowed}, limit={self.limit}, remaining={self.remaining}, "
            f"reset={self.reset:.3f}, retry_after={self.retry_after:.3f})"
        )

    def reset_header(self) -> str:
        return str(math.ceil(self.reset))

    def retry_after_header(self) -> str:
        # One past the whole seconds: a sliding window's boundary is strict, so waiting exactly
        # ``retry_after`` seconds could still be refused.
        return str(int(self.retry_after) + 1)


def used(sliding: bool, period: int, current: int, previous: int, elapsed: float) -> int:
    """The requests that count against the limit at ``elapsed`` seconds into the window."""
    if not sliding or not previous:
        return current
    return int(previous * (period - elapsed) / period) + current


def roll(stored: int, index: int, current: int, previous: int) -> tuple[int, int]:
    """``(current, previous)`` of a state last written in window ``stored``, seen in ``index``."""
    if stored == index:
        return current, previous
    return 0, (current if stored == index - 1 else 0)


def outcome(rate: Rate, sliding: bool, allowed: bool, current: int, previous: int, elapsed: float) -> Outcome:
    """The outcome of a request, from the counts after it (it is in ``current`` if allowed)."""
    period = rate.period
    limit = rate.amount
    reset = (2 * period - elapsed if current else period - elapsed) if sliding else period - elapsed
    if allowed:
        return Outcome(True, rate, max(0, limit - used(sliding, period, current, previous, elapsed)), reset, 0.0)
    return Outcome(False, rate, 0, reset, retry_after(rate, sliding, current, previous, elapsed))


def retry_after(rate: Rate, sliding: bool, current: int, previous: int, elapsed: float) -> float:
    """Seconds until a request would be allowed, if no other came (the boundary itself may
    still be refused: see ``Outcome.retry_after_header``)."""
    period = rate.period
    limit = rate.amount
    if not sliding:
        return period - elapsed
    if current < limit:
        # Only the previous window's weight is in the way: wait until it has shrunk enough,
        # that is until previous * (period - t) / period < limit - current.
        assert previous > 0
        return max(0.0, period - (limit - current) * period / previous - elapsed)
    # The current window is full: in the next, it is the previous one (and the limit is at
    # least 1, so its weight falls below the limit inside that window).
    return period - elapsed + period * (1 - limit / current)


def hit(
    rate: Rate, sliding: bool, now: float, stored: int, current: int, previous: int
) -> tuple[Outcome, int, int, int]:
    """One request at ``now`` against a state ``(stored, current, previous)``: its outcome and
    the state after it. What the memory store does inline and the Redis script mirrors."""
    period = rate.period
    index = int(now // period)
    elapsed = now - index * period
    current, previous = roll(stored, index, current, previous)
    allowed = used(sliding, period, current, previous, elapsed) < rate.amount
    if allowed:
        current += 1
    return outcome(rate, sliding, allowed, current, previous, elapsed), index, current, previous
