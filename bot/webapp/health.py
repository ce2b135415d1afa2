"""Health endpoints: `/healthz` (liveness) and `/readyz` (readiness).

Anyone can reach them (load balancers, orchestrators, and attackers), so neither may
cost the database a query per request:
- `/healthz` answers from this process alone: the event loop serves requests. It never
  touches the database (a database outage must not get a healthy process restarted).
- `/readyz` answers from a cached database check: at most one check in flight, started
  at most once per `READY_MAX_AGE` seconds; concurrent requests share the check in
  flight, later ones its result until it is that old.
Both are limited per client address in this process's memory (bot/ratelimit.py's
RateLimiter: the shared limiter would itself be a database call).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.config import Settings
from bot.game import Game
from bot.ratelimit import RateLimiter, retry_after_header
from bot.webapp.errors import NO_STORE, error_response
from bot.webapp.guards import client_address

READY_MAX_AGE = 1.0  # seconds a readiness answer is reused
READY_TIMEOUT = 3.0  # a check that takes longer says "not ready"
# Per client address: probes come every few seconds; a burst allows several probers
# behind one address (a load balancer's nodes).
HEALTH_RATE = 5.0
HEALTH_BURST = 20


class Readiness:
    """A cached answer of `check` (True: ready), refreshed at most once per `max_age`."""

    def __init__(self, check: Callable[[], Awaitable[bool]], *, max_age: float = READY_MAX_AGE,
                 timeout: float = READY_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self._check = check
        self._max_age = max_age
        self._timeout = timeout
        self._clock = clock
        self._ready = False
        self._checked_at: float | None = None
        self._in_flight: asyncio.Future[bool] | None = None
        self.checks = 0  # how many checks ran (tests, metrics)

    async def ready(self) -> bool:
        if self._checked_at is not None and self._clock() - self._checked_at < self._max_age:
            return self._ready
        if self._in_flight is None:
            self._in_flight = asyncio.ensure_future(self._run())
        # shield: a caller that goes away does not cancel the check the others wait for.
        return await asyncio.shield(self._in_flight)

    async def _run(self) -> bool:
        self.checks += 1
        try:
            ready = await asyncio.wait_for(self._check(), self._timeout)
        except Exception:  # noqa: BLE001 - any failure of the check means: not ready
            ready = False
        self._ready, self._checked_at, self._in_flight = ready, self._clock(), None
        return ready


READINESS_KEY = web.AppKey("health_readiness", Readiness)
PROBE_LIMITER_KEY = web.AppKey("health_probe_limiter", RateLimiter)
TRUSTED_PROXIES_KEY = web.AppKey("health_trusted_proxies", int)


def _limited(request: web.Request) -> web.Response | None:
    address = client_address(request, request.app[TRUSTED_PROXIES_KEY])
    wait = request.app[PROBE_LIMITER_KEY].hit(address)
    if not wait:
        return None
    retry_after = retry_after_header(wait)
    return error_response(429, "rate_limited", "Too many requests: wait a moment and try again.",
                          {"scope": "address", "retry_after": int(retry_after)}, {"Retry-After": retry_after})


async def healthz(request: web.Request) -> web.Response:
    """Liveness: this process serves requests. No database call."""
    return _limited(request) or web.json_response({"status": "ok"}, headers=NO_STORE)


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answered the last check (at most a second old)."""
    if (refused := _limited(request)) is not None:
        return refused
    if await request.app[READINESS_KEY].ready():
        return web.json_response({"status": "ok", "database": "ok"}, headers=NO_STORE)
    return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503, headers=NO_STORE)


def setup_health(app: web.Application, game: Game, settings: Settings) -> None:
    app[READINESS_KEY] = Readiness(game.ping)
    app[PROBE_LIMITER_KEY] = RateLimiter(HEALTH_RATE, HEALTH_BURST)
    app[TRUSTED_PROXIES_KEY] = settings.webapp_trusted_proxies
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
