"""Rate limits and rate-limited logging.

The limits players and clients meet are one budget shared by every bot and web process:
`SharedLimits` asks PostgreSQL (`api.rate_limit_lease`, migration 0011: GCRA buckets in
an UNLOGGED table; the rate and burst of each bucket are rows of `ops.rate_limits`,
changed live with `ops.set_rate_limit`). It remembers each refusal until the wait the
database gave, so a flooding key costs the database one call per refusal window, not one
per request, and takes a busy key's requests a lease at a time. The chat's own admission
(`api.admit_update`: the same update seen by two processes is handled once, and the
per-user and per-group limits) is in bot/middlewares.py and uses the same memory.

`RateLimiter` is the same algorithm (GCRA: one float per key, the time at which the key's
bucket would be full again) in this process's memory, for what must not touch the
database: the bounded log below, and the health endpoints (bot/webapp/health.py). The
HTTP side of the Mini App's limits (429 answers, body size) is bot/webapp/guards.py. `BoundedLog` writes at most one
line per key per interval and counts the lines it held back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bot.game import Game, GameError

log = logging.getLogger("bot.ratelimit")

# Buckets of ops.rate_limits the Mini App draws on (the chat's are api.admit_update's own).
ADDRESS_BUCKET = "web_address"
ACTION_BUCKET = "web_action"


class RateLimiter:
    """`rate` requests per second per key, bursts of up to `burst`, in this process only.

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


class Refusals:
    """Keys refused until a moment (monotonic clock), bounded in size."""

    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: OrderedDict[Any, float] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock

    def wait(self, key: Any) -> float:
        """Seconds `key` is still refused for (0.0: not refused)."""
        until = self._until.get(key)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[key]
            return 0.0
        return left

    def refuse(self, key: Any, seconds: float) -> None:
        self._until[key] = self._clock() + seconds
        self._until.move_to_end(key)
        while len(self._until) > self._max_keys:
            self._until.popitem(last=False)


class Lease:
    """Requests of one key taken from the shared budget at once (`size` asked, `left` unused)."""

    __slots__ = ("left", "size", "until")

    def __init__(self, size: int, left: int, until: float) -> None:
        self.size = size
        self.left = left
        self.until = until


class SharedLimits:
    """The limits of ops.rate_limits, shared by every process through the database.

    `wait(bucket, key)` is 0.0 when the request may go on, else the seconds until it may.
    When the database cannot be asked, the request goes on (the limit protects the game;
    a database that is down refuses the request anyway, with a clearer message).

    A busy key does not cost a database call per request: the process takes a lease of
    several requests at once (`api.rate_limit_lease`) and hands them out for up to
    LEASE_SECONDS. The lease doubles while the key uses it up in time (up to MAX_LEASE,
    and the database grants at most a quarter of the bucket's burst), halves when it is
    left over. Taken requests are spent from the shared budget whether used or not: a
    key is never let through more than its budget, at worst refused up to a lease early.

    One refill per key at a time: requests that find the key's lease used up wait for
    the refill already asked for and share it. (Each asking for itself cost 0.6 database
    calls per request with 50 requests of one key in flight: tests/benchmarks/bench_webapp.)
    """

    LEASE_SECONDS = 1.0
    MAX_LEASE = 32

    def __init__(self, game: Game, *, refusals: Refusals | None = None,
                 on_refused: Callable[[str], None] | None = None, max_lease: int = MAX_LEASE,
                 max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.game = game
        self.refusals = refusals or Refusals(clock=clock)
        self.on_refused = on_refused
        self.max_lease = max_lease
        self._max_keys = max_keys
        self._clock = clock
        self._leases: OrderedDict[tuple[str, str], Lease] = OrderedDict()
        self._refills: dict[tuple[str, str], asyncio.Future[bool]] = {}

    async def wait(self, bucket: str, key: str | int) -> float:
        memo = (bucket, str(key))
        while not (wait := self.refusals.wait(memo)):
            now = self._clock()
            lease = self._leases.get(memo)
            if lease is not None and lease.left > 0 and now < lease.until:
                lease.left -= 1
                return 0.0
            refill = self._refills.get(memo)
            if refill is None:
                refill = self._refills[memo] = asyncio.ensure_future(
                    self._refill(memo, self._next_size(lease, now)))
            # Shielded: a request given up (a client gone) does not cancel the others' refill.
            if not await asyncio.shield(refill):
                return 0.0
            # Refilled (or refused: then the loop ends): take a turn like everyone else.
        if self.on_refused is not None:
            self.on_refused(bucket)
        return wait

    async def _refill(self, memo: tuple[str, str], size: int) -> bool:
        """Ask the database for `size` requests of the key; False if it could not be asked."""
        try:
            granted, wait = await self.game.rate_limit_lease(memo[0], memo[1], size)
        except GameError as exc:
            log.debug("rate limit not checked", extra={"bucket": memo[0], "outcome": exc.code})
            return False
        finally:
            del self._refills[memo]
        if granted:
            self._keep(memo, size, granted, self._clock())
        else:
            self._leases.pop(memo, None)
            self.refusals.refuse(memo, wait)
        return True

    def _keep(self, memo: tuple[str, str], size: int, granted: int, now: float) -> None:
        lease = self._leases.get(memo)
        if lease is not None and now < lease.until:
            lease.size = size
            lease.left += granted
            lease.until = now + self.LEASE_SECONDS
        else:
            self._leases[memo] = Lease(size, granted, now + self.LEASE_SECONDS)
        self._leases.move_to_end(memo)
        while len(self._leases) > self._max_keys:
            self._leases.popitem(last=False)

    def _next_size(self, lease: Lease | None, now: float) -> int:
        if lease is None:
            return 1
        if lease.left == 0 and now < lease.until:  # used up in time: a busy key
            return min(lease.size * 2, self.max_lease)
        if lease.left > 0:  # left over
            return max(lease.size // 2, 1)
        return lease.size


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
