"""The shared rate limiter (api.rate_limit, its leases, api.admit_update) and the polling lock, as the
bot's login calls them: one budget for every process, an update handled once."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from tests.core.conftest import refused


async def take(conn: asyncpg.Connection, bucket: str, key: str) -> float:
    return await conn.fetchval("SELECT api.rate_limit($1, $2)", bucket, key)


async def test_a_burst_then_the_rate(real_bot_conn, admin) -> None:
    await admin.fetchval("SELECT ops.set_rate_limit('web_action', 2, 5)")
    waits = [await take(real_bot_conn, "web_action", "42") for _ in range(7)]
    assert waits[:5] == [0] * 5
    assert 0 < waits[5] <= 0.5 and waits[6] > 0  # one more every half second
    await asyncio.sleep(waits[6] + 0.05)
    assert await take(real_bot_conn, "web_action", "42") == 0
    # Keys and buckets are separate budgets.
    assert await take(real_bot_conn, "web_action", "43") == 0
    assert await take(real_bot_conn, "chat_user", "42") == 0


async def test_every_process_shares_one_budget(database, admin) -> None:
    await admin.fetchval("SELECT ops.set_rate_limit('chat_user', 0.001, 10)")
    conns = [await asyncpg.connect(database.bot_url) for _ in range(4)]
    try:
        async def five(c: asyncpg.Connection) -> list[float]:
            return [await c.fetchval("SELECT api.rate_limit('chat_user', '7')") for _ in range(5)]

        waits = [w for ws in await asyncio.gather(*(five(c) for c in conns)) for w in ws]
    finally:
        for c in conns:
            await c.close()
    assert sum(1 for w in waits if w == 0) == 10  # 20 requests from 4 sessions: the burst, once


async def test_refusals_and_operators(real_bot_conn, ops_conn, admin) -> None:
    for bucket, key, argument in [("nope", "1", "bucket"), (None, "1", "bucket"), ("chat_user", "", "key"),
                                  ("chat_user", None, "key"), ("chat_user", "k" * 129, "key")]:
        detail = await refused(admin, "WF006", take(real_bot_conn, bucket, key))
        assert detail["argument"] == argument
    for args, argument in [(("chat_user", 0, 5), "rate"), (("chat_user", 1, 0), "burst"), (("x", 1, 1), "bucket")]:
        detail = await refused(admin, "WF006", ops_conn.fetchval("SELECT ops.set_rate_limit($1, $2, $3)", *args))
        assert detail["argument"] == argument
    row = await ops_conn.fetchval("SELECT ops.set_rate_limit('group_send', 0.25, 5)")
    assert row == {"bucket": "group_send", "rate": 0.25, "burst": 5, "description": row["description"]}
    limits = {r["bucket"]: r for r in await ops_conn.fetch("SELECT * FROM ops.rate_limits")}
    assert set(limits) == {"chat_user", "group_chat", "group_send", "web_action", "web_address"}
    # Telegram's 20 messages a minute in a group: the default can never exceed it.
    assert limits["group_send"]["burst"] + 60 * limits["group_send"]["rate"] <= 20
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await ops_conn.fetchval("SELECT api.rate_limit('chat_user', '1')")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await real_bot_conn.fetchval("SELECT ops.set_rate_limit('chat_user', 1000, 1000)")


async def lease(conn: asyncpg.Connection, bucket: str, key: str, wanted: int) -> tuple[int, float]:
    row = await conn.fetchrow("SELECT granted, retry_after FROM api.rate_limit_lease($1, $2, $3)", bucket, key, wanted)
    return row["granted"], row["retry_after"]


async def test_a_lease_takes_what_the_bucket_holds_up_to_a_quarter_of_its_burst(real_bot_conn, admin) -> None:
    await admin.fetchval("SELECT ops.set_rate_limit('web_address', 0.001, 40)")
    assert await lease(real_bot_conn, "web_address", "a", 32) == (10, 0)  # a quarter of the burst
    assert await lease(real_bot_conn, "web_address", "a", 3) == (3, 0)
    # 13 of 40 taken: 27 left, 10 at a time; then the rest, then nothing.
    assert [(await lease(real_bot_conn, "web_address", "a", 10))[0] for _ in range(4)] == [10, 10, 7, 0]
    granted, wait = await lease(real_bot_conn, "web_address", "a", 1)
    assert granted == 0 and wait > 900  # a request every 1,000 s
    # What a lease took is spent for everybody sharing the key.
    assert await take(real_bot_conn, "web_address", "a") > 0
    # A small burst leases one at a time: the limit stays exact.
    await admin.fetchval("SELECT ops.set_rate_limit('web_action', 0.001, 3)")
    assert [(await lease(real_bot_conn, "web_action", "7", 32))[0] for _ in range(4)] == [1, 1, 1, 0]
    for args, argument in [(("web_action", "7", 0), "wanted"), (("web_action", "7", 1001), "wanted"),
                           (("web_action", "7", None), "wanted"), (("nope", "7", 1), "bucket"),
                           (("web_action", "", 1), "key")]:
        detail = await refused(admin, "WF006", lease(real_bot_conn, *args))
        assert detail["argument"] == argument


async def test_leases_never_let_a_key_through_beyond_its_budget(database, admin) -> None:
    # Four processes, each with the bot's SharedLimits, hammering one key: whatever the
    # leases, the requests let through are the burst.
    from bot.game import Game
    from bot.ratelimit import SharedLimits

    await admin.fetchval("SELECT ops.set_rate_limit('web_address', 0.001, 100)")
    games = [await Game.connect(database.bot_url, min_size=1, max_size=2) for _ in range(4)]
    try:
        limits = [SharedLimits(g) for g in games]

        async def hammer(lim: SharedLimits) -> int:
            return sum([await lim.wait("web_address", "10.0.0.1") == 0 for _ in range(60)])

        allowed = await asyncio.gather(*(hammer(lim) for lim in limits))
    finally:
        for g in games:
            await g.close()
    assert sum(allowed) <= 100
    assert sum(allowed) >= 100 - 4 * 25  # at worst each process holds an unused lease


def counting_leases() -> Any:
    """bot.game.Game, counting its api.rate_limit_lease calls in `asked`."""
    from bot.game import Game

    class CountingLeases(Game):
        asked = 0

        async def rate_limit_lease(self, bucket: str, key: str, wanted: int) -> tuple[int, float]:
            self.asked += 1
            return await super().rate_limit_lease(bucket, key, wanted)

    return CountingLeases


async def test_a_busy_key_costs_a_database_call_per_lease_not_per_request(database, admin) -> None:
    from bot.ratelimit import SharedLimits

    await admin.fetchval("SELECT ops.set_rate_limit('web_address', 1000, 1000)")
    game = await counting_leases().connect(database.bot_url, min_size=1, max_size=2)
    now = [100.0]
    try:
        limits = SharedLimits(game, clock=lambda: now[0])
        assert all([await limits.wait("web_address", "1.2.3.4") == 0 for _ in range(200)])
        # Leases of 1, 2, 4, ... 32, then 32 at a time: 11 calls for 200 requests.
        assert game.asked == 11
        # Idle past the lease: what was left is dropped, the next lease is smaller.
        now[0] += SharedLimits.LEASE_SECONDS + 1
        assert await limits.wait("web_address", "1.2.3.4") == 0
        assert game.asked == 12
    finally:
        await game.close()


async def test_requests_of_one_key_in_flight_together_share_one_refill(database, admin) -> None:
    # 50 requests of one key always in flight (a web app's clients behind one address):
    # those that find the lease used up wait for the refill already asked for instead of
    # each asking for one request (which cost 0.6 database calls a request).
    from bot.ratelimit import SharedLimits

    await admin.fetchval("SELECT ops.set_rate_limit('web_address', 100000, 100000)")
    game = await counting_leases().connect(database.bot_url, min_size=1, max_size=4)
    try:
        limits = SharedLimits(game)
        waits = []
        for _ in range(20):
            waits += await asyncio.gather(*(limits.wait("web_address", "10.1.1.1") for _ in range(50)))
    finally:
        await game.close()
    assert waits == [0.0] * 1000
    # Leases of 1, 2, ... 32, then 32 at a time: about 37 calls (a lease left over past
    # its second halves the next one: a slow machine may need a few more).
    assert game.asked <= 60


async def test_a_request_given_up_does_not_cancel_the_refill_others_wait_for(database, admin) -> None:
    from bot.game import Game
    from bot.ratelimit import SharedLimits

    await admin.fetchval("SELECT ops.set_rate_limit('web_address', 100000, 100000)")
    game = await Game.connect(database.bot_url, min_size=1, max_size=2)
    try:
        limits = SharedLimits(game)
        first = asyncio.ensure_future(limits.wait("web_address", "10.2.2.2"))  # asks for the refill
        await asyncio.sleep(0)
        second = asyncio.ensure_future(limits.wait("web_address", "10.2.2.2"))  # waits for it
        await asyncio.sleep(0)
        first.cancel()  # its client went away
        assert await second == 0.0
        assert first.cancelled()
        assert await limits.wait("web_address", "10.2.2.2") == 0.0
    finally:
        await game.close()


async def test_requests_of_one_key_together_use_its_budget_exactly(database, admin) -> None:
    # A player's actions (a burst of 10) sent four at a time: each of the ten goes through,
    # the eleventh is refused. Leases asked for together must not take more than is used.
    from bot.game import Game
    from bot.ratelimit import SharedLimits

    await admin.fetchval("SELECT ops.set_rate_limit('web_action', 0.001, 10)")
    game = await Game.connect(database.bot_url, min_size=1, max_size=4)
    try:
        limits = SharedLimits(game)
        first = await asyncio.gather(*(limits.wait("web_action", 42) for _ in range(4)))
        second = await asyncio.gather(*(limits.wait("web_action", 42) for _ in range(4)))
        rest = [await limits.wait("web_action", 42) for _ in range(3)]
    finally:
        await game.close()
    assert first == [0.0] * 4 and second == [0.0] * 4
    assert rest[:2] == [0.0, 0.0] and rest[2] > 0


async def test_an_update_is_admitted_once_across_processes(database, admin) -> None:
    conns = [await asyncpg.connect(database.bot_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(c.fetchval("SELECT api.admit_update(9, 1000, 5, 5)::text") for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sorted(results) == ['{"admit": false, "reason": "duplicate"}'] * 2 + ['{"admit": true}']


async def test_admission_applies_the_users_and_the_groups_limits(real_bot_conn, admin) -> None:
    await admin.fetchval("SELECT ops.set_rate_limit('chat_user', 0.001, 3)")
    await admin.fetchval("SELECT ops.set_rate_limit('group_chat', 0.001, 4)")
    admit = "SELECT api.admit_update(9, $1, $2, $3)"
    user = [await real_bot_conn.fetchval(admit, n, 11, 11) for n in range(1, 5)]
    assert [r["admit"] for r in user] == [True, True, True, False]
    assert (user[3]["reason"], user[3]["scope"]) == ("limited", "user") and user[3]["retry_after"] > 100
    # A group: each member's own budget, and the group's over all of them.
    group = [await real_bot_conn.fetchval(admit, 100 + n, 20 + n, -500) for n in range(6)]
    assert [r["admit"] for r in group] == [True] * 4 + [False] * 2 and group[5]["scope"] == "group"
    # A refused update counts as taken: a redelivery is not handled either.
    assert (await real_bot_conn.fetchval(admit, 4, 11, 11))["reason"] == "duplicate"
    # A failed handling gives the update back.
    assert await real_bot_conn.fetchval("SELECT api.forget_update(9, 1)") is True
    assert await real_bot_conn.fetchval("SELECT api.forget_update(9, 1)") is False
    assert (await real_bot_conn.fetchval(admit, 1, 11, 11))["reason"] == "limited"
    # Another bot in the same database has update ids of its own.
    assert (await real_bot_conn.fetchval("SELECT api.admit_update(10, 1, 12, 12)"))["admit"] is True
    for args, argument in [((0, 1, 1, 1), "bot_id"), ((9, -1, 1, 1), "update_id"), ((None, 1, 1, 1), "bot_id")]:
        detail = await refused(admin, "WF006", real_bot_conn.fetchval("SELECT api.admit_update($1, $2, $3, $4)",
                                                                      *args))
        assert detail["argument"] == argument


async def test_the_purge_job_drops_full_buckets_and_old_updates(real_bot_conn, admin) -> None:
    await take(real_bot_conn, "chat_user", "1")
    await real_bot_conn.fetchval("SELECT api.admit_update(9, 1, NULL, NULL)")
    await admin.execute("UPDATE game.rate_buckets SET tat = tat - 60")
    await admin.execute("UPDATE game.seen_updates SET seen_at = now() - interval '2 hours'")
    async with admin.transaction():
        await admin.execute("SET LOCAL ROLE waifu_cron")
        assert await admin.fetchval("SELECT game.purge_rate_limits()") == {"buckets": 1, "updates": 1}
    job = await admin.fetchrow("SELECT schedule, command, username FROM cron.job WHERE jobname = 'purge-rate-limits'")
    assert tuple(job) == ("*/5 * * * *", "SELECT game.purge_rate_limits()", "waifu_cron")


async def test_one_polling_lock_per_bot_held_by_its_connection(database) -> None:
    first, second = await asyncpg.connect(database.bot_url), await asyncpg.connect(database.bot_url)
    try:
        assert await first.fetchval("SELECT api.try_polling_lock(1)") is True
        assert await second.fetchval("SELECT api.try_polling_lock(1)") is False
        assert await second.fetchval("SELECT api.try_polling_lock(2)") is True  # another bot
        assert await second.fetchval("SELECT api.release_polling_lock(1)") is False  # not its lock
        assert await first.fetchval("SELECT api.release_polling_lock(1)") is True
        assert await second.fetchval("SELECT api.try_polling_lock(1)") is True
    finally:
        await second.close()
    third = await asyncpg.connect(database.bot_url)
    try:
        # Closing the connection released it.
        assert await third.fetchval("SELECT api.try_polling_lock(1)") is True
    finally:
        await third.close()
        await first.close()
