"""The restore tick (0011): it finds the waifus that reached the cap walking the (full_at,
id) index from a cursor, in batches, and stages their "she is rested" (game.rested_ranges)
for the sender's claim; it writes no waifu, and every read shows her energy now.

Ticks here pass `now` far in the future (T0, year 2100): the cursor never passes the
real clock, so each of these ticks looks at the whole window from the cursor, and the
real pg_cron tick (at the real now) finds none of these waifus due.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from tests.core.conftest import T0, at, player_with_waifu, restore, set_stored, stats, stored


async def waifus_at(admin, bot_conn, cases: list[tuple[float, int]]) -> list[int]:
    """A waifu for each (clock in seconds from T0, stored energy), one player each."""
    ids = []
    for k, (clock, energy) in enumerate(cases, start=1):
        wid = await player_with_waifu(bot_conn, k, template="sakura")
        await set_stored(admin, wid, clock=at(seconds=clock), energy=energy)
        ids.append(wid)
    return ids


async def energies(admin, ids: list[int]) -> list[int]:
    return [(await stored(admin, wid))["energy"] for wid in ids]


async def full_at(admin, wid: int) -> float:
    return float(await admin.fetchval("SELECT full_at FROM game.waifus WHERE id = $1", wid))


async def staged(admin) -> int:
    """Waifus the ticks staged for a "she is rested" and no sender has made rows of yet."""
    return await admin.fetchval("SELECT coalesce(sum(waifus), 0) FROM game.rested_ranges")


async def expand(admin, now) -> int:
    """What a sender's claim does first when its outbox is short: rows from the stage."""
    return await admin.fetchval("SELECT game.expand_rested($1, 1000)", now)


async def test_a_tick_finds_the_waifus_that_reached_the_cap_and_writes_none(admin, bot_conn):
    # Full at T0+60 s (99 + 1), T0+30 s (98 + 2 from T0-90 s), and T0+40 min (50 + 50 from T0-10 min).
    ids = await waifus_at(admin, bot_conn, [(0, 99), (-90, 98), (-10 * 60, 50)])
    assert [await full_at(admin, wid) for wid in ids] == [
        at().timestamp() + 60, at().timestamp() + 30, at(minutes=40).timestamp()]
    xmins = await admin.fetch("SELECT xmin::text FROM game.waifus WHERE id = ANY($1) ORDER BY id", ids)
    assert await restore(admin, at(seconds=29)) == 0
    # Every read shows her energy now.
    assert [(await stats(admin, wid, at(seconds=29)))["energy"] for wid in ids] == [99, 99, 60]

    assert await restore(admin, at(seconds=30)) == 1
    assert await restore(admin, at(seconds=59)) == 0
    assert await restore(admin, at(seconds=60)) == 1
    assert [(await stats(admin, wid, at(seconds=60)))["energy"] for wid in ids] == [100, 100, 61]
    assert await staged(admin) == 2 and await expand(admin, at(seconds=60)) == 2
    assert await restore(admin, at(minutes=39, seconds=59)) == 0
    assert await restore(admin, at(minutes=45)) == 1
    assert await restore(admin, at(minutes=45)) == 0
    # No waifu was written: her stored stats stay as they were, every read restores them.
    assert await admin.fetch("SELECT xmin::text FROM game.waifus WHERE id = ANY($1) ORDER BY id", ids) == xmins
    assert await energies(admin, ids) == [99, 98, 50]
    assert (await stats(admin, ids[2], at(minutes=45)))["energy"] == 100
    # Each one staged once, in the order they reached the cap; one message each.
    assert await staged(admin) == 1
    assert await expand(admin, at(minutes=45)) == 1
    rested = await admin.fetch("SELECT telegram_id FROM game.notifications ORDER BY id")
    assert [r["telegram_id"] for r in rested] == [2, 1, 3]
    assert await staged(admin) == 0 and await expand(admin, at(minutes=45)) == 0


async def test_the_tick_writes_no_waifu(admin, bot_conn):
    await waifus_at(admin, bot_conn, [(0, 90)])
    await admin.execute("SELECT pg_stat_force_next_flush()")
    before = await admin.fetchval("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'game.waifus'::regclass")
    assert await restore(admin, at(minutes=20)) == 1
    await admin.execute("SELECT pg_stat_force_next_flush()")
    after = await admin.fetchval("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'game.waifus'::regclass")
    assert after - before == 0


async def test_batches_find_everything_due_and_each_waifu_once(admin, bot_conn):
    await admin.execute("UPDATE game.config SET tick_batch_size = 100")
    await admin.execute("INSERT INTO game.players (telegram_id) SELECT g FROM generate_series(1, 250) AS g")
    # 250 waifus with the same full_at, and 50 not due yet.
    await admin.execute("""
        INSERT INTO game.waifus (owner_id, template_code, name, dynamic)
        SELECT CASE WHEN g <= 250 THEN g ELSE g - 250 END, CASE WHEN g <= 250 THEN 'sakura' ELSE 'yuki' END, 'W',
               jsonb_build_object('xp', 0, 'energy', 90, 'mood', 50, 'loyalty', 50,
                                  'last_restore', extract(epoch FROM $1::timestamptz)
                                                  + CASE WHEN g <= 250 THEN 0 ELSE 3600 END)
        FROM generate_series(1, 300) AS g""", T0)
    assert await restore(admin, at(minutes=10)) == 250
    state = await admin.fetchrow("SELECT last_batches, last_filled, last_notified FROM game.tick_state")
    assert tuple(state) == (3, 250, 250)
    assert await admin.fetchval("SELECT array_agg(waifus ORDER BY id) FROM game.rested_ranges") == [100, 100, 50]
    assert await restore(admin, at(minutes=10)) == 0
    assert await expand(admin, at(minutes=10)) == 250
    assert await admin.fetchval("SELECT count(DISTINCT telegram_id) FROM game.notifications") == 250
    assert await restore(admin, at(hours=2)) == 50


async def test_the_jobs_batches_commit_one_by_one(admin, bot_conn, database, paused_restore_job):
    # The job's procedure at the real time: waifus due hours ago (their clocks put back by
    # hand, then the cursor reset as an operator would) are found and staged. pg_cron's own
    # run of the job would take some of them: paused for the whole test.
    await admin.execute("UPDATE game.config SET tick_batch_size = 100")
    await admin.execute("INSERT INTO game.players (telegram_id) SELECT g FROM generate_series(1, 230) AS g")
    await admin.execute("""
        INSERT INTO game.waifus (owner_id, template_code, name, dynamic)
        SELECT g, 'sakura', 'W', jsonb_build_object('xp', 0, 'energy', 50, 'mood', 50, 'loyalty', 50,
                                                    'last_restore', extract(epoch FROM now()) - 3 * 3600 - g)
        FROM generate_series(1, 230) AS g""")
    await admin.fetchval("SELECT ops.reset_tick(now() - interval '3 hours')")
    conn = await asyncpg.connect(database.admin_url)
    try:
        await conn.execute("SET ROLE waifu_cron")
        await conn.execute("CALL game.restore_energy_job()")
    finally:
        await conn.close()
    state = await admin.fetchrow("SELECT last_batches, last_filled, runs FROM game.tick_state")
    assert (state["last_batches"], state["last_filled"]) == (3, 230)
    # Three transactions: the staged ranges carry three different xmins.
    assert await admin.fetchval("SELECT count(DISTINCT xmin::text) FROM game.rested_ranges") == 3
    # Operators see the longest of them (0015), a part of the run.
    tick = await admin.fetchrow("SELECT last_longest_transaction_ms, last_duration_ms FROM ops.tick")
    assert 0 < tick["last_longest_transaction_ms"] < tick["last_duration_ms"]


async def test_a_tick_never_waits_for_a_waifu_a_call_holds(admin, bot_conn, database):
    ids = await waifus_at(admin, bot_conn, [(0, 90), (0, 90)])  # both full at T0+10 min
    holder = await asyncpg.connect(database.admin_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM game.waifus WHERE id = $1 FOR UPDATE", ids[0])
        await holder.execute("SET lock_timeout = '5s'")
        started = asyncio.get_running_loop().time()
        assert await restore(admin, at(minutes=11)) == 2
        assert asyncio.get_running_loop().time() - started < 1
        # The sender's side takes no row lock on a waifu either.
        assert await expand(admin, at(minutes=11)) == 2
        await tx.rollback()
    finally:
        await holder.close()


async def test_a_waifu_who_spent_before_her_message_was_made_is_not_told(admin, bot_conn, database):
    [wid] = await waifus_at(admin, bot_conn, [(0, 90)])
    holder = await asyncpg.connect(database.clock_bot_url)
    try:
        async with holder.transaction():
            # A participation in progress: the tick sees her as she was, at the cap.
            await holder.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k', $2)", wid, at(minutes=11))
            assert await restore(admin, at(minutes=11, seconds=30)) == 1
    finally:
        await holder.close()
    # She spent: her full_at left the staged range, so no row is made for her.
    assert await restore(admin, at(minutes=12)) == 0
    assert await expand(admin, at(minutes=12)) == 0
    assert await admin.fetchval("SELECT count(*) FROM game.notifications") == 0


async def test_the_cursor_never_passes_a_transaction_still_running(admin, bot_conn, database):
    # A writer's rows carry full_at after its own start, so the cursor stops there: a
    # tick at the real time while a transaction from a minute ago is open keeps the cursor
    # at that transaction's start.
    holder = await asyncpg.connect(database.admin_url)
    try:
        async with holder.transaction():
            started = await holder.fetchval("SELECT now()")
            await asyncio.sleep(0.2)
            await admin.fetchval("SELECT api.restore_energy()")
            cursor = await admin.fetchval("SELECT to_timestamp(cursor_full_at::float8) FROM game.tick_state")
            assert cursor <= started
    finally:
        await holder.close()
    await admin.fetchval("SELECT api.restore_energy()")
    cursor = await admin.fetchval("SELECT to_timestamp(cursor_full_at::float8) FROM game.tick_state")
    assert cursor > started


async def test_a_tick_back_in_time_finds_nobody_and_reset_tick_looks_again(admin, bot_conn):
    [wid] = await waifus_at(admin, bot_conn, [(0, 90)])  # full at T0+10 min
    assert await restore(admin, at(minutes=20)) == 1
    await set_stored(admin, wid, clock=at(minutes=1), energy=90)  # full at T0+11 min, behind the cursor
    assert await restore(admin, at(minutes=5)) == 0
    assert await restore(admin, at(minutes=11)) == 0  # the cursor never goes back by itself
    assert await restore(admin, at(minutes=21)) == 0
    # After clocks written by hand, an operator moves it back: she is found again.
    await admin.fetchval("SELECT ops.reset_tick()")
    assert await restore(admin, at(minutes=21)) == 1
    assert await restore(admin, at(minutes=21)) == 0
    assert await admin.fetchval("SELECT count(*) FROM game.rested_ranges") == 2


async def test_spending_moves_full_at_and_restoring_does_not(admin, bot_conn):
    [wid] = await waifus_at(admin, bot_conn, [(-45, 50)])  # full at T0+49 min 15 s
    before = await full_at(admin, wid)
    assert before == at(minutes=49, seconds=15).timestamp()
    # A participation restores her first (her clock moves by whole intervals), then
    # spends: her cap is 'walk''s cost further away.
    await bot_conn.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k1', $2)", wid, at(minutes=3))
    cost = await admin.fetchval("SELECT energy_cost FROM game.events WHERE code = 'walk'")
    assert await full_at(admin, wid) == before + 60 * cost
    # A full waifu's full_at is her clock; she starts a new clock when she spends.
    await set_stored(admin, wid, energy=100)
    assert await full_at(admin, wid) == (await stored(admin, wid))["clock"].timestamp()
    await bot_conn.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k2', $2)", wid, at(minutes=9, seconds=7))
    assert await full_at(admin, wid) == at(minutes=9, seconds=7 + 60 * cost).timestamp()


async def test_the_ticks_work_list_is_an_index_range(admin):
    # With sequential scans priced out, a plan that still avoids the index would mean the
    # tick's condition does not match it (a test table is too small for a fair choice).
    async with admin.transaction():
        # Priced out too: a bitmap scan (which loses the order) and a sort; a Sort left in
        # the plan would mean the index cannot give the cursor's order.
        await admin.execute("SET LOCAL enable_seqscan = off")
        await admin.execute("SET LOCAL enable_bitmapscan = off")
        await admin.execute("SET LOCAL enable_sort = off")
        plan = await admin.fetchval("EXPLAIN (FORMAT JSON) SELECT w.id, w.full_at FROM game.waifus AS w "
                                    "WHERE (w.full_at, w.id) > (1.5, 7) AND (w.full_at, w.id) <= (10, 0) "
                                    "AND (w.dynamic ->> 'energy')::integer < game.max_energy() "
                                    "ORDER BY w.full_at, w.id LIMIT 10")
    # The energy condition is the partial index's predicate: read off the index alone.
    assert "Index Only Scan" in str(plan) and "waifus_full_at_idx" in str(plan) and "Sort" not in str(plan)


async def test_operators_see_the_tick(admin, bot_conn, ops_conn):
    await waifus_at(admin, bot_conn, [(-3600, 10)])
    await admin.fetchval("SELECT ops.reset_tick(now() - interval '1 day')")
    tick = await ops_conn.fetchrow("SELECT * FROM ops.tick")
    assert tick["due_now"] == 0  # due in 2100
    assert await ops_conn.fetchval("SELECT api.restore_energy()") == 0
    tick = await ops_conn.fetchrow("SELECT * FROM ops.tick")
    assert tick["runs"] >= 1 and tick["last_batches"] == 1 and tick["last_duration_ms"] >= 0
    assert T0 - tick["cursor_at"] > timedelta(days=1)


async def test_a_transaction_that_wrote_nothing_holds_the_cursor_back_only_so_long(admin, ops_conn, database):
    # game.checked_now refuses a transaction time over 5 minutes old, so one that has
    # written nothing by then never writes a waifu: the horizon (default 6 minutes) stops
    # counting it. A transaction that wrote keeps counting, however old. Here the limit is
    # shortened to 0.3 s to see both without waiting 6 minutes.
    reader = await asyncpg.connect(database.admin_url)
    writer = await asyncpg.connect(database.admin_url)
    try:
        await reader.execute("BEGIN")
        read_start = await reader.fetchval("SELECT now()")
        await writer.execute("BEGIN")
        await writer.execute("UPDATE game.config SET tick_batch_size = tick_batch_size")
        write_start = await writer.fetchval("SELECT now()")
        await asyncio.sleep(0.5)
        assert await admin.fetchval("SELECT game.tick_horizon(interval '0.3 s')") == write_start
        # An operator sees what the tick sees (the writer is another role's session).
        assert await ops_conn.fetchval("SELECT game.tick_horizon(interval '0.3 s')") == write_start
        # With the default limit the reader counts too.
        assert await admin.fetchval("SELECT game.tick_horizon()") == read_start
        await writer.execute("ROLLBACK")
        await asyncio.sleep(0.5)
        # Neither counts now: the horizon is the real time.
        horizon = await admin.fetchval("SELECT game.tick_horizon(interval '0.3 s')")
        assert horizon > write_start + timedelta(seconds=0.4)
        assert await admin.fetchval("SELECT game.tick_horizon()") == read_start
    finally:
        await reader.close()
        await writer.close()

