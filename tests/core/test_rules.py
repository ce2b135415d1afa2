"""The game's rules: new waifus, levels, participation, clamping, energy and its clock,
restore ticks, effective reads, event windows and cooldowns."""

from math import isqrt

import pytest

from tests.core.conftest import (
    T0,
    adopt,
    at,
    create_event,
    participate,
    player_with_waifu,
    register,
    restore,
    set_stored,
    stats,
    stored,
    ts,
)


async def test_new_waifu_starts_full_at_level_one(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    s = await stats(bot_conn, wid, T0)
    assert {k: s[k] for k in ("xp", "level", "level_xp", "next_level_xp", "energy", "max_energy", "mood",
                              "loyalty", "next_energy_at", "full_energy_at")} == {
        "xp": 0, "level": 1, "level_xp": 0, "next_level_xp": 100, "energy": 100, "max_energy": 100,
        "mood": 50, "loyalty": 50, "next_energy_at": None, "full_energy_at": None}
    assert s["waifu_id"] == wid and s["name"] == "Sakura"
    assert await stored(admin, wid) | {"clock": None} == {"xp": 0, "energy": 100, "mood": 50, "loyalty": 50,
                                                          "clock": None}


@pytest.mark.parametrize(("xp", "level", "next_level_xp"), [
    (0, 1, 100), (99, 1, 100), (100, 2, 400), (399, 2, 400), (400, 3, 900), (899, 3, 900), (900, 4, 1600),
    (100 * 4634**2 - 1, 4634, 100 * 4634**2), (100 * 4634**2, 4635, 100 * 4635**2),
    (100 * 3_000_000**2 - 1, 3_000_000, 100 * 3_000_000**2),  # 9e14 xp: still exact
    (100 * 3_000_000**2, 3_000_001, 100 * 3_000_001**2),
])
async def test_level_math_in_the_stats_card(admin, bot_conn, xp, level, next_level_xp):
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, xp=xp)
    s = await stats(bot_conn, wid, T0)
    assert (s["xp"], s["level"], s["next_level_xp"]) == (xp, level, next_level_xp)
    assert s["level_xp"] == 100 * (level - 1) ** 2


async def test_level_formula_at_every_level_boundary_up_to_level_3000(admin):
    # level = 1 + floor(sqrt(xp / 100)); for integers that is 1 + isqrt(xp // 100).
    xps = sorted({max(0, 100 * k * k + d) for k in range(3000) for d in (-1, 0, 1)} | set(range(0, 10001)))
    rows = await admin.fetch("SELECT x, game.level_for_xp(x) AS level FROM unnest($1::bigint[]) AS x", xps)
    assert len(rows) == len(xps)
    assert [(r["x"], r["level"]) for r in rows if r["level"] != 1 + isqrt(r["x"] // 100)] == []


async def test_participation_spends_rewards_and_records_the_ledger(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    r = await participate(bot_conn, 1, wid, "walk", "k1", at(minutes=5))  # walk: 10 energy, +15 xp, +4, +1
    assert (r["energy"], r["xp"], r["mood"], r["loyalty"], r["level"]) == (90, 15, 54, 51, 1)
    assert r["changes"] == {"energy": -10, "xp": 15, "mood": 4, "loyalty": 1, "level_before": 1,
                            "level_after": 1, "leveled_up": False, "coins": 2}
    assert r["replayed"] is False and r["event_code"] == "walk" and r["request_key"] == "k1"
    assert ts(r["participated_at"]) == at(minutes=5)
    # A full waifu that spends starts its clock at the spend.
    assert ts(r["next_energy_at"]) == at(minutes=6) and ts(r["full_energy_at"]) == at(minutes=15)
    ledger = await admin.fetch("SELECT * FROM game.participations")
    assert len(ledger) == 1
    row = ledger[0]
    assert (row["telegram_id"], row["waifu_id"], row["event_code"], row["request_key"], row["energy_spent"],
            row["xp_gained"], row["mood_change"], row["loyalty_change"]) == (1, wid, "walk", "k1", 10, 15, 4, 1)
    assert row["participated_at"] == at(minutes=5) and (row["level_before"], row["level_after"]) == (1, 1)
    assert await stored(admin, wid) == {"xp": 15, "energy": 90, "mood": 54, "loyalty": 51, "clock": at(minutes=5)}
    card = await stats(bot_conn, wid, at(minutes=5))
    assert {k: r[k] for k in card} == card  # the result carries the stats card


async def test_participation_levels_up(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, xp=390)
    r = await participate(bot_conn, 1, wid, "walk", "k1", T0)
    assert (r["xp"], r["level"], r["next_level_xp"]) == (405, 3, 900)
    assert r["changes"]["level_before"] == 2 and r["changes"]["level_after"] == 3 and r["changes"]["leveled_up"]


@pytest.mark.parametrize(("mood", "loyalty", "event", "expected", "changes"), [
    (90, 95, "joy", (100, 100), (10, 5)),     # capped at 100
    (100, 100, "joy", (100, 100), (0, 0)),
    (20, 5, "grief", (0, 0), (-20, -5)),      # floored at 0
    (0, 0, "grief", (0, 0), (0, 0)),
    (70, 70, "joy", (100, 100), (30, 30)),    # exactly reaching the bound
    (30, 30, "grief", (0, 0), (-30, -30)),
])
async def test_mood_and_loyalty_are_clamped(admin, bot_conn, mood, loyalty, event, expected, changes):
    await create_event(admin, "joy", 0, xp=1, mood=30, loyalty=30)
    await create_event(admin, "grief", 0, xp=1, mood=-30, loyalty=-30)
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, mood=mood, loyalty=loyalty)
    r = await participate(bot_conn, 1, wid, event, "k", T0)
    assert (r["mood"], r["loyalty"]) == expected
    assert (r["changes"]["mood"], r["changes"]["loyalty"]) == changes
    row = await admin.fetchrow("SELECT mood_change, loyalty_change FROM game.participations")
    assert tuple(row) == changes  # the ledger keeps the change as applied
    s = await stored(admin, wid)
    assert (s["mood"], s["loyalty"]) == expected


async def test_energy_restores_one_per_whole_minute_up_to_the_cap(admin, bot_conn):
    await create_event(admin, "sprint", 30, xp=1)
    wid = await player_with_waifu(bot_conn)
    await participate(bot_conn, 1, wid, "sprint", "k", T0)
    expected = {at(seconds=0): 70, at(seconds=59.999999): 70, at(minutes=1): 71, at(minutes=1, seconds=59): 71,
                at(minutes=2): 72, at(minutes=29, seconds=59): 99, at(minutes=30): 100, at(hours=5): 100}
    for now, energy in expected.items():
        s = await stats(bot_conn, wid, now)
        assert s["energy"] == energy, now
        if energy < 100:
            assert ts(s["next_energy_at"]) == at(minutes=energy - 69)
            assert ts(s["full_energy_at"]) == at(minutes=30)
        else:
            assert s["next_energy_at"] is None and s["full_energy_at"] is None
    assert (await stored(admin, wid))["energy"] == 70  # reads store nothing


async def test_a_tick_finds_her_when_she_reaches_the_cap_and_the_next_write_keeps_time(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    await participate(bot_conn, 1, wid, "walk", "k", at(hours=0))  # 10:00:00, from full: clock starts here
    s = await stats(bot_conn, wid, at(minutes=1, seconds=59))       # a read at 10:01:59
    assert (s["energy"], ts(s["next_energy_at"])) == (91, at(minutes=2))
    assert await restore(admin, at(minutes=1, seconds=59)) == 0    # below the cap: nothing stored
    s = await stored(admin, wid)
    assert (s["energy"], s["clock"]) == (90, at())
    assert (await stats(bot_conn, wid, at(minutes=9, seconds=59)))["energy"] == 99
    assert await restore(admin, at(minutes=9, seconds=59)) == 0
    assert await restore(admin, at(minutes=10, seconds=30)) == 1   # full at 10:10:00
    s = await stored(admin, wid)
    assert (s["energy"], s["clock"]) == (90, at())                  # the tick writes no waifu
    s = await stats(bot_conn, wid, at(minutes=10, seconds=30))
    assert (s["energy"], s["next_energy_at"]) == (100, None)
    # The next write stores her restored: spending from full starts the clock at the spend.
    await participate(bot_conn, 1, wid, "walk", "k2", at(minutes=10, seconds=30))
    s = await stored(admin, wid)
    assert (s["energy"], s["clock"]) == (90, at(minutes=10, seconds=30))


async def test_catch_up_after_an_hour_without_ticks_is_exact(admin, bot_conn):
    await register(bot_conn, 1)
    low, high = await adopt(bot_conn, 1, "sakura"), await adopt(bot_conn, 1, "yuki")
    await set_stored(admin, low, energy=0, clock=T0)
    await set_stored(admin, high, energy=50, clock=T0)
    # cron stopped at 10:00:00 and came back at 11:00:30
    assert await restore(admin, at(hours=1, seconds=30)) == 1      # `high` reached the cap at 10:50
    assert (await stats(bot_conn, high, at(hours=1, seconds=30)))["energy"] == 100
    s = await stored(admin, low)
    assert (s["energy"], s["clock"]) == (0, T0)                     # nothing written: as stored
    assert (await stats(bot_conn, low, at(hours=1, seconds=30)))["energy"] == 60
    assert ts((await stats(bot_conn, low, at(hours=1, seconds=30)))["next_energy_at"]) == at(hours=1, minutes=1)
    assert (await stats(bot_conn, high, at(hours=9)))["energy"] == 100
    assert await restore(admin, at(hours=9)) == 1                   # `low` reached it at 11:40
    assert (await stats(bot_conn, low, at(hours=1, minutes=39)))["energy"] == 99
    assert (await stats(bot_conn, low, at(hours=9)))["energy"] == 100


async def test_spending_keeps_the_clock_of_a_regenerating_waifu(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, energy=90, clock=T0)
    r = await participate(bot_conn, 1, wid, "walk", "k", at(seconds=40))
    assert r["energy"] == 80 and ts(r["next_energy_at"]) == at(minutes=1)
    assert (await stored(admin, wid))["clock"] == T0
    assert (await stats(bot_conn, wid, at(minutes=1)))["energy"] == 81


async def test_spending_from_full_starts_the_clock_at_the_spend(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, clock=at(hours=-5))  # an old clock of a full waifu means nothing
    r = await participate(bot_conn, 1, wid, "walk", "k", at(seconds=40))
    assert r["energy"] == 90 and ts(r["next_energy_at"]) == at(minutes=1, seconds=40)
    assert (await stored(admin, wid))["clock"] == at(seconds=40)
    assert (await stats(bot_conn, wid, at(minutes=1, seconds=39)))["energy"] == 90
    assert (await stats(bot_conn, wid, at(minutes=1, seconds=40)))["energy"] == 91


async def test_waifu_that_regenerated_to_full_before_the_spend_starts_a_new_clock(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, energy=95, clock=T0)  # full at 10:05:00 (pending, not stored)
    r = await participate(bot_conn, 1, wid, "walk", "k", at(minutes=7, seconds=30))
    assert r["energy"] == 90 and ts(r["next_energy_at"]) == at(minutes=8, seconds=30)
    assert await stored(admin, wid) == {"xp": 15, "energy": 90, "mood": 54, "loyalty": 51,
                                                    "clock": at(minutes=7, seconds=30)}


async def test_restore_finds_only_waifus_at_the_cap_writes_none_and_finds_each_once(admin, bot_conn):
    await register(bot_conn, 1)
    full, fresh, due, due_cap = [await adopt(bot_conn, 1) for _ in range(4)]
    await set_stored(admin, full, clock=at(hours=-3))
    await set_stored(admin, fresh, energy=10, clock=at(seconds=-59))   # less than a minute: not due
    await set_stored(admin, due, energy=98, clock=at(minutes=-1, seconds=-1))  # 1 of 2 minutes
    await set_stored(admin, due_cap, energy=99, clock=at(hours=-1))
    rows_before = {r["id"]: r for r in await admin.fetch("SELECT * FROM game.waifus")}
    assert await restore(admin, T0) == 1                             # due_cap
    assert {r["id"]: r for r in await admin.fetch("SELECT * FROM game.waifus")} == rows_before
    assert (await stats(bot_conn, due_cap, T0))["energy"] == 100
    assert await restore(admin, T0) == 0
    # `due` reaches the cap at T0 + 59 s
    assert await restore(admin, at(seconds=58)) == 0
    assert await restore(admin, at(seconds=59)) == 1
    assert await restore(admin, at(seconds=59)) == 0
    assert (await stored(admin, due))["energy"] == 98 and (await stats(bot_conn, due, at(seconds=59)))["energy"] == 100
    assert {r["id"]: r for r in await admin.fetch("SELECT * FROM game.waifus")} == rows_before


async def test_reads_return_effective_energy_between_ticks(admin, bot_conn):
    await create_event(admin, "climb", 55, xp=1)
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, energy=50, clock=T0)
    now = at(minutes=4, seconds=30)
    s = await stats(bot_conn, wid, now)
    assert (s["energy"], ts(s["next_energy_at"]), ts(s["full_energy_at"])) == (54, at(minutes=5), at(minutes=50))
    profile = await bot_conn.fetchval("SELECT api.player_profile(1, $1)", now)
    assert profile["waifus"] == [s]
    assert await bot_conn.fetchval("SELECT api.player_waifu_stats(1, $1, $2)", wid, now) == s
    climb = {e["code"]: e for e in await bot_conn.fetchval("SELECT api.available_events($1, $2)", wid, now)}["climb"]
    assert climb["enough_energy"] is False
    climb = {e["code"]: e for e in await bot_conn.fetchval("SELECT api.available_events($1, $2)", wid,
                                                           at(minutes=5))}["climb"]
    assert climb["enough_energy"] is True
    assert (await stored(admin, wid))["energy"] == 50  # nothing was stored by the reads
    # and the action uses the same effective energy
    r = await participate(bot_conn, 1, wid, "climb", "k", at(minutes=5))
    assert r["energy"] == 0 and ts(r["next_energy_at"]) == at(minutes=6)


async def test_event_window_opens_at_starts_at_and_closes_at_ends_at(admin, bot_conn):
    await create_event(admin, "festival", 5, xp=20, starts_at=at(hours=1), ends_at=at(hours=2))
    wid = await player_with_waifu(bot_conn)

    async def open_codes(now):
        return [e["code"] for e in await bot_conn.fetchval("SELECT api.available_events($1, $2)", wid, now)]

    assert "festival" not in await open_codes(at(minutes=59, seconds=59))
    assert "festival" in await open_codes(at(hours=1))
    assert "festival" in await open_codes(at(hours=1, minutes=59, seconds=59))
    assert "festival" not in await open_codes(at(hours=2))
    assert sorted(await open_codes(T0)) == ["cafe", "gift", "movie", "training", "walk"]
    r = await participate(bot_conn, 1, wid, "festival", "k1", at(hours=1))
    assert r["xp"] == 20
    r = await participate(bot_conn, 1, wid, "festival", "k2", at(hours=1, minutes=59, seconds=59))
    assert r["xp"] == 40


async def test_cooldown_is_per_waifu_and_event(admin, bot_conn):
    await register(bot_conn, 1)
    first, second = await adopt(bot_conn, 1), await adopt(bot_conn, 1)
    await participate(bot_conn, 1, first, "cafe", "k1", T0)  # cafe: 30 minutes cooldown
    events = {e["code"]: e for e in await bot_conn.fetchval("SELECT api.available_events($1, $2)", first,
                                                            at(minutes=10))}
    assert events["cafe"]["cooldown_seconds"] == 1800
    assert events["cafe"]["cooldown_remaining_seconds"] == 1200
    assert ts(events["cafe"]["available_at"]) == at(minutes=30)
    assert events["walk"]["cooldown_remaining_seconds"] == 0 and events["walk"]["available_at"] is None
    # the other waifu and the other events are free
    await participate(bot_conn, 1, second, "cafe", "k2", at(minutes=10))
    await participate(bot_conn, 1, first, "gift", "k3", at(minutes=10))
    # the cooldown ends exactly at last + cooldown
    r = await participate(bot_conn, 1, first, "cafe", "k4", at(minutes=30))
    assert r["xp"] == 35 + 10 + 35
    events = {e["code"]: e for e in await bot_conn.fetchval("SELECT api.available_events($1, $2)", first,
                                                            at(minutes=30, seconds=0.5))}
    assert events["cafe"]["cooldown_remaining_seconds"] == 1800  # rounded up to whole seconds


async def test_event_with_zero_cooldown_can_repeat_at_the_same_instant(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    for i in range(3):
        await participate(bot_conn, 1, wid, "walk", f"k{i}", T0)
    assert (await stats(bot_conn, wid, T0))["energy"] == 70
