"""The restore tick stores a waifu's energy when it reaches the cap (0010): a waifu below
the cap is not written, and every read shows her energy now from her clock. The tick's
work list is full_at (the epoch second her stored energy reaches the cap) where
regenerating.

Each test runs in one transaction: the ticks hold the tick's advisory lock to the end, so
the real pg_cron tick cannot run in between.
"""

from __future__ import annotations

from tests.core.conftest import at, player_with_waifu, restore, set_stored, stats, stored


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


async def full_at(admin, wid: int) -> float | None:
    return await admin.fetchval("SELECT full_at FROM game.waifus WHERE id = $1", wid)


async def test_a_tick_fills_the_waifus_that_reached_the_cap_and_writes_no_other(admin, bot_conn):
    # Full at T0+60 s (99 + 1), T0+30 s (98 + 2 from T0-90 s), and T0+40 min (50 + 50 from T0-10 min).
    ids = await waifus_at(admin, bot_conn, [(0, 99), (-90, 98), (-10 * 60, 50)])
    assert [await full_at(admin, wid) for wid in ids] == [
        at().timestamp() + 60, at().timestamp() + 30, at(minutes=40).timestamp()]
    async with admin.transaction():
        xmins = await admin.fetch("SELECT xmin::text FROM game.waifus WHERE id = ANY($1) ORDER BY id", ids)
        assert await restore(admin, at(seconds=29)) == 0
        assert await admin.fetch("SELECT xmin::text FROM game.waifus WHERE id = ANY($1) ORDER BY id", ids) == xmins
        # Not written, but every read shows her energy now.
        assert [(await stats(admin, wid, at(seconds=29)))["energy"] for wid in ids] == [99, 99, 60]

        assert await restore(admin, at(seconds=30)) == 1
        assert await energies(admin, ids) == [99, 100, 50]
        assert await restore(admin, at(seconds=59)) == 0
        assert await restore(admin, at(seconds=60)) == 1
        assert await energies(admin, ids) == [100, 100, 50]
        assert [await full_at(admin, wid) for wid in ids[:2]] == [None, None]
        # The third one stays as stored until the cap, and is filled with the clock it
        # would have had: exactly 50 intervals after hers.
        assert await restore(admin, at(minutes=39, seconds=59)) == 0
        assert await restore(admin, at(minutes=45)) == 1
        row = await stored(admin, ids[2])
        assert (row["energy"], row["clock"]) == (100, at(minutes=40))
        assert await restore(admin, at(minutes=45)) == 0


async def test_a_waifu_written_behind_the_ticks_back_is_filled_by_the_next_tick(admin, bot_conn):
    [wid] = await waifus_at(admin, bot_conn, [(0, 50)])
    async with admin.transaction():
        assert await restore(admin, at(seconds=10)) == 0
        # A direct write (no api function does this) puts her clock 2 hours in the past:
        # the next tick, whenever it runs, finds her, because full_at follows the row.
        await set_stored(admin, wid, clock=at(hours=-2), energy=50)
        assert await restore(admin, at(seconds=11)) == 1
        row = await stored(admin, wid)
        assert (row["energy"], row["clock"]) == (100, at(hours=-2, minutes=50))


async def test_a_tick_back_in_time_fills_nobody_early(admin, bot_conn):
    [wid] = await waifus_at(admin, bot_conn, [(0, 90)])  # full at T0+10 min
    async with admin.transaction():
        assert await restore(admin, at(minutes=20)) == 1
        await set_stored(admin, wid, clock=at(minutes=1), energy=90)  # full at T0+11 min
        assert await restore(admin, at(minutes=5)) == 0
        assert await restore(admin, at(minutes=10, seconds=59)) == 0
        assert (await stored(admin, wid))["energy"] == 90
        assert await restore(admin, at(minutes=11)) == 1


async def test_spending_moves_full_at_and_restoring_does_not(admin, bot_conn):
    [wid] = await waifus_at(admin, bot_conn, [(-45, 50)])  # full at T0+49 min 15 s
    before = await full_at(admin, wid)
    assert before == at(minutes=49, seconds=15).timestamp()
    # A participation restores her first (her clock moves by whole intervals), then
    # spends: her cap is 'walk''s cost further away.
    await bot_conn.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k1', $2)", wid, at(minutes=3))
    cost = await admin.fetchval("SELECT energy_cost FROM game.events WHERE code = 'walk'")
    assert await full_at(admin, wid) == before + 60 * cost
    # A full waifu starts a new clock when she spends.
    await set_stored(admin, wid, energy=100)
    assert await full_at(admin, wid) is None
    await bot_conn.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k2', $2)", wid, at(minutes=9, seconds=7))
    assert await full_at(admin, wid) == at(minutes=9, seconds=7 + 60 * cost).timestamp()


async def test_the_ticks_work_list_is_an_index_range(admin):
    # With sequential scans priced out, a plan that still avoids the index would mean the
    # tick's condition does not match it (a test table is too small for a fair choice).
    async with admin.transaction():
        await admin.execute("SET LOCAL enable_seqscan = off")
        plan = await admin.fetchval("EXPLAIN (FORMAT JSON) UPDATE game.waifus AS w SET name = name "
                                    "WHERE w.regenerating AND w.full_at <= extract(epoch FROM now())")
    assert "waifus_full_at_idx" in str(plan)
