"""/healthz and /readyz over real HTTP: floods cost the database nothing (liveness) or at
most a check a second (readiness), both are limited per address, and /readyz sees a
database that went away within about a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.ratelimit import RateLimiter
from bot.webapp.health import HEALTH_BURST, PROBE_LIMITER_KEY, Readiness
from tests.bot.tcp_proxy import TcpProxy
from tests.webapp.conftest import CountingGame, make_app, make_settings

Client = TestClient[web.Request, web.Application]


async def serve(game: CountingGame, *, unlimited: bool = False) -> Client:
    app = make_app(game, make_settings())
    if unlimited:  # to see the cache alone, without the per-address limit in the way
        app[PROBE_LIMITER_KEY] = RateLimiter(1e9, 10**9)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def flood(client: Client, path: str, n: int) -> list[int]:
    async def one() -> int:
        async with client.get(path) as resp:
            return resp.status

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_a_flood_of_healthz_makes_no_database_call(game: CountingGame) -> None:
    client = await serve(game, unlimited=True)
    try:
        before = game.calls + game.limit_calls
        assert set(await flood(client, "/healthz", 1000)) == {200}
        assert game.calls + game.limit_calls == before == 0
    finally:
        await client.close()


async def test_a_flood_of_readyz_checks_the_database_at_most_once_a_second(game: CountingGame) -> None:
    client = await serve(game, unlimited=True)
    try:
        started = time.monotonic()
        statuses: list[int] = []
        for _ in range(5):  # waves of concurrent requests: they share the check in flight
            statuses += await flood(client, "/readyz", 200)
            await asyncio.sleep(0.3)
        elapsed = time.monotonic() - started
        assert set(statuses) == {200} and len(statuses) == 1000
        assert 1 <= game.calls <= int(elapsed) + 1, (game.calls, elapsed)
        assert game.limit_calls == 0  # the per-address limit is in memory, not the shared limiter
    finally:
        await client.close()


async def test_concurrent_waiters_share_one_check() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_check() -> bool:
        started.set()
        await release.wait()
        return True

    readiness = Readiness(slow_check)
    waiters = [asyncio.ensure_future(readiness.ready()) for _ in range(100)]
    await started.wait()
    waiters[0].cancel()  # a caller that goes away does not cancel the others' check
    release.set()
    results = await asyncio.gather(*waiters[1:])
    assert results == [True] * 99 and readiness.checks == 1
    assert await readiness.ready() is True and readiness.checks == 1  # cached for a second


async def test_a_check_that_hangs_is_not_ready_after_its_timeout() -> None:
    async def hang() -> bool:
        await asyncio.sleep(60)
        return True

    readiness = Readiness(hang, timeout=0.2)
    started = time.monotonic()
    assert await readiness.ready() is False
    assert time.monotonic() - started < 1


async def test_both_are_limited_per_address(game: CountingGame) -> None:
    client = await serve(game)
    try:
        statuses = await flood(client, "/healthz", HEALTH_BURST + 30)
        assert statuses.count(200) <= HEALTH_BURST + 2 and statuses.count(429) >= 28
        refused = await client.get("/readyz", headers={"X-Forwarded-For": "198.51.100.9"})  # untrusted header
        assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["error"]["code"] == "rate_limited"
        assert game.calls == 0  # the refused /readyz asked nothing
    finally:
        await client.close()


@pytest.fixture
async def proxied_game(database) -> AsyncIterator[tuple[CountingGame, TcpProxy]]:
    target = urlsplit(database.bot_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    game = await CountingGame.connect(database.bot_url.replace(f":{target.port}/", f":{proxy.port}/"),
                                      min_size=1, max_size=2)
    try:
        yield game, proxy
    finally:
        await game.close()
        await proxy.stop()


async def status_within(client: Client, want: int, seconds: float) -> float:
    """Poll /readyz until it answers `want`; returns how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if (await client.get("/readyz")).status == want:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz did not answer {want} within {seconds} s")


async def test_readyz_sees_a_stopped_database_within_two_seconds(proxied_game) -> None:
    game, proxy = proxied_game
    client = await serve(game, unlimited=True)
    try:
        assert (await client.get("/readyz")).status == 200
        await proxy.stop()  # the database goes away
        assert await status_within(client, 503, 2.0) <= 2.0
        assert (await client.get("/healthz")).status == 200  # the process itself is alive
        await proxy.start()  # and comes back
        assert await status_within(client, 200, 3.0) <= 3.0
    finally:
        await client.close()
