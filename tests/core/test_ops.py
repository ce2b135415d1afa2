"""What operators use from psql, called as a login role that is a member of waifu_ops."""

from datetime import timedelta

import asyncpg
import pytest

from tests.core.conftest import (
    OPERATOR_ROLE,
    T0,
    at,
    participate,
    player_with_waifu,
    register,
    set_stored,
    stats,
    stored,
    ts,
)

CREATE_EVENT = "SELECT ops.create_event($1, $2, $3, $4, $5, $6, $7, $8, $9)"


async def open_codes(conn, wid, now):
    return {e["code"] for e in await conn.fetchval("SELECT api.available_events($1, $2)", wid, now)}


async def test_create_event_creates_then_upserts(admin, ops_conn):
    created = await ops_conn.fetchval(CREATE_EVENT, "picnic", "Picnic", 15, 25, 5, 2, timedelta(hours=1),
                                      None, None)
    assert {k: created[k] for k in ("code", "title", "energy_cost", "xp_reward", "mood_delta", "loyalty_delta",
                                    "starts_at", "ends_at")} == {
        "code": "picnic", "title": "Picnic", "energy_cost": 15, "xp_reward": 25, "mood_delta": 5,
        "loyalty_delta": 2, "starts_at": None, "ends_at": None}
    row = await admin.fetchrow("SELECT * FROM game.events WHERE code = 'picnic'")
    assert row["cooldown"] == timedelta(hours=1)

    updated = await ops_conn.fetchval(CREATE_EVENT, "picnic", "Picnic 2", 0, 1, -3, -4, timedelta(0),
                                      at(hours=1), at(hours=3))
    assert (updated["title"], updated["energy_cost"], updated["mood_delta"]) == ("Picnic 2", 0, -3)
    rows = await admin.fetch("SELECT * FROM game.events WHERE code = 'picnic'")
    assert len(rows) == 1
    new = rows[0]
    assert (new["title"], new["energy_cost"], new["xp_reward"], new["mood_delta"], new["loyalty_delta"],
            new["cooldown"], new["starts_at"], new["ends_at"]) == (
        "Picnic 2", 0, 1, -3, -4, timedelta(0), at(hours=1), at(hours=3))
    assert new["created_at"] == row["created_at"] and new["updated_at"] >= row["updated_at"]


async def test_created_event_is_playable_and_an_upsert_changes_the_rules(admin, bot_conn, ops_conn):
    await ops_conn.fetchval(CREATE_EVENT, "picnic", "Picnic", 15, 25, 5, 2, timedelta(0), None, None)
    wid = await player_with_waifu(bot_conn)
    assert "picnic" in await open_codes(bot_conn, wid, T0)
    assert (await participate(bot_conn, 1, wid, "picnic", "k1", T0))["energy"] == 85
    await ops_conn.fetchval(CREATE_EVENT, "picnic", "Picnic", 40, 25, 5, 2, timedelta(0), None, None)
    assert (await participate(bot_conn, 1, wid, "picnic", "k2", T0))["energy"] == 45


async def test_close_event_closes_from_the_given_moment_and_keeps_history(admin, bot_conn, ops_conn):
    await ops_conn.fetchval(CREATE_EVENT, "picnic", "Picnic", 1, 1, 0, 0, timedelta(0), None, None)
    wid = await player_with_waifu(bot_conn)
    await participate(bot_conn, 1, wid, "picnic", "k1", T0)
    closed = await ops_conn.fetchval("SELECT ops.close_event('picnic', $1)", at(hours=1))
    assert ts(closed["ends_at"]) == at(hours=1)
    assert "picnic" in await open_codes(bot_conn, wid, at(minutes=59))
    assert "picnic" not in await open_codes(bot_conn, wid, at(hours=1))
    assert await admin.fetchval("SELECT count(*) FROM game.participations WHERE event_code = 'picnic'") == 1
    # reopening is an upsert with no window
    await ops_conn.fetchval(CREATE_EVENT, "picnic", "Picnic", 1, 1, 0, 0, timedelta(0), None, None)
    assert "picnic" in await open_codes(bot_conn, wid, at(hours=5))


async def test_close_event_defaults_to_now_and_handles_a_future_window(admin, ops_conn):
    await ops_conn.fetchval(CREATE_EVENT, "later", "Later", 1, 1, 0, 0, timedelta(0), at(hours=1), at(hours=2))
    closed = await ops_conn.fetchval("SELECT ops.close_event('later')")
    db_now = await admin.fetchval("SELECT now()")
    assert ts(closed["ends_at"]) <= db_now and closed["starts_at"] is None
    assert await admin.fetchval("SELECT open_now FROM ops.events WHERE code = 'later'") is False


async def test_set_stat_is_audited(admin, bot_conn, ops_conn):
    wid = await player_with_waifu(bot_conn)
    card = await ops_conn.fetchval("SELECT ops.set_stat($1, 'mood', 80, 'apology for a bug')", wid)
    assert card["mood"] == 80 and card["waifu_id"] == wid and "next_energy_at" in card
    await ops_conn.fetchval("SELECT ops.set_stat($1, 'xp', 1234)", wid)
    rows = await admin.fetch("SELECT * FROM game.stat_corrections ORDER BY id")
    assert [(r["waifu_id"], r["stat"], r["old_value"], r["new_value"], r["reason"], r["corrected_by"])
            for r in rows] == [(wid, "mood", 50, 80, "apology for a bug", OPERATOR_ROLE),
                               (wid, "xp", 0, 1234, None, OPERATOR_ROLE)]
    view = await ops_conn.fetch("SELECT * FROM ops.stat_corrections")
    assert [(r["stat"], r["new_value"]) for r in view] == [("xp", 1234), ("mood", 80)]
    s = await stats(bot_conn, wid, T0)
    assert (s["mood"], s["xp"], s["level"], s["energy"]) == (80, 1234, 4, 100)


async def test_set_stat_energy_keeps_the_clock_of_a_regenerating_waifu(admin, bot_conn, ops_conn):
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, energy=40, clock=T0)
    await ops_conn.fetchval("SELECT ops.set_stat($1, 'energy', 10)", wid)
    assert await stored(admin, wid) == {"xp": 0, "energy": 10, "mood": 50, "loyalty": 50, "clock": T0}


async def test_set_stat_energy_of_a_full_waifu_starts_its_clock_now(admin, bot_conn, ops_conn):
    wid = await player_with_waifu(bot_conn)
    async with ops_conn.transaction():
        now = await ops_conn.fetchval("SELECT now()")
        card = await ops_conn.fetchval("SELECT ops.set_stat($1, 'energy', 30)", wid)
    assert card["energy"] == 30 and ts(card["next_energy_at"]) == now + timedelta(minutes=1)
    assert (await stored(admin, wid))["clock"] == now


async def test_set_stat_records_the_effective_old_value_and_stores_the_restored_clock(admin, bot_conn, ops_conn):
    wid = await player_with_waifu(bot_conn)
    db_now = await admin.fetchval("SELECT now()")
    clock = db_now - timedelta(minutes=10, seconds=30)
    await set_stored(admin, wid, energy=50, clock=clock)
    await ops_conn.fetchval("SELECT ops.set_stat($1, 'energy', 20)", wid)
    assert await admin.fetchval("SELECT old_value FROM game.stat_corrections") == 60
    s = await stored(admin, wid)
    assert s["energy"] == 20 and s["clock"] == clock + timedelta(minutes=10)


async def test_every_ops_view_is_readable_by_operators(admin, ops_conn):
    views = [r["table_name"] for r in await admin.fetch(
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'ops' ORDER BY 1")]
    assert views == ["card_photos", "coins", "config", "cron_failures", "cron_jobs", "economy", "events",
                     "functions", "groups", "help", "items", "ledger", "overview", "rate_limits",
                     "recent_participations", "stat_corrections", "tick", "translations", "waifus"]
    for view in views:
        await ops_conn.fetch(f"SELECT * FROM ops.{view}")


async def test_ops_views_show_the_game(admin, bot_conn, ops_conn):
    await register(bot_conn, 1, username="ann")
    wid = await bot_conn.fetchval("SELECT api.adopt_waifu(1, 'rin')")
    db_now = await admin.fetchval("SELECT now()")
    await set_stored(admin, wid, energy=10, clock=db_now - timedelta(minutes=5, seconds=1))
    await participate(bot_conn, 1, wid, "gift", "k", db_now)

    overview = await ops_conn.fetchrow("SELECT * FROM ops.overview")
    assert dict(overview) == {"players": 1, "waifus": 1, "waifus_below_max_energy": 1, "participations_24h": 1,
                              "open_events": 5}
    w = await ops_conn.fetchrow("SELECT * FROM ops.waifus")
    # effective energy now: 10 + 5 restored - 5 spent, whatever the table holds
    assert (w["waifu_id"], w["username"], w["name"], w["energy"], w["mood"], w["loyalty"]) == (
        wid, "ann", "Rin", 10, 60, 55)
    assert w["stored_energy"] == 10 and w["full_energy_at"] is not None
    events = {r["code"]: r for r in await ops_conn.fetch("SELECT * FROM ops.events")}
    assert events["gift"]["participations_24h"] == 1 and events["gift"]["open_now"] is True
    recent = await ops_conn.fetch("SELECT * FROM ops.recent_participations")
    assert [(r["waifu_id"], r["event_code"], r["request_key"]) for r in recent] == [(wid, "gift", "k")]


async def test_cron_views_show_the_restore_job(ops_conn):
    jobs = {r["jobname"]: r for r in await ops_conn.fetch("SELECT * FROM ops.cron_jobs")}
    restore = jobs["restore-energy"]
    assert (restore["schedule"], restore["command"], restore["active"]) == (
        "* * * * *", "CALL game.restore_energy_job()", True)
    assert restore["health"] in {"ok", "never ran"}
    assert [r["jobname"] for r in await ops_conn.fetch("SELECT * FROM ops.cron_jobs")].count("restore-energy") == 1
    await ops_conn.fetch("SELECT * FROM ops.cron_failures")


async def test_operators_read_and_tick_but_cannot_write_tables(admin, bot_conn, ops_conn):
    wid = await player_with_waifu(bot_conn)
    assert (await ops_conn.fetchval("SELECT api.waifu_stats($1)", wid))["energy"] == 100
    assert await ops_conn.fetchval("SELECT api.restore_energy()") == 0
    assert await ops_conn.fetchval("SELECT count(*) FROM game.waifus") == 1
    for sql in ("UPDATE game.waifus SET name = 'x'", "DELETE FROM game.participations",
                "INSERT INTO game.players (telegram_id) VALUES (9)"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ops_conn.execute(sql)
