"""The database's own figures for Prometheus (migration 0012): ops.metrics(),
ops.metrics_cron(), ops.metrics_outbox(), and the exporter's login waifu_monitor, which
may call those and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml

from db.localdb import with_user
from tests.conftest import init_connection
from tests.core.conftest import T0, participate, player_with_waifu, restore, set_stored

MONITOR_PASSWORD = "monitor-test-password"
ROOT = Path(__file__).resolve().parents[2]
JOBS = {"ledger-partitions", "purge-cron-history", "purge-player-history", "purge-rate-limits", "restore-energy",
        "group-events", "leaderboard-steps",  # 0013
        "coin-ledger-retention"}  # 0014


@pytest.fixture
async def monitor_conn(database, admin) -> AsyncIterator[asyncpg.Connection]:
    """The exporter's login, exactly as db/monitoring/ uses it."""
    await admin.execute(f"ALTER ROLE waifu_monitor PASSWORD '{MONITOR_PASSWORD}'")
    conn = await asyncpg.connect(with_user(database.admin_url, "waifu_monitor", MONITOR_PASSWORD))
    await init_connection(conn)
    try:
        yield conn
    finally:
        await conn.close()


async def metrics(conn: asyncpg.Connection) -> dict:
    return dict(await conn.fetchrow("SELECT * FROM ops.metrics()"))


async def test_metrics_count_players_waifus_and_the_tick(admin, bot_conn, monitor_conn) -> None:
    empty = await metrics(monitor_conn)
    assert (empty["players"], empty["waifus"], empty["outbox_waiting"], empty["outbox_oldest_age_seconds"]) == (
        0, 0, 0, 0)
    ann = await player_with_waifu(bot_conn, 1, "sakura")
    bob = await player_with_waifu(bot_conn, 2, "rin")
    await player_with_waifu(bot_conn, 2, "yuki")
    for n in range(3):
        await participate(bot_conn, 1, ann, "walk", f"k{n}", T0 + timedelta(seconds=n))
    await set_stored(admin, bob, energy=40, clock=T0 - timedelta(hours=2))  # full by T0: the tick fills her
    before = await metrics(monitor_conn)
    assert (before["players"], before["waifus"]) == (2, 3)
    # ann and bob: full_at after the real now (the tests' clock T0 is in 2100).
    assert before["waifus_regenerating"] == 2

    assert await restore(admin, T0) == 1
    after = await metrics(monitor_conn)
    assert after["tick_runs_total"] == before["tick_runs_total"] + 1
    assert after["tick_filled_total"] == before["tick_filled_total"] + 1
    assert after["tick_notified_total"] == before["tick_notified_total"] + 1
    assert (after["tick_last_filled"], after["tick_last_batches"]) == (1, 1)
    assert 0 < after["tick_last_duration_seconds"] < 5
    assert 0 <= after["tick_last_finished_age_seconds"] < 5
    # bob's "she is rested": staged by the tick, a row once a sender claims
    assert (after["outbox_waiting"], after["outbox_rested_staged"]) == (0, 1)

    # The ledger's rows, from the statistics (flushed when the writing session idles).
    deadline = asyncio.get_running_loop().time() + 20
    while (await metrics(monitor_conn))["ledger_inserted_rows_total"] < before["ledger_inserted_rows_total"] + 3:
        assert asyncio.get_running_loop().time() < deadline, "the ledger's insert count never showed 3 more"
        await asyncio.sleep(0.5)


async def test_outbox_oldest_age_and_outcomes(admin, bot_conn, monitor_conn) -> None:
    await player_with_waifu(bot_conn, 1)
    await admin.execute("""
        INSERT INTO game.notifications (telegram_id, kind, payload, created_at, available_at, sent_at, outcome)
        VALUES (1, 'rested', '{"waifus": []}', now() - interval '11 minutes', now(), NULL, NULL),
               (1, 'rested', '{"waifus": []}', now() - interval '2 minutes', now(), NULL, NULL),
               (1, 'rested', '{"waifus": []}', now() - interval '1 hour', now(), now(), 'expired'),
               (1, 'rested', '{"waifus": []}', now() - interval '1 hour', now(), now(), 'sent')""")
    m = await metrics(monitor_conn)
    assert m["outbox_waiting"] == 2
    assert 659 < m["outbox_oldest_age_seconds"] < 700
    outbox = dict(await monitor_conn.fetch("SELECT outcome, notifications FROM ops.metrics_outbox()"))
    assert outbox == {"waiting": 2, "sent": 1, "expired": 1, "blocked": 0, "off": 0, "failed": 0, "stale": 0}


async def test_ledger_partitions_past_the_retention_are_counted_until_dropped(admin, monitor_conn) -> None:
    m = await metrics(monitor_conn)
    assert m["ledger_partitions"] >= 2 and m["ledger_bytes"] > 0
    assert m["ledger_expired_partitions"] == 0
    assert m["ledger_retention_seconds"] == 30 * 86400
    old = (await admin.fetchval("SELECT date_trunc('week', now() - interval '60 days')"))
    await admin.execute(f"""CREATE TABLE game.participations_metrics_test PARTITION OF game.participations
                            FOR VALUES FROM ('{old.isoformat()}') TO ('{(old + timedelta(days=7)).isoformat()}')""")
    try:
        m = await metrics(monitor_conn)
        assert m["ledger_expired_partitions"] == 1
        assert m["ledger_oldest_age_seconds"] > 59 * 86400
        await admin.execute("SELECT game.maintain_ledger()")  # what the hourly job does
        assert (await metrics(monitor_conn))["ledger_expired_partitions"] == 0
    finally:
        await admin.execute("DROP TABLE IF EXISTS game.participations_metrics_test")


async def test_cron_metrics_list_every_job(monitor_conn, admin) -> None:
    rows = {r["cron_job"]: r for r in await monitor_conn.fetch("SELECT * FROM ops.metrics_cron()")}
    assert set(rows) == JOBS
    up_for = await admin.fetchval("SELECT extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())")
    for r in rows.values():
        # Never run yet in a fresh cluster: the age counts from the server's start.
        assert 0 <= r["last_success_age_seconds"] <= float(up_for) + 60
        assert r["last_failed"] in (0, 1) and r["succeeded_1h"] >= 0 and r["failed_1h"] >= 0


@pytest.mark.parametrize("sql", [
    "SELECT * FROM game.players",
    "SELECT * FROM game.waifus",
    "SELECT * FROM game.notifications",
    "SELECT * FROM ops.overview",
    "SELECT * FROM ops.tick",
    "SELECT * FROM ops.help",
    "SELECT * FROM ops.cron_failures",
    "SELECT api.waifu_templates()",
    "SELECT api.player_profile(1)",
    "SELECT api.restore_energy()",
    "SELECT ops.set_config(ledger_retention => '7 days')",
    "SELECT ops.reset_tick()",
    "SELECT game.maintain_ledger()",
    "CALL game.restore_energy_job()",
])
async def test_the_monitor_login_may_read_its_figures_and_nothing_else(monitor_conn, sql) -> None:
    with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError)):
        await monitor_conn.fetch(sql)


async def test_the_monitor_login_is_read_only_bounded_and_blind_to_other_sessions(admin, monitor_conn) -> None:
    role = await admin.fetchrow("""SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication,
                                          pg_has_role('waifu_monitor', 'pg_monitor', 'MEMBER') AS monitor,
                                          pg_has_role('waifu_monitor', 'pg_read_all_stats', 'MEMBER') AS stats,
                                          pg_has_role('waifu_monitor', 'waifu_ops', 'MEMBER') AS ops
                                   FROM pg_roles WHERE rolname = 'waifu_monitor'""")
    assert not any(role.values())
    assert await monitor_conn.fetchval("SHOW default_transaction_read_only") == "on"
    assert await monitor_conn.fetchval("SHOW statement_timeout") == "5s"
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await monitor_conn.execute("CREATE TABLE ops.intruder (x int)")
    for schema in ("game", "api", "ops", "public"):
        assert await admin.fetchval("SELECT has_schema_privilege('waifu_monitor', $1, 'CREATE')", schema) is False
    assert await admin.fetchval("SELECT has_database_privilege('waifu_monitor', current_database(), 'TEMPORARY')") \
        is False
    callable_functions = {r["f"] for r in await admin.fetch("""
        SELECT p.oid::regprocedure::text AS f FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('api', 'ops', 'game') AND has_function_privilege('waifu_monitor', p.oid, 'EXECUTE')""")}
    assert callable_functions == {"ops.metrics()", "ops.metrics_cron()", "ops.metrics_outbox()"}
    readable = await admin.fetchval("""
        SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('game', 'api', 'ops') AND has_table_privilege('waifu_monitor', c.oid, 'SELECT')""")
    assert readable == 0
    # pg_cron grants its tables to PUBLIC (behind row security), but not its schema.
    for table in ("cron.job", "cron.job_run_details"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema cron"):
            await monitor_conn.fetch(f"SELECT * FROM {table}")
    # An operator's statement (it could carry a password) stays hidden from the exporter.
    marker = "SELECT 'a secret in a statement', pg_sleep(0)"
    await admin.execute(marker)
    queries = [r["query"] for r in await monitor_conn.fetch(
        "SELECT query FROM pg_stat_activity WHERE usename <> 'waifu_monitor' AND query <> ''")]
    assert queries and all(q == "<insufficient privilege>" for q in queries), queries


async def test_ops_help_lists_every_alert_of_the_rules_file(ops_conn) -> None:
    rules = yaml.safe_load((ROOT / "db/monitoring/alerts.yml").read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"] if "alert" in r}
    helped = {r["name"]: r["description"] for r in await ops_conn.fetch(
        "SELECT name, description FROM ops.help WHERE kind = 'alert'")}
    assert set(helped) == alerts
    assert all(len(d) > 40 for d in helped.values())
    functions = {r["name"] for r in await ops_conn.fetch("SELECT name FROM ops.help WHERE kind = 'function'")}
    assert {"ops.metrics", "ops.metrics_cron", "ops.metrics_outbox"} <= functions
