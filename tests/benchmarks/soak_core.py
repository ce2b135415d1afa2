"""Soak of the core (issue 8): the real pg_cron tick every minute under steady participations.

    .venv/bin/python -m tests.benchmarks.soak_core [--minutes 15] [--waifus 1000000] [--rate 1000]
        [--active 50000] [--database-url URL] [--keep]

Short check (about 3 minutes): --minutes 2 --waifus 20000 --active 2000 --rate 200

1. load --waifus players and waifus (bench_core's loader), VACUUM ANALYZE;
2. participations from asyncpg as role waifu_bot (pool 10, open loop at --rate calls/s,
   a unique request key per call) over the first --active waifus in turn, with the real
   clock: an event costing 1 energy, no cooldown. At 1,000 calls/s over 50,000 waifus each
   spends 1.2 energy a minute and regains 1: she stays regenerating and never runs dry (up
   to 0009 each tick stored about --active waifus' +1; since 0010 it writes only the waifus
   reaching the cap, here none, and every participation moves her full_at);
3. pg_cron's restore-energy job (every minute, as it runs in production) does the ticks;
4. after --warmup-minutes (the regenerating set fills up), a --minutes window is measured:
   tick durations from cron.job_run_details (p50, max), failed runs of any job, table and
   index sizes at the start and the end of the window (they must stay flat for
   game.waifus), autovacuum runs, HOT share, WAL, checkpoints, the participations' rate,
   latency and errors, and the machine's load every minute (a shared machine: say so).

Prints a table and writes bench-results/soak_core.json. Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from tests.benchmarks import common
from tests.benchmarks.bench_core import EVENT_CODE, TELEGRAM_BASE, connect, load_game, log
from tests.benchmarks.common import Metric, info, target_at_least, target_at_most

NAME = "soak_core"
POOL_SIZE = 10
CALLERS = 50  # concurrent callers the open loop may use (a slow call never stalls the schedule)
PARTICIPATE_SQL = "SELECT api.participate_in_event($1, $2, $3, $4)"

TABLES = ("game.waifus", "game.participations", "game.notifications", "game.players")

# A partitioned table counts as the sum of its partitions (pg_partition_tree of a plain
# table is empty, hence the UNION).
TABLE_STATS_SQL = """
SELECT coalesce(sum(n_tup_upd), 0)::bigint AS n_tup_upd, coalesce(sum(n_tup_hot_upd), 0)::bigint AS n_tup_hot_upd,
       coalesce(sum(n_dead_tup), 0)::bigint AS n_dead_tup, coalesce(sum(n_live_tup), 0)::bigint AS n_live_tup,
       coalesce(sum(autovacuum_count), 0)::bigint AS autovacuum_count,
       coalesce(sum(autoanalyze_count), 0)::bigint AS autoanalyze_count
FROM pg_stat_user_tables
WHERE relid IN (SELECT relid FROM pg_partition_tree($1::regclass) UNION SELECT $1::regclass)
"""

SIZES_SQL = """
SELECT coalesce(sum(pg_table_size(relid)), 0)::bigint AS heap,
       coalesce(sum(pg_indexes_size(relid)), 0)::bigint AS indexes
FROM (SELECT relid FROM pg_partition_tree($1::regclass) UNION SELECT $1::regclass) AS t
"""

TICKS_SQL = """
SELECT d.status, d.start_time, d.end_time, extract(epoch FROM d.end_time - d.start_time)::float8 AS seconds,
       j.jobname, d.return_message
FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid)
WHERE d.start_time >= $1 AND d.start_time < $2
ORDER BY d.start_time
"""


class Soak:
    def __init__(self, args: argparse.Namespace, db: common.BenchDatabase) -> None:
        self.args = args
        self.db = db
        self.metrics: list[Metric] = []
        self.context: dict[str, Any] = {"args": vars(args), "database": db.source}
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error: str | None = None
        self.calls = 0
        self.minutes: list[dict[str, Any]] = []

    def add(self, metric: Metric) -> None:
        self.metrics.append(metric)

    async def run(self) -> None:
        self.admin = await connect(self.db.admin_url)
        try:
            await self.prepare()
            pool = await asyncpg.create_pool(self.db.bot_url, min_size=POOL_SIZE, max_size=POOL_SIZE,
                                             init=common.init_connection)
            try:
                stop = asyncio.Event()
                load = asyncio.create_task(self.participations(pool, stop))
                await self.wait_minutes(self.args.warmup_minutes, "warm-up")
                start = await self.snapshot("start")
                calls0, errors0, lat0 = self.calls, self.errors, len(self.latencies)
                await self.wait_minutes(self.args.minutes, "soak")
                end = await self.snapshot("end")
                calls, errors = self.calls - calls0, self.errors - errors0
                latencies = self.latencies[lat0:]
                stop.set()
                await load
            finally:
                await pool.close()
            await self.report(start, end, calls, errors, latencies)
        finally:
            await self.admin.close()

    async def prepare(self) -> None:
        n = self.args.waifus
        log(f"loading {n:,} players and waifus  [load {common.machine_load()['load_1m']}]")
        clock = datetime.now(UTC).replace(microsecond=0)
        t0 = time.perf_counter()
        await load_game(self.db.admin_url, n, clock, self.args.load_jobs)
        self.context["load_s"] = time.perf_counter() - t0
        await self.admin.execute(
            "SELECT ops.create_event($1, 'Soak event', 1, 5, 1, 1, interval '0')", EVENT_CODE)
        jobs = await self.admin.fetch("SELECT jobname, schedule, active, username FROM cron.job ORDER BY jobname")
        self.context["cron_jobs"] = [dict(r) for r in jobs]
        if not any(r["jobname"] == "restore-energy" and r["active"] for r in jobs):
            raise RuntimeError("the restore-energy pg_cron job is not active")
        self.context["settings"] = await common.server_settings(self.db.admin_url)
        log(f"loaded in {self.context['load_s']:.0f} s; cron jobs: "
            + ", ".join(f"{r['jobname']} {r['schedule']}" for r in jobs))

    async def participations(self, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        """Open loop: call i is due at start + i / rate, whoever is free takes it."""
        rate, active = self.args.rate, min(self.args.active, self.args.waifus)
        run = f"soak{time.time_ns():x}"
        start = time.perf_counter()
        counter = 0

        async def caller() -> None:
            nonlocal counter
            while not stop.is_set():
                i = counter
                counter += 1
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                waifu_id = 1 + i % active
                t0 = time.perf_counter()
                try:
                    await pool.fetchval(PARTICIPATE_SQL, TELEGRAM_BASE + waifu_id, waifu_id, EVENT_CODE, f"{run}-{i}")
                except Exception as exc:  # noqa: BLE001 - counted and reported, the load goes on
                    self.errors += 1
                    self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"
                    continue
                self.latencies.append(time.perf_counter() - t0)
                self.calls += 1

        await asyncio.gather(*(caller() for _ in range(CALLERS)))

    async def wait_minutes(self, minutes: float, label: str) -> None:
        """Sleep `minutes`, logging the load, call rate and the regenerating waifus each minute."""
        end = time.monotonic() + minutes * 60
        shares = await common.CpuShares.of(self.admin, self.db.admin_url)
        while (left := end - time.monotonic()) > 0:
            calls0, errors0, t0 = self.calls, self.errors, time.perf_counter()
            shares.start()
            await asyncio.sleep(min(60.0, left))
            cores = shares.stop()
            elapsed = time.perf_counter() - t0
            regenerating = await self.admin.fetchval(
                "SELECT count(*) FROM game.waifus WHERE regenerating")  # the partial index (0006)
            waifus_mb = await self.admin.fetchval(
                "SELECT (pg_table_size('game.waifus') + pg_indexes_size('game.waifus')) / 1048576.0")
            minute = {"phase": label, "at": datetime.now(UTC).isoformat(timespec="seconds"),
                      "calls_per_s": round((self.calls - calls0) / elapsed, 1), "errors": self.errors - errors0,
                      "regenerating": regenerating, "waifus_mb": round(float(waifus_mb), 1), "cores": cores,
                      **common.machine_load()}
            self.minutes.append(minute)
            log(f"{label}: {minute['calls_per_s']:,.0f} calls/s, {minute['errors']} errors, "
                f"{regenerating:,} regenerating, game.waifus {minute['waifus_mb']} MB with indexes; "
                f"load {minute['load_1m']}, cores {cores}")

    async def snapshot(self, label: str) -> dict[str, Any]:
        await self.admin.execute("SELECT pg_stat_force_next_flush()")
        snap: dict[str, Any] = {"at": await self.admin.fetchval("SELECT clock_timestamp()"), "tables": {}}
        for table in TABLES:
            if await self.admin.fetchval("SELECT to_regclass($1)", table) is None:
                continue
            stats = await self.admin.fetchrow(TABLE_STATS_SQL, table)
            sizes = await self.admin.fetchrow(SIZES_SQL, table)
            snap["tables"][table] = {**dict(stats or {}), **dict(sizes or {})}
        snap["wal_lsn"] = int(await self.admin.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
        snap["checkpoints"] = dict(await self.admin.fetchrow(
            "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter") or {})
        waifus = snap["tables"]["game.waifus"]
        log(f"{label}: game.waifus {waifus['heap'] / 2**20:.1f} MB + {waifus['indexes'] / 2**20:.1f} MB of indexes")
        return snap

    async def report(self, start: dict[str, Any], end: dict[str, Any], calls: int, errors: int,
                     latencies: list[float]) -> None:
        runs = [dict(r) for r in await self.admin.fetch(TICKS_SQL, start["at"], end["at"])]
        ticks = [r["seconds"] for r in runs if r["jobname"] == "restore-energy" and r["seconds"] is not None]
        failed = [r for r in runs if r["status"] != "succeeded"]
        seconds = (end["at"] - start["at"]).total_seconds()
        lat = common.latency_ms(latencies)
        self.context.update(start=start, end=end, job_runs=runs, minutes=self.minutes,
                            participations={"calls": calls, "errors": errors, "first_error": self.first_error,
                                            "seconds": seconds, "latency": lat})
        self.add(info("window", round(seconds / 60, 1), "min",
                      f"after {self.args.warmup_minutes} min of warm-up; {self.args.waifus:,} waifus, "
                      f"{min(self.args.active, self.args.waifus):,} taking part"))
        self.add(target_at_least("restore-energy runs", len(ticks), max(1, int(seconds // 60) - 1), "",
                                 "pg_cron's job, from cron.job_run_details (one a minute)"))
        self.add(Metric("failed job runs", len(failed), "", "= 0", not failed,
                        "; ".join(f"{r['jobname']} {r['status']}: {r['return_message']}" for r in failed[:3])))
        if ticks:
            self.add(info("tick p50", round(common.percentile(ticks, 50) * 1000), "ms",
                          "end_time - start_time of the job runs: " + ", ".join(f"{t * 1000:.0f}" for t in ticks)))
            self.add(info("tick max", round(max(ticks) * 1000), "ms"))
        self.add(info("participations", round(calls / seconds), "calls/s",
                      f"target rate {self.args.rate}/s; {calls:,} calls, {errors} errors"
                      + (f" (first: {self.first_error})" if self.first_error else "")))
        self.add(target_at_most("participation errors", errors, 0))
        self.add(info("participation p50 / p99", f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}", "ms",
                      f"max {lat['max_ms']:.0f} ms"))
        for table, s in start["tables"].items():
            e = end["tables"][table]
            short = table.split(".")[1]
            growth = (e["heap"] + e["indexes"]) / max(1, s["heap"] + s["indexes"]) - 1
            note = (f"heap {s['heap'] / 2**20:.1f} -> {e['heap'] / 2**20:.1f} MB, indexes "
                    f"{s['indexes'] / 2**20:.1f} -> {e['indexes'] / 2**20:.1f} MB; autovacuum runs "
                    f"{e['autovacuum_count'] - s['autovacuum_count']}, "
                    f"autoanalyze {e['autoanalyze_count'] - s['autoanalyze_count']}"
                    f"; dead rows at the end {e['n_dead_tup']:,}")
            if table == "game.waifus":
                upd, hot = e["n_tup_upd"] - s["n_tup_upd"], e["n_tup_hot_upd"] - s["n_tup_hot_upd"]
                note += f"; HOT {hot:,} of {upd:,} updates ({100 * hot / max(upd, 1):.1f}%)"
                self.add(target_at_most(f"{short}: size growth", round(100 * growth, 1), 5, "%", note))
            else:
                self.add(info(f"{short}: size growth", round(100 * growth, 1), "%", note))
        wal = end["wal_lsn"] - start["wal_lsn"]
        self.add(info("WAL", round(wal / seconds / 2**20, 2), "MB/s",
                      f"{wal / max(calls, 1):.0f} bytes per participation (ticks included); checkpoints "
                      f"timed {end['checkpoints']['checkpoints_timed'] - start['checkpoints']['checkpoints_timed']}, "
                      f"requested {end['checkpoints']['checkpoints_req'] - start['checkpoints']['checkpoints_req']}"))
        sizes = [m["waifus_mb"] for m in self.minutes if m["phase"] == "soak"]
        self.add(info("game.waifus size each minute", f"{min(sizes):.0f}..{max(sizes):.0f}", "MB",
                      "heap + indexes: " + ", ".join(f"{v:.0f}" for v in sizes)))
        loads = [m["load_1m"] for m in self.minutes if m["phase"] == "soak"]
        others = [m["cores"].get("others", 0) for m in self.minutes if m["phase"] == "soak"]
        self.add(info("machine load (1 min avg) during the window", f"{min(loads):.1f}..{max(loads):.1f}", "",
                      f"{common.machine_load()['cpus']} cores; other processes used "
                      f"{min(others):.2f}..{max(others):.2f} cores"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.soak_core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15, help="measured window")
    parser.add_argument("--warmup-minutes", type=float, default=1.5, help="before the window")
    parser.add_argument("--waifus", type=int, default=1_000_000, help="waifus (and players) to load")
    parser.add_argument("--active", type=int, default=50_000, help="waifus taking part (ids 1..active in turn)")
    parser.add_argument("--rate", type=float, default=1000, help="participations per second (open loop)")
    parser.add_argument("--load-jobs", type=int, default=2, help="connections loading the data")
    parser.add_argument("--cluster", default="soak", help="name of the local cluster (re-created at the start)")
    common.add_database_args(parser)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.active < 1 or args.waifus < 1:
        parser.error("--minutes, --rate, --active and --waifus must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with common.bench_database(args.cluster, args.database_url, args.bot_database_url, args.keep,
                               common.parse_settings(args.settings)) as db:
        soak = Soak(args, db)
        asyncio.run(soak.run())
    soak.context["wall_s"] = round(time.perf_counter() - started, 1)
    common.report(NAME, soak.metrics, soak.context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
