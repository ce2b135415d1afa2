"""Floods and twins (issue 18): a thousand updates a second from one user never reach the
game (the shared chat limit drops them, nearly all without a database call) and leave a
line or two of log, and an update delivered to two bot processes is answered once. The real
dispatcher and handlers, the real database, the Bot API stand-in over HTTP."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

import pytest

from bot.app import create_dispatcher
from bot.game import Game
from tests.bot.conftest import Harness

FLOOD = 1000


class CountingGame(Game):
    """The real Game, counting what each kind of call cost the database."""

    def __init__(self, pool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(pool)
        self.counts: dict[str, int] = {}

    async def _call(self, sql: str, *args):  # type: ignore[no-untyped-def]
        name = sql.split("(")[0].removeprefix("SELECT ")
        self.counts[name] = self.counts.get(name, 0) + 1
        return await super()._call(sql, *args)


async def replies_of(h: Harness, players: list, rounds: int, spacing: float) -> list[float]:  # type: ignore[type-arg]
    """Every player sends /profile once per round, `spacing` apart (players at the pace
    of people, well inside their limits): each reply's latency (ms)."""
    latencies: list[float] = []

    async def one(player) -> None:  # type: ignore[no-untyped-def]
        for _ in range(rounds):
            started = time.perf_counter()
            await h.send(player.message("/profile"))
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(spacing)

    await asyncio.gather(*(one(p) for p in players))
    return latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def test_a_flood_from_one_user_does_not_slow_down_another(harness: Harness, database, caplog) -> None:
    h = harness
    # Telegram's own flood limits (1 message a second in a chat) would time the stand-in,
    # not the bot: off here.
    h.stub.limits = None
    game = await CountingGame.connect(database.bot_url, min_size=2, max_size=10)
    try:
        h.dp = create_dispatcher(game, h.settings)
        flooder = h.stub.user(2100, "Flo")
        others = [h.stub.user(2101 + k, f"Oto{k}") for k in range(10)]
        for player in [flooder, *others]:
            await h.send(player.message("/start"))
            await h.send(player.press("Sakura"))
        # Ten other players, each at 5 updates a second (their limit: 2 a second, bursts
        # of 20: two seconds of it stay within the burst); warm the path first.
        await replies_of(h, others, 2, 0.2)
        await asyncio.sleep(4)  # their budgets refill
        alone = await replies_of(h, others, 10, 0.2)
        await asyncio.sleep(4)

        caplog.set_level(logging.INFO, logger="bot.updates")
        caplog.clear()
        before = dict(game.counts)

        async def flood() -> float:
            """A thousand updates in a second, evenly; returns how long they took to send."""
            started = time.monotonic()
            tasks = []
            for n in range(FLOOD):
                tasks.append(asyncio.ensure_future(h.send(flooder.message("/profile"))))
                await asyncio.sleep(max(0.0, started + (n + 1) / FLOOD - time.monotonic()))
            await asyncio.gather(*tasks)
            return time.monotonic() - started

        flooding = asyncio.ensure_future(flood())
        during = await replies_of(h, others, 10, 0.2)
        flood_seconds = await flooding
        after = dict(game.counts)
        lines = [r for r in caplog.records if getattr(r, "user_id", None) == flooder.id]
        # The flood alone, in CPU time of this process (what it takes from the others'
        # event loop; CPU time, unlike latency, does not count waiting for a busy machine).
        await asyncio.sleep(4)
        cpu_before = time.process_time()
        await flood()
        flood_cpu = time.process_time() - cpu_before
    finally:
        await game.close()

    limits = await h.admin.fetchrow("SELECT rate, burst FROM game.rate_limits WHERE bucket = 'chat_user'")
    profiles = after.get("api.player_profile", 0) - before.get("api.player_profile", 0)
    admits = after.get("api.admit_update", 0) - before.get("api.admit_update", 0)
    # The burst and what the rate refills while the flood lasts (a second, longer on a busy
    # machine), plus two seconds of slack.
    allowed = limits["burst"] + limits["rate"] * (flood_seconds + 2)
    # The others' 100 and the flooder's burst plus what the rate allows are handled;
    # every other flood update is dropped, nearly all without asking the database (the
    # refusal is remembered until its wait ends).
    assert 100 + limits["burst"] <= profiles <= 100 + allowed, profiles
    assert admits <= 100 + allowed + 100, admits  # some asked while the first refusal was on its way
    # A flood is a line or two of log, not a thousand.
    assert len(lines) <= allowed + 3, len(lines)
    # Every other player's update was answered. How much the flood moves their p99 latency
    # is a figure, not a pass/fail here (timed tests on a shared machine measure the
    # machine): it is printed here (`pytest -s`) against the 20 ms target; the CPU time
    # below is the part of it this process decides.
    assert len(during) == len(alone) == 100
    # What the flood takes from the others is this process's time: 1,000 updates refused
    # from memory cost 0.37-0.82 s of CPU here (the suite's own load moves it), while
    # handling them would cost about 3.7 s (bench_bot: 3.75 ms an update), so the event
    # loop keeps most of its time for the others. The bound sits between the two.
    assert flood_cpu < 1.5, flood_cpu
    print(f"others' p99: alone {p99(alone):.1f} ms, during the flood {p99(during):.1f} ms; "
          f"flood CPU {flood_cpu * 1000:.0f} ms")


@pytest.mark.parametrize("concurrently", [False, True])
async def test_an_update_delivered_to_two_processes_is_answered_once(harness: Harness, concurrently: bool) -> None:
    h = harness
    ann = h.stub.user(2201, "Ann")
    await h.send(ann.message("/start"))
    await h.send(ann.press("Sakura"))
    update = ann.message("/profile")
    # Two dispatchers as two processes: each its own memory, one database.
    first, second = h.fresh_dispatcher(), h.fresh_dispatcher()
    sends = len(h.stub.calls_of("sendPhoto"))  # /profile: her card
    if concurrently:
        await asyncio.gather(first.feed_raw_update(h.bot, update), second.feed_raw_update(h.bot, update))
    else:
        await first.feed_raw_update(h.bot, update)
        await second.feed_raw_update(h.bot, update)
    assert len(h.stub.calls_of("sendPhoto")) == sends + 1
