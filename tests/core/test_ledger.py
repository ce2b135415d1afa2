"""The bounded ledger: weekly partitions made ahead and dropped whole past the retention
window (game.config), idempotency across partition boundaries, cooldowns that outlive the
ledger, and what operators see (ops.ledger, ops.cron_jobs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from tests.core.conftest import T0, create_event, participate, player_with_waifu, refused

WEEK = timedelta(weeks=1)
# T0 (2100-01-01, a Friday) lies in the week starting Monday 2099-12-28; the next starts here.
BOUNDARY = datetime.fromisoformat("2100-01-04T00:00:00+00:00")


async def maintain(admin: asyncpg.Connection, at: datetime, premake: int = 4) -> dict[str, Any]:
    return await admin.fetchval("SELECT game.maintain_ledger($1, $2)", at, premake)


async def partitions(admin: asyncpg.Connection) -> dict[str, tuple[datetime | None, datetime | None]]:
    """ops.ledger as {partition: (starts_at, ends_at)}."""
    return {r["partition"]: (r["starts_at"], r["ends_at"])
            for r in await admin.fetch("SELECT partition, starts_at, ends_at FROM ops.ledger")}


async def partition_of(admin: asyncpg.Connection, telegram_id: int, key: str) -> str:
    return await admin.fetchval(
        "SELECT tableoid::regclass::text FROM game.participations WHERE telegram_id = $1 AND request_key = $2",
        telegram_id, key)


async def test_retention_is_kept_once_in_game_config(admin, ops_conn):
    assert await admin.fetchval("SELECT count(*) FROM game.config") == 1
    assert await admin.fetchval("SELECT ledger_retention FROM game.config") == timedelta(days=30)
    assert (await maintain(admin, T0))["retention"] == "30 days"
    await ops_conn.execute("SELECT ops.set_config(ledger_retention => '14 days')")
    assert await ops_conn.fetchval("SELECT ledger_retention FROM ops.config") == timedelta(days=14)
    # the maintenance, the operators' view and the window all read the one setting
    assert (await maintain(admin, T0))["retention"] == "14 days"
    assert set(await admin.fetchval("SELECT array_agg(DISTINCT retention) FROM ops.ledger")) == {timedelta(days=14)}
    # a window shorter than a week could drop a key's partition within days of its use
    await refused(admin, "WF006", ops_conn.fetchval("SELECT ops.set_config(ledger_retention => '2 days')"))
    # no function body spells the retention out
    bodies = await admin.fetch(
        """SELECT p.oid::regprocedure::text AS name FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
           WHERE n.nspname IN ('game', 'api', 'ops') AND p.prosrc ~* '30 days'""")
    assert [r["name"] for r in bodies] == []


async def test_partitions_are_made_ahead_and_rows_land_in_their_week(admin, bot_conn):
    result = await maintain(admin, T0)
    layout = await partitions(admin)
    weeks = sorted(v for v in layout.values() if v[0] is not None)
    week_of_t0 = BOUNDARY - WEEK
    # the week of T0 and four more ahead, each one week long, back to back
    assert [w for w in weeks if w[0] >= week_of_t0] == [
        (week_of_t0 + k * WEEK, week_of_t0 + (k + 1) * WEEK) for k in range(5)]
    assert set(result["created"]) <= set(layout)
    assert "participations_default" in layout
    wid = await player_with_waifu(bot_conn)
    await participate(bot_conn, 1, wid, "walk", "k", T0)
    assert await partition_of(admin, 1, "k") != "game.participations_default"
    # idempotent: a second run the same day creates and drops nothing
    again = await maintain(admin, T0)
    assert again["created"] == [] and again["dropped"] == []


async def test_old_partitions_are_dropped_whole_never_deleted_row_by_row(admin, bot_conn):
    await maintain(admin, T0)
    wid = await player_with_waifu(bot_conn)
    await participate(bot_conn, 1, wid, "walk", "old", T0)  # in the week ending at BOUNDARY
    await participate(bot_conn, 1, wid, "walk", "new", BOUNDARY + timedelta(days=1))
    old_part, new_part = await partition_of(admin, 1, "old"), await partition_of(admin, 1, "new")
    assert old_part != new_part
    # while a row of its week is inside the window (the week ends 30 days before) it stays
    kept = await maintain(admin, BOUNDARY + timedelta(days=30) - timedelta(seconds=1))
    assert old_part.removeprefix("game.") not in kept["dropped"]
    # the week of "old" ends exactly 30 days before: the whole partition goes, "new" stays
    dropped = await maintain(admin, BOUNDARY + timedelta(days=30))
    assert dropped["dropped"] == [old_part.removeprefix("game.")]
    assert await admin.fetchval("SELECT to_regclass($1)", old_part) is None
    keys = await admin.fetch("SELECT request_key FROM game.participations ORDER BY 1")
    assert [r["request_key"] for r in keys] == ["new"]
    # the only rows the maintenance ever deletes are the ones it moves out of the default partition
    source = await admin.fetchval("SELECT prosrc FROM pg_proc WHERE oid = 'game.maintain_ledger'::regproc")
    deletes = [line.strip() for line in source.splitlines() if "DELETE" in line.upper()]
    assert deletes and all("participations_default" in line for line in deletes), deletes


async def test_rows_of_a_week_without_a_partition_wait_in_the_default_one_and_move(admin, bot_conn):
    await maintain(admin, T0)
    far = T0 + 10 * WEEK  # beyond the four weeks made ahead
    wid = await player_with_waifu(bot_conn)
    first = await participate(bot_conn, 1, wid, "walk", "far", far)
    assert await partition_of(admin, 1, "far") == "game.participations_default"
    moved = await maintain(admin, far)
    assert moved["moved_from_default"] == 1
    assert await partition_of(admin, 1, "far") not in (None, "game.participations_default")
    replay = await participate(bot_conn, 1, wid, "walk", "far", far + timedelta(minutes=1))
    assert replay["replayed"] is True and replay["changes"] == first["changes"]


async def test_a_key_applied_before_a_partition_boundary_replays_after_it(admin, bot_conn):
    await maintain(admin, T0)
    wid = await player_with_waifu(bot_conn)
    before = BOUNDARY - timedelta(seconds=1)
    first = await participate(bot_conn, 1, wid, "walk", "tap", before)
    again = await participate(bot_conn, 1, wid, "walk", "tap", BOUNDARY + timedelta(seconds=1))
    assert again["replayed"] is True and again["participated_at"] == first["participated_at"]
    assert again["changes"] == first["changes"]
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 1
    # the key lives in the partition that ends at the boundary; the replay looked past it
    part = (await partition_of(admin, 1, "tap")).removeprefix("game.")
    assert await admin.fetchval("SELECT ends_at FROM ops.ledger WHERE partition = $1", part) == BOUNDARY


async def test_a_key_reused_for_another_action_in_another_partition_is_refused(admin, bot_conn):
    await maintain(admin, T0)
    wid = await player_with_waifu(bot_conn)
    await participate(bot_conn, 1, wid, "walk", "k", BOUNDARY - timedelta(seconds=1))
    detail = await refused(admin, "WF007",
                           participate(bot_conn, 1, wid, "gift", "k", BOUNDARY + timedelta(seconds=1)))
    assert detail["request_key"] == "k" and detail["event_code"] == "walk"
    # and the other way round: a key first used after the boundary, reused weeks later
    await participate(bot_conn, 1, wid, "walk", "k2", BOUNDARY + timedelta(seconds=2))
    await refused(admin, "WF007", participate(bot_conn, 1, wid, "gift", "k2", BOUNDARY + 2 * WEEK))


async def test_cooldowns_outlive_the_ledger(admin, bot_conn):
    await maintain(admin, T0)
    await create_event(admin, "pilgrimage", 10, xp=100, cooldown=timedelta(days=60))
    wid = await player_with_waifu(bot_conn)
    await participate(bot_conn, 1, wid, "pilgrimage", "p1", T0)
    later = T0 + timedelta(days=45)
    dropped = await maintain(admin, later)
    assert dropped["dropped"]  # the partition that held the participation is gone
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 0
    detail = await refused(admin, "WF003", participate(bot_conn, 1, wid, "pilgrimage", "p2", later))
    assert datetime.fromisoformat(detail["available_at"]) == T0 + timedelta(days=60)
    events = await bot_conn.fetchval("SELECT api.available_events($1, $2)", wid, later)
    pilgrimage = next(e for e in events if e["code"] == "pilgrimage")
    assert pilgrimage["cooldown_remaining_seconds"] == 15 * 24 * 3600
    assert (await participate(bot_conn, 1, wid, "pilgrimage", "p3", T0 + timedelta(days=60)))["replayed"] is False


async def test_operators_see_the_window_and_the_partitions(admin, ops_conn):
    await maintain(admin, T0)
    rows = await ops_conn.fetch("SELECT * FROM ops.ledger")
    assert {"partition", "starts_at", "ends_at", "estimated_rows", "bytes", "retention",
            "window_starts_at"} <= set(rows[0].keys())
    assert all(r["retention"] == timedelta(days=30) for r in rows)
    assert rows[0]["partition"] == "participations_default" and rows[0]["starts_at"] is None
    assert len({r["window_starts_at"] for r in rows}) == 1
    help_rows = await ops_conn.fetch("SELECT name FROM ops.help WHERE name IN ('ops.ledger', 'ops.set_config')")
    assert len(help_rows) == 2


async def test_the_ledger_job_runs_as_waifu_cron_and_its_health_is_shown(admin, ops_conn):
    job = await admin.fetchrow(
        "SELECT jobid, command, schedule, username, database FROM cron.job WHERE jobname = 'ledger-partitions'")
    assert job["username"] == "waifu_cron" and job["schedule"] == "7 * * * *"
    # the job's own command works with the job's own role
    async with admin.transaction():
        await admin.execute("SET LOCAL ROLE waifu_cron")
        result = await admin.fetchval(job["command"])
        assert set(result) == {"created", "dropped", "moved_from_default", "retention"}
    health = "SELECT health, run_as FROM ops.cron_jobs WHERE jobname = 'ledger-partitions'"
    # pg_cron really runs it at minute 7 of each hour: a session that spans one has a run
    await admin.execute("DELETE FROM cron.job_run_details WHERE jobid = $1", job["jobid"])
    assert dict(await ops_conn.fetchrow(health)) == {"health": "never ran", "run_as": "waifu_cron"}
    # what an operator sees after a failed run, and after a run too long ago
    run = "INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, return_message, " \
          "start_time, end_time) VALUES ($1, nextval('cron.runid_seq'), $2, 'waifu_cron', $3, $4, $5, $6, $6) " \
          "RETURNING runid"
    runids = []
    try:
        runids.append(await admin.fetchval(run, job["jobid"], job["database"], job["command"], "failed",
                                           "ERROR: test failure", datetime.now(T0.tzinfo)))
        failing = await ops_conn.fetchrow("SELECT health, failures_24h FROM ops.cron_jobs "
                                          "WHERE jobname = 'ledger-partitions'")
        assert dict(failing) == {"health": "failing", "failures_24h": 1}
        await admin.execute("DELETE FROM cron.job_run_details WHERE runid = $1", runids.pop())
        runids.append(await admin.fetchval(run, job["jobid"], job["database"], job["command"], "succeeded",
                                           "SELECT 1", datetime.now(T0.tzinfo) - timedelta(days=3)))
        assert (await ops_conn.fetchrow(health))["health"] == "stalled"
    finally:
        await admin.execute("DELETE FROM cron.job_run_details WHERE runid = ANY($1::bigint[])", runids)
