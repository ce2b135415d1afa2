"""The backup drill: play, take a full backup, play, take an incremental one, play, note
a moment, play more, then restore that moment into a fresh cluster with pgBackRest
(db/backup/) and compare: every waifu's stats and the whole ledger exactly as they were
then, nothing of what came after, and every pg_cron job present and ticking again."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from db import backup, localdb, migrate

_keys = itertools.count()


@pytest.fixture
def drill_cluster() -> Iterator[localdb.Cluster]:
    """A cluster of its own: archiving needs a restart, which the shared test database must not get."""
    cluster = localdb.cluster(f"drill-{os.getpid()}")
    cluster.destroy()
    shutil.rmtree(backup.default_repo(cluster), ignore_errors=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(backup.default_repo(cluster), ignore_errors=True)


@pytest.fixture
def restored_cluster(drill_cluster: localdb.Cluster) -> Iterator[localdb.Cluster]:
    cluster = localdb.cluster(f"{drill_cluster.name}-restored")
    cluster.destroy()
    try:
        yield cluster
    finally:
        cluster.destroy()


async def play(conn: asyncpg.Connection, players: range) -> None:
    """Each player registers, adopts a waifu and takes part twice (the server's time)."""
    for telegram_id in players:
        await conn.fetchval("SELECT api.register_player($1, $2, 'P', 'en')", telegram_id, f"p{telegram_id}")
        waifu = await conn.fetchval("SELECT api.adopt_waifu($1, 'sakura', $2)", telegram_id, f"a{next(_keys)}")
        for event in ("walk", "gift"):
            await conn.fetchval("SELECT api.participate_in_event($1, $2, $3, $4)",
                                telegram_id, waifu, event, f"k{next(_keys)}")


async def game_state(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    return {
        "waifus": [dict(r) for r in await conn.fetch("SELECT * FROM game.waifus ORDER BY id")],
        "ledger": [dict(r) for r in await conn.fetch(
            "SELECT * FROM game.participations ORDER BY telegram_id, request_key")],
        "players": [dict(r) for r in await conn.fetch("SELECT * FROM game.players ORDER BY telegram_id")],
    }


async def test_backup_and_point_in_time_restore_drill(drill_cluster: localdb.Cluster,
                                                      restored_cluster: localdb.Cluster) -> None:
    migrate.apply(drill_cluster.url())
    backup.setup(drill_cluster)
    conn = await asyncpg.connect(drill_cluster.url())
    try:
        await play(conn, range(1, 6))
        full = await asyncio.to_thread(backup.backup, drill_cluster, "full")
        await play(conn, range(6, 11))
        incremental = await asyncio.to_thread(backup.backup, drill_cluster, "incr")
        await play(conn, range(11, 16))

        moment = await conn.fetchval("SELECT clock_timestamp()")
        then = await game_state(conn)
        await asyncio.sleep(1)
        await play(conn, range(16, 21))
        # A game changed after the moment: players, waifus, the ledger and stats of old waifus.
        await conn.fetchval("SELECT api.participate_in_event(1, (SELECT id FROM game.waifus WHERE owner_id = 1), "
                            "'walk', 'after-the-moment')")
        assert await game_state(conn) != then
        jobs_then = {r["jobname"]: r["active"] for r in await conn.fetch("SELECT jobname, active FROM cron.job")}
        assert jobs_then["restore-energy"] is True
        # The WAL up to now reaches the repository (check switches to a new segment and waits).
        await asyncio.to_thread(backup.pgbackrest, drill_cluster, "check")
    finally:
        await conn.close()

    sets = await asyncio.to_thread(backup.backups, drill_cluster)
    assert [(b["label"], b["type"]) for b in sets] == [(full, "full"), (incremental, "incr")]
    assert sets[1]["reference"] == [full]  # the incremental needs the full one

    # pgBackRest reads milliseconds: the next one (nothing happened in the second after the moment).
    target = (moment + timedelta(milliseconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00"
    restored = await asyncio.to_thread(backup.restore, drill_cluster, target, into=restored_cluster)
    conn = await asyncpg.connect(restored.url())
    try:
        promoted_at = await conn.fetchval("SELECT clock_timestamp()")  # restore() returns once promoted
        now = await game_state(conn)
        assert len(now["players"]) == 15 and len(now["ledger"]) == 30
        assert now == then  # every waifu's stats and the ledger, exactly as at the moment
        assert await conn.fetchval("SHOW archive_mode") == "off"  # the copy never writes into the repository

        jobs = {r["jobname"]: r["active"] for r in await conn.fetch("SELECT jobname, active FROM cron.job")}
        assert jobs == jobs_then  # every job, active as it was
        # pg_cron ticks again: a run of the restore tick that started after the promotion
        # (one minute at most: the schedule is every minute).
        deadline = asyncio.get_running_loop().time() + 75
        while not await conn.fetchval(
                """SELECT count(*) FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid)
                   WHERE j.jobname = 'restore-energy' AND d.status = 'succeeded' AND d.start_time > $1""",
                promoted_at):
            assert asyncio.get_running_loop().time() < deadline, "the restored cluster's tick never ran"
            await asyncio.sleep(1)
        tick = {r["cron_job"]: r for r in await conn.fetch("SELECT * FROM ops.metrics_cron()")}
        assert tick["restore-energy"]["last_success_age_seconds"] < 75
        assert tick["restore-energy"]["last_failed"] == 0
    finally:
        await conn.close()
