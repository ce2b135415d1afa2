"""In-memory rate limits and rate-limited logging, per process.

`RateLimiter` is GCRA (a token bucket kept as one float per key: the time at which the
key's bucket would be full again). `BoundedLog` writes at most one line per key per
interval and counts the lines it held back, so a flood of refusals costs a handful of
log lines instead of one per request.

Both live in the process's memory: with several bot processes behind a balancer each
has its own budget (a client may get up to N times the limit across N processes), and
a restart forgets every bucket. That is enough to stop one client from hammering the
database through one process; a shared limit would need a shared store.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class RateLimiter:
    """`rate` requests per second per key, bursts of up to `burst`.

    Keys are evicted least recently used first beyond `max_keys`: memory stays bounded
    whatever the number of clients (an evicted key starts again with a full bucket).
    """

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = self._interval * (burst - 1)
        self._max_keys = max_keys
        self._clock = clock
        self._full_at: OrderedDict[Any, float] = OrderedDict()

    def hit(self, key: Any) -> float:
        """Take one request for `key`: 0.0 if allowed, else seconds until it would be."""
        now = self._clock()
        full_at = max(self._full_at.get(key, now), now)
        wait = full_at - now - self._tolerance
        if wait > 0:
            return wait
        self._full_at[key] = full_at + self._interval
        self._full_at.move_to_end(key)
        while len(self._full_at) > self._max_keys:
            self._full_at.popitem(last=False)
        return 0.0

    def __len__(self) -> int:
        return len(self._full_at)


def retry_after_header(wait: float) -> str:
    """Retry-After is whole seconds; never 0 (a client would retry at once)."""
    return str(max(1, math.ceil(wait)))


class BoundedLog:
    """At most one line per key per `interval` seconds, and at most `per_interval` lines
    per interval in all; the lines held back are counted in the key's next line
    (`suppressed`) and, for the overall cap, in the next line written (`dropped`)."""

    def __init__(self, logger: logging.Logger, *, interval: float = 60.0, per_interval: int = 100,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._max_keys = max_keys
        self._keys: OrderedDict[Any, list[float]] = OrderedDict()  # key -> [last line at, held back]
        self._overall = RateLimiter(per_interval / interval, per_interval, clock=clock)
        self._dropped = 0

    def log(self, key: Any, msg: str, level: int = logging.INFO, **fields: Any) -> bool:
        """Write `msg` with `fields` unless this key (or everything) wrote recently; True if written."""
        now = self._clock()
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return False
        if self._overall.hit(None):
            self._dropped += 1
            if entry is not None:
                entry[1] += 1
            return False
        suppressed = int(entry[1]) if entry is not None else 0
        self._keys[key] = [now, 0]
        self._keys.move_to_end(key)
        while len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)
        extra = dict(fields, suppressed=suppressed)
        if self._dropped:
            extra["dropped"], self._dropped = self._dropped, 0
        self.logger.log(level, msg, extra=extra)
        return True
