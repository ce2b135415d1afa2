"""Backups at 1M waifus (issue 20): how much a lost server takes with it (RPO) and how long
a point-in-time restore takes until the game accepts writes again (RTO), with pgBackRest
as db/backup/ configures it. Not run in CI.

    .venv/bin/python -m tests.benchmarks.bench_backup [--waifus 1000000] [--seconds 180] [--rate 200]

1. A throwaway local cluster `.localdb/bench-backup`, migrated, N players and N waifus
   (bench_core's loader); WAL archiving on; a full backup (timed, its size).
2. Players' load: `--rate` participations a second through api.participate_in_event for
   `--seconds`. Each second the archive's lag is sampled: now minus the moment at which the
   end of the newest archived WAL segment was the server's current position. That lag is
   the RPO: what losing the server's disk at that moment loses (archive_timeout 60 s bounds
   it when the game is quiet; a busy game fills 16 MB segments sooner).
3. An incremental backup (timed), then a restore of the load's last moment into a fresh
   cluster: the RTO is the wall time from the restore's start until the restored game
   accepts writes (pgBackRest restores the full backup, the server replays the whole
   load's WAL and is promoted), checked by counting its waifus and participations.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from db import backup, localdb, migrate
from tests.benchmarks.bench_core import TELEGRAM_BASE, load_game
from tests.benchmarks.common import info, machine_load, percentile, report, target_at_most

NAME = "bench-backup"


def repo_bytes(cluster: localdb.Cluster) -> int:
    return sum(p.stat().st_size for p in backup.default_repo(cluster).rglob("*") if p.is_file())


async def players_load(url: str, rate: float, seconds: float, waifus: int) -> tuple[int, list[datetime]]:
    """`rate` participations a second for `seconds`, spread over the waifus (one key each)."""
    conn = await asyncpg.connect(url)
    done = 0
    stamps: list[datetime] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            due = int((time.monotonic() - started) * rate)
            while done < due:
                w = 1 + (done * 7919) % waifus
                await conn.fetchval("SELECT api.participate_in_event($1, $2, 'walk', $3)",
                                    TELEGRAM_BASE + w, w, f"bench-backup-{done}")
                done += 1
            stamps.append(datetime.now(UTC))
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return done, stamps


async def archive_lag(url: str, seconds: float) -> list[float]:
    """Each second: seconds since the end of the newest archived segment was current."""
    conn = await asyncpg.connect(url)
    positions: list[tuple[float, int]] = []  # (time, current WAL position in bytes)
    lags = []
    started = time.monotonic()
    try:
        segment = int(await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"))
        while time.monotonic() - started < seconds:
            now = time.monotonic()
            position = await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'")
            positions.append((now, int(position)))
            last = await conn.fetchval("SELECT last_archived_wal FROM pg_stat_archiver")
            if last:
                # The end of segment <timeline 8><log 8><seg 8> (hex) as a byte position.
                archived_end = (int(last[8:16], 16) * 0x100000000 + int(last[16:24], 16) * segment + segment)
                # The latest moment at which the server had written no more than that.
                covered = [t for t, p in positions if p <= archived_end]
                lags.append(now - covered[-1] if covered else now - positions[0][0])
            await asyncio.sleep(1)
    finally:
        await conn.close()
    return lags


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waifus", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--rate", type=float, default=200.0, help="participations a second during the load")
    args = parser.parse_args()

    cluster = localdb.cluster(NAME)
    restored = localdb.cluster(f"{NAME}-restored")
    for c in (cluster, restored):
        c.destroy()
    shutil.rmtree(backup.default_repo(cluster), ignore_errors=True)
    cluster.start()
    metrics = []
    try:
        url = cluster.url()
        migrate.apply(url)
        t0 = time.perf_counter()
        await load_game(url, args.waifus, datetime.now(UTC) - timedelta(days=1))
        load_s = time.perf_counter() - t0
        await asyncio.to_thread(backup.setup, cluster)
        conn = await asyncpg.connect(url)
        db_bytes = await conn.fetchval("SELECT pg_database_size(current_database())")
        await conn.close()

        t0 = time.perf_counter()
        await asyncio.to_thread(backup.backup, cluster, "full")
        full_s = time.perf_counter() - t0
        full_bytes = repo_bytes(cluster)

        (done, stamps), lags = await asyncio.gather(players_load(url, args.rate, args.seconds, args.waifus),
                                                    archive_lag(url, args.seconds))
        # The end of the load: the incremental backup finished after it, so pgBackRest
        # restores the full backup and replays the whole load's WAL (the slower path).
        moment = stamps[-1]
        t0 = time.perf_counter()
        await asyncio.to_thread(backup.backup, cluster, "incr")
        incr_s = time.perf_counter() - t0
        await asyncio.to_thread(backup.pgbackrest, cluster, "check")  # the WAL up to now is archived

        target = moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00"
        t0 = time.perf_counter()
        await asyncio.to_thread(backup.restore, cluster, target, into=restored)
        rto_s = time.perf_counter() - t0
        conn = await asyncpg.connect(restored.url())
        try:
            restored_waifus = await conn.fetchval("SELECT count(*) FROM game.waifus")
            restored_ledger = await conn.fetchval("SELECT count(*) FROM game.participations")
            last_at = await conn.fetchval("SELECT max(participated_at) FROM game.participations")
        finally:
            await conn.close()
        metrics = [
            info("waifus (and players)", args.waifus),
            info("load (insert + VACUUM ANALYZE)", round(load_s, 1), "s"),
            info("database size", round(db_bytes / 2**20), "MB"),
            info("full backup", round(full_s, 1), "s"),
            info("repository after the full backup (lz4)", round(full_bytes / 2**20), "MB"),
            info("participations during the load", done, "", f"{args.rate:g}/s asked for {args.seconds:g} s"),
            target_at_most("RPO: archive lag p50", round(percentile(lags, 50), 1), 60, "s",
                           "now minus when the newest archived WAL was current, sampled each second"),
            target_at_most("RPO: archive lag max", round(max(lags), 1), 70, "s", "archive_timeout = 60 s"),
            info("incremental backup after the load", round(incr_s, 1), "s"),
            target_at_most("RTO: restore to a moment, until writable", round(rto_s, 1), 300, "s",
                           "pgbackrest restore into a fresh cluster + WAL replay + promotion"),
            info("restored waifus", restored_waifus),
            info("restored participations", restored_ledger, "",
                 f"last at {last_at:%H:%M:%S.%f} for a target of {target}"),
        ]
        assert restored_waifus == args.waifus and restored_ledger == done
        assert last_at is not None and last_at <= moment + timedelta(milliseconds=1)
    finally:
        for c in (restored, cluster):
            c.destroy()
        shutil.rmtree(backup.default_repo(cluster), ignore_errors=True)
    context: dict[str, Any] = {"machine": machine_load(), "waifus": args.waifus, "seconds": args.seconds,
                               "rate": args.rate}
    report("bench_backup", metrics, context)


if __name__ == "__main__":
    asyncio.run(main())
