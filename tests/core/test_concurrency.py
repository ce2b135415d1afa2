"""Concurrent actions lose nothing: many connections on one waifu, restore ticks
interleaved, and the same request key racing itself."""

import asyncio
import json
import random
from datetime import timedelta

import asyncpg
import pytest

from tests.conftest import init_connection
from tests.core.conftest import T0, create_event, player_with_waifu, restore, set_stored, stored

PARTICIPATE = "SELECT api.participate_in_event($1, $2, $3, $4, $5)"


@pytest.fixture
async def bot_pool(database, admin):
    pool = await asyncpg.create_pool(database.clock_bot_url, min_size=10, max_size=10, init=init_connection)
    yield pool
    await pool.close()


async def test_200_concurrent_participations_with_restore_ticks(database, admin, bot_pool):
    # spark costs energy; free costs none, so all 100 free calls must succeed and
    # their XP can only be lost by a lost update.
    await create_event(admin, "spark", 3, xp=7, mood=1, loyalty=-1)
    await create_event(admin, "free", 0, xp=5)
    wid = await player_with_waifu(admin)
    # Every call is at T0; tick k runs two hours later, when any clock of T0 has long
    # reached the cap, while the calls write her row: the ticks write no waifu, so nothing
    # of theirs may show in her stats.
    start_energy, ticks = 50, 40
    await set_stored(admin, wid, energy=start_energy, clock=T0)
    calls = ["spark", "free"] * 100
    random.Random(2).shuffle(calls)

    done = 0
    progress = asyncio.Condition()

    async def participate(i: int, event: str):
        nonlocal done
        try:
            return await bot_pool.fetchval(PARTICIPATE, 1, wid, event, f"c{i}", T0)
        except asyncpg.PostgresError as exc:
            assert exc.sqlstate == "WF001", exc  # the only acceptable refusal
            return exc
        finally:
            async with progress:
                done += 1
                progress.notify_all()

    async def ticker() -> list[int]:
        # Tick k goes out once 5k calls have returned, so the ticks are spread over the
        # whole run while other calls are in flight.
        conn = await asyncpg.connect(database.admin_url)
        try:
            counts = []
            for k in range(1, ticks + 1):
                async with progress:
                    await progress.wait_for(lambda k=k: done >= 5 * (k - 1))
                counts.append(await conn.fetchval("SELECT api.restore_energy($1)", T0 + timedelta(hours=2, seconds=k)))
            return counts
        finally:
            await conn.close()

    *results, counts = await asyncio.gather(*(participate(i, e) for i, e in enumerate(calls)), ticker())
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if not isinstance(r, dict)]
    sparks = sum(1 for r in ok if r["event_code"] == "spark")
    frees = sum(1 for r in ok if r["event_code"] == "free")
    assert frees == 100 and len(ok) + len(refused) == 200
    # Each tick filled her, found her full, or found her held by a call and left her for a
    # later batch (SKIP LOCKED): never waiting for the calls, never filling her twice.
    assert set(counts) <= {0, 1}

    # Nothing lost and nothing applied twice: the stats add up to the applied calls, and a
    # full waifu's spend starts her clock again at T0.
    s = await stored(admin, wid)
    assert 0 <= s["energy"] <= 100
    assert s["xp"] == 7 * sparks + 5 * frees
    assert (s["mood"], s["loyalty"]) == (min(100, 50 + sparks), max(0, 50 - sparks))
    if s["energy"] < 100:
        assert s["clock"] == T0
    else:
        assert s["clock"] >= T0
    ledger = await admin.fetchrow("SELECT count(*) AS n, sum(xp_gained) AS xp, sum(energy_spent) AS spent "
                                  "FROM game.participations WHERE waifu_id = $1", wid)
    assert (ledger["n"], ledger["xp"], ledger["spent"]) == (len(ok), s["xp"], 3 * sparks)
    assert sorted(r["request_key"] for r in ok) == sorted(
        await admin.fetchval("SELECT array_agg(request_key) FROM game.participations"))
    # no result ever showed negative energy, and each refusal saw less than the cost
    assert all(r["energy"] >= 0 for r in ok)
    assert all(0 <= json.loads(r.detail)["energy"] < 3 for r in refused)
    # The ticks wrote nothing of hers (the calls' clock, T0, is behind their cursor): the
    # stored stats are the calls' alone, and a read restores her energy.
    assert (await admin.fetchval("SELECT api.waifu_stats($1, $2)", wid, T0 + timedelta(hours=3)))["energy"] == 100


async def wait_until_blocked(admin: asyncpg.Connection, pids: list[int]) -> None:
    """Until every backend in `pids` waits for a lock (each is queued on the row)."""
    for _ in range(500):
        waiting = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND wait_event_type = 'Lock'", pids)
        if waiting == len(pids):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the calls never queued on the lock")


async def test_same_request_key_racing_itself_applies_once(database, admin):
    wid = await player_with_waifu(admin)
    conns = [await asyncpg.connect(database.clock_bot_url) for _ in range(2)]
    try:
        for c in conns:
            await init_connection(c)
        # Hold the waifu's row so both calls are in flight at the same time, then let go.
        async with admin.transaction():
            await admin.execute("SELECT 1 FROM game.waifus WHERE id = $1 FOR UPDATE", wid)
            calls = [asyncio.ensure_future(c.fetchval(PARTICIPATE, 1, wid, "walk", "double-tap", T0))
                     for c in conns]
            await wait_until_blocked(admin, [c.get_server_pid() for c in conns])
        first, second = await asyncio.gather(*calls)
    finally:
        for c in conns:
            await c.close()
    assert sorted([first["replayed"], second["replayed"]]) == [False, True]
    assert first | {"replayed": False} == second | {"replayed": False}
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 1
    assert (await stored(admin, wid))["energy"] == 90


async def test_same_request_key_on_two_waifus_at_once_applies_one(database, admin):
    wid_a = await player_with_waifu(admin)
    wid_b = await admin.fetchval("SELECT api.adopt_waifu(1, 'yuki')")
    conns = [await asyncpg.connect(database.clock_bot_url) for _ in range(2)]
    try:
        async with admin.transaction():
            await admin.execute("SELECT 1 FROM game.waifus WHERE id = ANY($1::bigint[]) FOR UPDATE", [wid_a, wid_b])
            calls = [asyncio.ensure_future(c.fetchval(PARTICIPATE, 1, w, "walk", "one-key", T0))
                     for c, w in zip(conns, (wid_a, wid_b), strict=True)]
            await wait_until_blocked(admin, [c.get_server_pid() for c in conns])
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        for c in conns:
            await c.close()
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and getattr(errors[0], "sqlstate", None) == "WF007", results
    ledger = await admin.fetch("SELECT waifu_id FROM game.participations")
    assert len(ledger) == 1
    winner = ledger[0]["waifu_id"]
    loser = wid_b if winner == wid_a else wid_a
    assert (await stored(admin, winner))["energy"] == 90
    assert (await stored(admin, loser))["energy"] == 100  # the refused call's update was rolled back


async def test_concurrent_adoptions_with_one_request_key_adopt_once(admin, bot_pool):
    await admin.fetchval("SELECT api.register_player(1, 'u', 'U', 'en')")
    ids = await asyncio.gather(*(bot_pool.fetchval("SELECT api.adopt_waifu(1, 'yuki', 'adopt-tap')")
                                 for _ in range(20)))
    assert len(set(ids)) == 1
    assert await admin.fetchval("SELECT count(*) FROM game.waifus") == 1


async def test_restore_ticks_racing_each_other_fill_each_waifu_once(database, admin):
    # pg_cron never overlaps a job with itself, but an operator's manual tick can meet it.
    # 50 waifus: 10 players with the whole collection of 5 each, full at T0 + 30 min.
    for player in range(1, 11):
        await admin.fetchval("SELECT api.register_player($1, 'u', 'U', 'en')", player)
        for template in ("akane", "hana", "rin", "sakura", "yuki"):
            await admin.fetchval("SELECT api.adopt_waifu($1, $2)", player, template)
    await admin.execute("""UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object(
                               'energy', 70, 'last_restore', extract(epoch FROM $1::timestamptz))""", T0)
    conns = [await asyncpg.connect(database.admin_url) for _ in range(4)]

    async def cron(conn: asyncpg.Connection) -> list[int]:
        # No deadlock allowed: batches serialise on the tick's state row.
        return [await conn.fetchval("SELECT api.restore_energy($1)", T0 + timedelta(minutes=m)) for m in range(1, 31)]

    try:
        counts = await asyncio.gather(*(cron(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    # Only the ticks at minute 30 filled anybody, and each waifu exactly once.
    assert all(c[:29] == [0] * 29 for c in counts) and sum(c[29] for c in counts) == 50
    last = T0 + timedelta(minutes=30)
    assert await admin.fetchval("SELECT sum(waifus) FROM game.rested_ranges") == 50
    assert await admin.fetchval("SELECT game.expand_rested($1, 100)", last) == 10  # a message per player
    energies = {(await admin.fetchval("SELECT api.waifu_stats($1, $2)", wid, last))["energy"]
                for wid in await admin.fetchval("SELECT array_agg(id) FROM game.waifus")}
    assert energies == {100}
    assert await restore(admin, last) == 0
