"""The restore tick's memory (0009): a tick within a minute of the last full pass reads only
the waifus whose clock phase came round since the last tick; everything else still ends up
restored, by that tick or by the next full pass.

T0 is a whole minute (epoch mod 60 = 0), so a waifu's clock phase is her clock's seconds.
Each test runs in one transaction: the ticks hold the tick's advisory lock to the end, so
the real pg_cron tick cannot run in between and turn a window into a full pass.
"""

from __future__ import annotations

from tests.core.conftest import at, player_with_waifu, restore, set_stored, stats, stored


async def waifus_with_clocks(admin, bot_conn, clocks: list[float]) -> list[int]:
    """A waifu with energy 50 for each clock (seconds from T0), one player each."""
    ids = []
    for k, clock in enumerate(clocks, start=1):
        wid = await player_with_waifu(bot_conn, k, template="sakura")
        await set_stored(admin, wid, clock=at(seconds=clock), energy=50)
        ids.append(wid)
    return ids


async def energies(admin, ids: list[int]) -> list[int]:
    return [(await stored(admin, wid))["energy"] for wid in ids]


async def test_a_tick_right_after_a_tick_restores_only_what_came_due(admin, bot_conn):
    # Due at T0+10 s, T0+40 s and T0+5 s.
    ids = await waifus_with_clocks(admin, bot_conn, [-50, -20, -55])
    async with admin.transaction():
        await admin.execute("DELETE FROM game.restore_state")
        assert await restore(admin, at()) == 0  # a full pass: nobody due yet
        assert await restore(admin, at(seconds=10)) == 2  # the window (T0, T0+10 s]
        assert await energies(admin, ids) == [51, 50, 51]
        assert await restore(admin, at(seconds=45)) == 1
        assert await energies(admin, ids) == [51, 51, 51]
        assert await restore(admin, at(seconds=45)) == 0
        state = await admin.fetchrow("SELECT last_at, full_at FROM game.restore_state")
        assert (state["last_at"], state["full_at"]) == (at(seconds=45), at())
        # An interval after the full pass: a full pass again (each restored once more).
        assert await restore(admin, at(seconds=70)) == 2
        assert await energies(admin, ids) == [52, 51, 52]
        assert (await admin.fetchval("SELECT full_at FROM game.restore_state")) == at(seconds=70)


async def test_a_window_that_wraps_round_the_minute(admin, bot_conn):
    # Due at T0+55 s, T0+65 s (phase 5) and T0+90 s (phase 30).
    ids = await waifus_with_clocks(admin, bot_conn, [-5, 5, 30])
    async with admin.transaction():
        await admin.execute("DELETE FROM game.restore_state")
        assert await restore(admin, at(seconds=50)) == 0
        # (50 s, 60 s) and [0, 10 s] of the next minute.
        assert await restore(admin, at(seconds=70)) == 2
        assert await energies(admin, ids) == [51, 51, 50]
        assert await restore(admin, at(seconds=95)) == 1
        assert await energies(admin, ids) == [51, 51, 51]


async def test_a_waifu_written_behind_the_ticks_back_waits_for_the_next_full_pass(admin, bot_conn):
    [wid] = await waifus_with_clocks(admin, bot_conn, [30])
    async with admin.transaction():
        await admin.execute("DELETE FROM game.restore_state")
        assert await restore(admin, at()) == 0
        # A direct write (no api function does this) puts her clock 100 s in the past:
        # due since T0-40 s, but her phase (20 s) is outside the next window (0, 10 s].
        await set_stored(admin, wid, clock=at(seconds=-100), energy=50)
        assert await restore(admin, at(seconds=10)) == 0
        assert (await stored(admin, wid))["energy"] == 50
        # Reads never depend on the tick: she already shows the restored energy.
        assert (await stats(admin, wid, at(seconds=10)))["energy"] == 51
        assert await restore(admin, at(seconds=60)) == 1  # a full pass
        assert (await stored(admin, wid))["energy"] == 52


async def test_a_tick_back_in_time_is_a_full_pass(admin, bot_conn):
    [wid] = await waifus_with_clocks(admin, bot_conn, [600])
    async with admin.transaction():
        await admin.execute("DELETE FROM game.restore_state")
        assert await restore(admin, at(minutes=20)) == 1  # 10 intervals since T0+10 min
        assert (await stored(admin, wid))["energy"] == 60
        await set_stored(admin, wid, clock=at(minutes=1), energy=50)
        assert await restore(admin, at(minutes=5)) == 1
        assert (await stored(admin, wid))["energy"] == 54
        assert (await admin.fetchval("SELECT full_at FROM game.restore_state")) == at(minutes=5)


async def test_a_participation_of_a_regenerating_waifu_keeps_her_phase(admin, bot_conn):
    [wid] = await waifus_with_clocks(admin, bot_conn, [-45])  # due at T0+15 s
    phase = await admin.fetchval("SELECT clock_phase FROM game.waifus WHERE id = $1", wid)
    assert phase == 15
    # A participation restores her first: her clock moves by whole intervals.
    await bot_conn.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k1', $2)", wid, at(minutes=3))
    assert await admin.fetchval("SELECT clock_phase FROM game.waifus WHERE id = $1", wid) == phase
    # A full waifu starts a new clock when she spends: a new phase.
    await set_stored(admin, wid, energy=100)
    await bot_conn.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k2', $2)", wid, at(minutes=9, seconds=7))
    assert await admin.fetchval("SELECT clock_phase FROM game.waifus WHERE id = $1", wid) == 7
