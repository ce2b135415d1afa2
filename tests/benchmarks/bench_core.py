"""Core benchmark (issue 2): energy restore ticks and participations on 1,000,000 waifus.

    .venv/bin/python -m tests.benchmarks.bench_core [--waifus 1000000] [--participate-waifus 10000]
        [--seconds 10] [--database-url URL] [--keep] [--set shared_buffers=512MB]

CI size (well under a minute): --waifus 20000 --participate-waifus 1000 --seconds 2

On the same data, in one run:
1. data: N players and N waifus (one each) inserted set-based, then VACUUM ANALYZE;
2. restore tick with 5% of the waifus due (every 20th id: energy 50, clock 10.5 min old):
   `SELECT api.restore_energy(T)`, median of --tick-runs, the same 5% re-armed (UPDATE +
   VACUUM) before each run; against the "ceiling", one bare set-based jsonb_set UPDATE of
   the same rows found the same way (the partial index);
3. restore tick with none due (after VACUUM), median of --idle-runs;
4. the seed's way on the same data: read every row into Python, then one autocommitted
   UPDATE per row (a subset of --seed-rows due rows, extrapolated to every row);
5. api.participate_in_event from asyncpg as role waifu_bot (pool 10, 50 callers, a unique
   request key per call) over --participate-waifus waifus for --seconds, against the
   ceiling: a bare single-statement `UPDATE ... jsonb_set ... RETURNING` with the same pool
   and callers (as the superuser: the bot role has no table privileges). The event costs
   1 energy with no cooldown (ops.create_event); every waifu is refilled to 100 by a
   set-based UPDATE before the run, and the run stops at 95 calls per waifu, so no call
   is refused for energy.

Wall times on a shared 2-core machine move with the other load, so the script also reports
the CPU time of the server process (ticks; participations in one rolled-back transaction)
and the CPU the Python client itself used: figures that other load changes much less.

The clock of phases 2-4 is a fixed T passed as `now`; pg_cron's restore-energy job is
paused for the run (it would otherwise restore the armed rows with the real clock) and
re-activated at the end. A --database-url database is WIPED (game tables truncated).

Targets are reported, never enforced: the exit status is 0 unless the script crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from tests.benchmarks import common
from tests.benchmarks.common import Metric, info, target_at_least, target_at_most

NAME = "bench_core"
TELEGRAM_BASE = 5_000_000_000  # player of waifu id w is TELEGRAM_BASE + w (ids are not confused)
DUE_EVERY = 20  # every 20th waifu is below max: 5%
ARMED_ENERGY = 50
ARMED_AGE_SECONDS = 630.5  # 10 whole minutes to restore and a partial one that must carry over
REGEN_SECONDS = 60  # only the seed's Python rule and the arming use it; the SQL reads game.energy_regen_seconds()
MAX_ENERGY = 100
EVENT_CODE = "bench"
EVENT_COST = 1  # 100 energy = 100 calls per waifu; the run stops at 95 (see participate())
POOL_SIZE = 10
CALLERS = 50

RESET_SQL = """
TRUNCATE game.players, game.waifus, game.participations, game.stat_corrections RESTART IDENTITY CASCADE;
DELETE FROM game.events WHERE code = 'bench';
"""

LOAD_PLAYERS_SQL = """
INSERT INTO game.players (telegram_id, username, first_name, language_code)
SELECT $2::bigint + g, 'bench_' || g, 'Bench ' || g, 'en'
FROM generate_series(1, $1::integer) AS g
"""

# Stats as game.new_dynamic makes them, aged and varied: full energy, a stopped clock some
# time in the past, xp/mood/loyalty spread out. ORDER BY g so waifu id g belongs to player g.
LOAD_WAIFUS_SQL = """
WITH t AS (SELECT array_agg(code ORDER BY code) AS codes, array_agg(name ORDER BY code) AS names
           FROM game.waifu_templates)
INSERT INTO game.waifus (owner_id, template_code, name, dynamic)
SELECT $2::bigint + g, t.codes[1 + g % cardinality(t.codes)], t.names[1 + g % cardinality(t.names)],
       game.new_dynamic($3::timestamptz - random() * interval '30 days')
       || jsonb_build_object('xp', floor(random() * 20000)::integer,
                             'mood', floor(random() * 101)::integer,
                             'loyalty', floor(random() * 101)::integer)
FROM generate_series(1, $1::integer) AS g, t
ORDER BY g
"""

# The 5% scattered over the whole table (every 20th id), as active players would be.
ARM_SQL = f"""
UPDATE game.waifus
SET dynamic = dynamic || jsonb_build_object('energy', {ARMED_ENERGY},
                                            'last_restore', extract(epoch FROM $1::timestamptz) - {ARMED_AGE_SECONDS})
WHERE id % {DUE_EVERY} = 0
"""

# Everyone back to full; used before the participation phase.
REFILL_SQL = """
UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', game.max_energy())
WHERE (dynamic ->> 'energy')::integer < game.max_energy()
"""

TICK_SQL = "SELECT api.restore_energy($1)"

# The ceiling of a tick: the same rows, found the same way (predicate of the partial index
# game.waifus_energy_due_idx), rewritten by one bare jsonb_set.
TICK_CEILING_SQL = """
UPDATE game.waifus
SET dynamic = jsonb_set(dynamic, '{energy}', to_jsonb((dynamic ->> 'energy')::integer + 10))
WHERE (dynamic ->> 'energy')::integer < game.max_energy()
"""

SEED_READ_SQL = "SELECT id, dynamic FROM game.waifus"
SEED_UPDATE_SQL = "UPDATE game.waifus SET dynamic = $2 WHERE id = $1"

PARTICIPATE_SQL = "SELECT api.participate_in_event($1, $2, $3, $4)"
PARTICIPATE_SAMPLE_SQL = """
SELECT count(api.participate_in_event($1::bigint + g, g, $2, $3 || g)) FROM generate_series(1, $4::integer) AS g
"""
BARE_UPDATE_SAMPLE_SQL = """
DO $$
BEGIN
    FOR g IN 1..{n} LOOP
        UPDATE game.waifus SET dynamic = jsonb_set(dynamic, '{{xp}}', to_jsonb((dynamic ->> 'xp')::bigint + 5))
        WHERE id = g;
    END LOOP;
END
$$
"""
PARTICIPATE_CEILING_SQL = """
UPDATE game.waifus SET dynamic = jsonb_set(dynamic, '{xp}', to_jsonb((dynamic ->> 'xp')::bigint + 5))
WHERE id = $1 RETURNING dynamic
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await common.init_connection(conn)
    return conn


class Bench:
    def __init__(self, args: argparse.Namespace, db: common.BenchDatabase) -> None:
        self.args = args
        self.db = db
        self.metrics: list[Metric] = []
        self.context: dict[str, Any] = {}
        # The benchmark's clock for ticks and the seed: whole seconds, so epoch arithmetic is exact.
        self.clock = datetime.now(UTC).replace(microsecond=0)
        self.admin: asyncpg.Connection

    def add(self, metric: Metric) -> None:
        self.metrics.append(metric)

    def phase(self, name: str, message: str) -> None:
        """Log the start of a phase with the machine's load (shared machine: noisy figures)."""
        load = common.machine_load()
        self.context.setdefault("load_by_phase", {})[name] = load
        pressure = f", cpu pressure {load['cpu_pressure_10s']}%" if "cpu_pressure_10s" in load else ""
        log(f"{message}  [load {load['load_1m']}{pressure}]")

    # -- helpers --------------------------------------------------------------------------

    async def timed(self, sql: str, *params: Any) -> tuple[float, float, Any]:
        """(wall seconds, server CPU seconds or NaN, first value) of one statement."""
        c0, t0 = self.admin_cpu.seconds(), time.perf_counter()
        value = await self.admin.fetchval(sql, *params)
        return time.perf_counter() - t0, self.admin_cpu.seconds() - c0, value

    async def vacuum(self, analyze: bool = False) -> None:
        await self.admin.execute("VACUUM (ANALYZE)  game.waifus" if analyze else "VACUUM game.waifus")

    async def arm(self) -> int:
        """The same 5% below max and due at self.clock, with the dead rows vacuumed away."""
        status = await self.admin.execute(ARM_SQL, self.clock)
        await self.vacuum()
        return int(status.split()[-1])

    async def wal_lsn(self) -> int:
        return await self.admin.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")

    async def rolled_back(self, url: str, sql: str, *params: Any) -> tuple[float, int, int]:
        """(server CPU seconds or NaN, rows updated, HOT-updated rows) of game.waifus for
        `sql`, run in a transaction that is rolled back. On a fresh connection: the xact
        counters of a used backend also hold its earlier, not yet flushed transactions."""
        conn = await connect(url)
        try:
            cpu = await common.BackendCpu.of(conn, url)
            tr = conn.transaction()
            await tr.start()
            c0 = cpu.seconds()
            await conn.execute(sql, *params)
            cpu_s = cpu.seconds() - c0
            # By oid: the bot role may not even name game.waifus.
            row = await conn.fetchrow(
                "SELECT pg_stat_get_xact_tuples_updated($1) AS upd, pg_stat_get_xact_tuples_hot_updated($1) AS hot",
                self.waifus_oid)
            await tr.rollback()
        finally:
            await conn.close()
        return cpu_s, row["upd"], row["hot"]

    async def pause_cron(self) -> list[int]:
        """Deactivate restore-energy; returns the ids of the jobs to re-activate."""
        rows = await self.admin.fetch(
            "SELECT jobid FROM cron.job WHERE jobname = 'restore-energy' AND active")
        for r in rows:
            await self.admin.execute("SELECT cron.alter_job($1, active := false)", r["jobid"])
        return [r["jobid"] for r in rows]

    async def resume_cron(self, jobids: list[int]) -> None:
        for jobid in jobids:
            await self.admin.execute("SELECT cron.alter_job($1, active := true)", jobid)

    # -- phases -----------------------------------------------------------------------------

    async def run(self) -> None:
        self.admin = await connect(self.db.admin_url)
        self.admin_cpu = await common.BackendCpu.of(self.admin, self.db.admin_url)
        paused: list[int] = []
        try:
            settings = await common.server_settings(self.db.admin_url)
            log("server: " + ", ".join(f"{k}={v}" for k, v in sorted(settings.items())))
            self.context.update(
                database=self.db.source, settings=settings, load_at_start=common.machine_load(),
                args=vars(self.args), clock=self.clock.isoformat(),
                started_at=datetime.now(UTC).isoformat(timespec="seconds"))
            for name in ("fsync", "synchronous_commit", "shared_buffers"):
                self.add(info(f"server {name}", settings.get(name, "?")))
            self.waifus_oid = await self.admin.fetchval("SELECT 'game.waifus'::regclass::oid")
            paused = await self.pause_cron()
            await self.load()
            await self.restore_ticks()
            await self.idle_ticks()
            await self.seed_way()
            await self.participate()
            self.context["load_at_end"] = common.machine_load()
        finally:
            try:
                await self.resume_cron(paused)
            finally:
                await self.admin.close()

    async def load(self) -> None:
        n = self.args.waifus
        self.phase("load", f"loading {n:,} players and waifus")
        await self.admin.execute(RESET_SQL)
        await self.admin.execute("SELECT setseed(0.42)")
        t0 = time.perf_counter()
        async with self.admin.transaction():
            await self.admin.execute(LOAD_PLAYERS_SQL, n, TELEGRAM_BASE)
            await self.admin.execute(LOAD_WAIFUS_SQL, n, TELEGRAM_BASE, self.clock)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await self.vacuum(analyze=True)
        await self.admin.execute("VACUUM (ANALYZE) game.players")
        vacuum_s = time.perf_counter() - t0
        lo, hi = await self.admin.fetchrow("SELECT min(id), max(id) FROM game.waifus")
        if (lo, hi) != (1, n):
            raise RuntimeError(f"expected waifu ids 1..{n}, got {lo}..{hi}")
        sizes = await self.admin.fetchrow(
            "SELECT pg_table_size('game.waifus') AS heap, pg_indexes_size('game.waifus') AS indexes")
        self.context["waifus_table_bytes"] = dict(sizes)
        self.add(info("waifus", n))
        self.add(info("waifus table size", round(sizes["heap"] / 2**20, 1), "MB",
                      f"+ {sizes['indexes'] / 2**20:.1f} MB of indexes"))
        self.add(info("data load (set-based INSERT)", round(load_s, 2), "s",
                      f"players + waifus in one transaction; VACUUM ANALYZE {vacuum_s:.1f} s"))
        log(f"loaded in {load_s:.1f} s, vacuum analyze {vacuum_s:.1f} s")

    async def restore_ticks(self) -> None:
        runs = self.args.tick_runs
        self.phase("restore_tick", f"restore tick, 5% due: {runs} runs, each after re-arming")
        tick_times, tick_cpu, ceiling_times, ceiling_cpu, wal_bytes = [], [], [], [], []
        due = 0
        for _ in range(runs):
            due = await self.arm()
            lsn = await self.wal_lsn()
            elapsed, cpu, updated = await self.timed(TICK_SQL, self.clock)
            wal_bytes.append(await self.wal_lsn() - lsn)
            if updated != due:
                raise RuntimeError(f"restore_energy updated {updated} waifus, {due} were due")
            tick_times.append(elapsed)
            tick_cpu.append(cpu)
        # A tick just after a checkpoint writes a full-page image of every page it touches.
        await self.arm()
        await self.admin.execute("CHECKPOINT")
        lsn = await self.wal_lsn()
        after_checkpoint, _, _ = await self.timed(TICK_SQL, self.clock)
        wal_after_checkpoint = await self.wal_lsn() - lsn
        for _ in range(runs):
            await self.arm()
            elapsed, cpu, updated = await self.timed(
                f"WITH u AS ({TICK_CEILING_SQL} RETURNING 1) SELECT count(*) FROM u")
            if updated != due:
                raise RuntimeError(f"the ceiling UPDATE updated {updated} rows, {due} expected")
            ceiling_times.append(elapsed)
            ceiling_cpu.append(cpu)
        # HOT or not, counted inside a transaction that is rolled back (not timed).
        await self.arm()
        _, tick_upd, tick_hot = await self.rolled_back(self.db.admin_url, TICK_SQL, self.clock)
        await self.arm()
        _, ceiling_upd, ceiling_hot = await self.rolled_back(self.db.admin_url, TICK_CEILING_SQL)

        tick, ceiling = statistics.median(tick_times), statistics.median(ceiling_times)
        self.context["restore_tick"] = {
            "due": due, "runs_s": tick_times, "server_cpu_s": tick_cpu, "wal_bytes": wal_bytes,
            "ceiling_runs_s": ceiling_times, "ceiling_server_cpu_s": ceiling_cpu,
            "after_checkpoint_s": after_checkpoint, "after_checkpoint_wal_bytes": wal_after_checkpoint,
            "tick_updates": tick_upd, "tick_hot_updates": tick_hot,
            "ceiling_updates": ceiling_upd, "ceiling_hot_updates": ceiling_hot}
        self.tick_rows_per_s = due / tick
        self.tick_s = tick
        self.add(target_at_most(f"restore tick, {due:,} due (5%)", round(tick * 1000, 1), 500, "ms",
                                f"median of {runs}; runs: " + ", ".join(f"{t * 1000:.0f}" for t in tick_times)))
        self.add(info("restore tick server CPU", round(statistics.median(tick_cpu) * 1000), "ms",
                      "median CPU time of the server process running the tick (what other load changes least)"))
        self.add(info("restore tick rows/s", round(self.tick_rows_per_s)))
        self.add(info("ceiling: one bare set-based UPDATE", round(due / ceiling), "rows/s",
                      f"median {ceiling * 1000:.0f} ms (server CPU {statistics.median(ceiling_cpu) * 1000:.0f} ms) "
                      f"for the same {due:,} rows (jsonb_set, same partial index)"))
        self.add(info("restore tick speed / ceiling speed", round(ceiling / tick, 2), "",
                      "1.0 = as fast as the bare UPDATE"))
        self.add(info("restore tick WAL", round(statistics.median(wal_bytes) / 2**20, 1), "MB",
                      f"median per tick; HOT updates: {tick_hot:,} of {tick_upd:,} "
                      f"(ceiling: {ceiling_hot:,} of {ceiling_upd:,})"))
        self.add(info("restore tick just after CHECKPOINT", round(after_checkpoint * 1000, 1), "ms",
                      f"one run; WAL {wal_after_checkpoint / 2**20:.1f} MB (full-page images of every page touched)"))
        log(f"tick median {tick * 1000:.0f} ms ({due} rows), ceiling {ceiling * 1000:.0f} ms")

    async def idle_ticks(self) -> None:
        runs = self.args.idle_runs
        self.phase("idle_tick", f"restore tick, none due: {runs} runs")
        # Between ticks in production nothing vacuums: the previous tick's 50,000 dead row
        # versions are still in the table and its partial index when the next tick looks,
        # and only the first look pays for them (it prunes the heap pages it visits).
        first_looks = []
        for _ in range(3):
            await self.arm()
            await self.timed(TICK_SQL, self.clock)  # restores the 5%: their clocks are now 30.5 s old
            first_looks.extend(await self.idle_runs(1, self.clock))
        await self.vacuum()
        times = await self.idle_runs(runs, self.clock)
        self.context["idle_tick_runs_s"] = times
        self.context["idle_tick_first_after_a_tick_s"] = first_looks
        self.add(target_at_most("restore tick, none due", round(statistics.median(times) * 1000, 2), 20, "ms",
                                f"after VACUUM; median of {runs}, max {max(times) * 1000:.1f} ms"))
        self.add(info("restore tick, none due, before VACUUM", round(statistics.median(first_looks) * 1000, 1), "ms",
                      "the first tick after a 5% tick, whose dead row versions are not vacuumed yet (production "
                      "between autovacuums); median of 3: " + ", ".join(f"{t * 1000:.1f}" for t in first_looks)))

    async def idle_runs(self, runs: int, at: datetime) -> list[float]:
        times = []
        for _ in range(runs):
            elapsed, _, updated = await self.timed(TICK_SQL, at)
            if updated != 0:
                raise RuntimeError(f"idle tick updated {updated} waifus")
            times.append(elapsed)
        return times

    async def seed_way(self) -> None:
        """The seed's restore: read every row into Python, then one UPDATE per row."""
        await self.arm()
        n = self.args.waifus
        conn = await connect(self.db.admin_url)
        try:
            self.phase("seed", "seed's way: reading every row")
            t0 = time.perf_counter()
            rows = await conn.fetch(SEED_READ_SQL)
            read_s = time.perf_counter() - t0
            now = self.clock.timestamp()
            changed = [(r["id"], seed_regen(r["dynamic"], now)) for r in rows]
            changed = [(i, d) for i, d in changed if d is not None]
            due = len(changed)
            del rows
            subset = changed[: self.args.seed_rows]
            log(f"seed's way: {len(subset):,} single-row UPDATEs (of {due:,} due)")
            t0 = time.perf_counter()
            for waifu_id, dynamic in subset:
                await conn.execute(SEED_UPDATE_SQL, waifu_id, dynamic)
            update_s = time.perf_counter() - t0
        finally:
            await conn.close()
        update_rate = len(subset) / update_s
        # The seed's pass over every row (as it ran: one UPDATE per row read).
        full_pass_s = read_s + n / update_rate
        seed_rows_per_s = n / full_pass_s
        # The seed doing this tick's job: read everything, update the due rows.
        seed_tick_s = read_s + due / update_rate
        extrapolated = len(subset) < n
        self.context["seed"] = {"read_all_s": read_s, "rows_read": n, "updated_rows": len(subset),
                                "update_s": update_s, "due": due, "extrapolated": extrapolated}
        self.add(info("seed: read every row", round(read_s, 2), "s", f"{n:,} rows, JSONB decoded in Python"))
        self.add(info("seed: one UPDATE per row", round(update_rate), "rows/s",
                      f"{len(subset):,} autocommitted UPDATEs in {update_s:.1f} s"))
        self.add(info("seed: full pass (read + UPDATE every row)", round(seed_rows_per_s), "rows/s",
                      f"{full_pass_s:.0f} s for {n:,} rows"
                      + (f", extrapolated from {len(subset):,} UPDATEs" if extrapolated else "")))
        self.add(target_at_least("restore tick rows/s / seed rows/s", round(self.tick_rows_per_s / seed_rows_per_s, 1),
                                 30, "x", f"{self.tick_rows_per_s:,.0f} vs {seed_rows_per_s:,.0f} rows/s"))
        self.add(info("same job, seed time / tick time", round(seed_tick_s / self.tick_s, 1), "x",
                      f"the seed restoring the {due:,} due: {seed_tick_s:.1f} s (read all + {due:,} UPDATEs"
                      + (", extrapolated" if due > len(subset) else "") + f") vs {self.tick_s * 1000:.0f} ms"))

    async def participate(self) -> None:
        m = min(self.args.participate_waifus, self.args.waifus)
        seconds = self.args.seconds
        await self.admin.execute(
            "SELECT ops.create_event($1, 'Benchmark event', $2, 5, 1, 1, interval '0')", EVENT_CODE, EVENT_COST)
        # Cost 1 and 100 energy: each waifu takes 100 calls; stop at 95 so WF001 never fires
        # (the real clock also restores a little meanwhile).
        budget = 95 * m
        run = f"{time.time_ns():x}"

        async def refill() -> None:
            await self.admin.execute(REFILL_SQL)
            await self.vacuum()

        def participate_call(pool: asyncpg.Pool, tag: str):
            async def call(i: int) -> Any:
                waifu_id = 1 + i % m
                return await pool.fetchval(PARTICIPATE_SQL, TELEGRAM_BASE + waifu_id, waifu_id, EVENT_CODE,
                                           f"{run}-{tag}-{i}")
            return call

        def ceiling_call(pool: asyncpg.Pool):
            async def call(i: int) -> Any:
                return await pool.fetchval(PARTICIPATE_CEILING_SQL, 1 + i % m)
            return call

        warmup = min(2.0, seconds / 5)
        self.phase("participate", f"participate: {m:,} waifus, pool {POOL_SIZE}, {CALLERS} callers, {seconds} s "
                   f"(+{warmup:.1f} s warm-up), as role waifu_bot")
        await refill()
        pool = await asyncpg.create_pool(self.db.bot_url, min_size=POOL_SIZE, max_size=POOL_SIZE,
                                         init=common.init_connection)
        try:
            await common.closed_loop(participate_call(pool, "warm"), CALLERS, warmup, budget // 2)
            await refill()
            lsn = await self.wal_lsn()
            shares = await common.CpuShares.of(self.admin, self.db.admin_url)
            shares.start()
            part = await common.closed_loop(participate_call(pool, "run"), CALLERS, seconds, budget)
            part_cores = shares.stop()
            part_wal = await self.wal_lsn() - lsn
        finally:
            await pool.close()
        ledger = await self.admin.fetchval(
            "SELECT count(*) FROM game.participations WHERE request_key LIKE $1", f"{run}-run-%")

        # Server CPU per call, one transaction (no commit, no client, no network), rolled back.
        sample = min(m, 2000)
        part_cpu, upd, hot = await self.rolled_back(
            self.db.bot_url, PARTICIPATE_SAMPLE_SQL, TELEGRAM_BASE, EVENT_CODE, f"{run}-sample-", sample)
        bare_cpu, _, _ = await self.rolled_back(self.db.admin_url, BARE_UPDATE_SAMPLE_SQL.format(n=sample))

        self.phase("participate_ceiling", "ceiling: bare UPDATE ... jsonb_set ... RETURNING, as superuser")
        pool = await asyncpg.create_pool(self.db.admin_url, min_size=POOL_SIZE, max_size=POOL_SIZE,
                                         init=common.init_connection)
        try:
            await common.closed_loop(ceiling_call(pool), CALLERS, warmup)
            lsn = await self.wal_lsn()
            shares.start()
            ceil = await common.closed_loop(ceiling_call(pool), CALLERS, seconds)
            ceil_cores = shares.stop()
            ceil_wal = await self.wal_lsn() - lsn
        finally:
            await pool.close()

        part_lat, ceil_lat = common.latency_ms(part.latencies), common.latency_ms(ceil.latencies)
        self.context["participate"] = {
            "waifus": m, "pool": POOL_SIZE, "callers": CALLERS, "seconds": seconds, "role": "waifu_bot",
            "event": {"code": EVENT_CODE, "energy_cost": EVENT_COST, "cooldown": "0",
                      "energy": "refilled to max by a set-based UPDATE before the warm-up and the run"},
            "calls": part.calls, "errors": part.errors, "first_error": part.first_error,
            "elapsed_s": part.elapsed, "latency": part_lat, "ledger_rows": ledger, "wal_bytes": part_wal,
            "cores_used": part_cores,
            "sample": {"calls": sample, "server_cpu_s": part_cpu, "bare_update_server_cpu_s": bare_cpu,
                       "waifu_updates": upd, "waifu_hot_updates": hot},
            "ceiling": {"role": "superuser", "calls": ceil.calls, "errors": ceil.errors,
                        "first_error": ceil.first_error, "elapsed_s": ceil.elapsed, "latency": ceil_lat,
                        "wal_bytes": ceil_wal,
                        "cores_used": ceil_cores}}
        self.add(target_at_least("participate calls/s", round(part.per_second), 4000, "calls/s",
                                 f"{part.calls:,} calls in {part.elapsed:.1f} s, {part.errors} errors"
                                 + (f" (first: {part.first_error})" if part.first_error else "")))
        self.add(Metric("participate ledger rows = answered calls", ledger, "", f"= {part.calls:,}",
                        ledger == part.calls, "a correctness check, not a speed target"))
        self.add(info("participate p50", part_lat["p50_ms"], "ms"))
        self.add(target_at_most("participate p99", part_lat["p99_ms"], 30, "ms"))
        self.add(info("participate WAL per call", round(part_wal / max(part.calls, 1)), "bytes",
                      f"ceiling: {ceil_wal / max(ceil.calls, 1):.0f} bytes; HOT updates of game.waifus: "
                      f"{hot:,} of {upd:,} (sample of {sample:,} calls, rolled back)"))
        self.add(info("participate server CPU per call", round(part_cpu / sample * 1e6), "us",
                      f"{sample:,} calls in one rolled-back transaction (no commit, no client); "
                      f"a bare single-row UPDATE: {bare_cpu / sample * 1e6:.0f} us"))
        self.add(info("cores used during the participate run", cores_text(part_cores), "",
                      f"of {common.machine_load()['cpus']}; "
                      f"per call: server {per_call_us(part_cores, 'server', part)}, "
                      f"client {per_call_us(part_cores, 'client', part)}. Ceiling run: {cores_text(ceil_cores)}; "
                      f"per call: server {per_call_us(ceil_cores, 'server', ceil)}, "
                      f"client {per_call_us(ceil_cores, 'client', ceil)}"))
        self.add(info("ceiling: bare UPDATE ... RETURNING", round(ceil.per_second), "calls/s",
                      f"p50 {ceil_lat['p50_ms']} ms, p99 {ceil_lat['p99_ms']} ms, {ceil.errors} errors"))
        self.add(target_at_least("participate / ceiling", round(part.per_second / ceil.per_second, 2), 0.5))
        log(f"participate {part.per_second:,.0f}/s p99 {part_lat['p99_ms']} ms; ceiling {ceil.per_second:,.0f}/s")


def cores_text(cores: dict[str, float]) -> str:
    """'server 1.2, client 0.3, others 0.4' (CPU seconds per second)."""
    return ", ".join(f"{k} {v:.2f}" for k, v in cores.items() if k != "machine" and v == v)


def per_call_us(cores: dict[str, float], who: str, run: common.LoadResult) -> str:
    """CPU microseconds per call of `who` during `run`."""
    value = cores.get(who, math.nan) / run.per_second * 1e6 if run.per_second else math.nan
    return "n/a" if math.isnan(value) else f"{value:.0f} us"


def seed_regen(dynamic: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The rule re-done in Python the way the seed did, for the comparison only (the game's
    rule is game.regen in SQL). None when nothing changes."""
    energy = int(dynamic["energy"])
    minutes = int((now - float(dynamic["last_restore"])) // REGEN_SECONDS)
    if energy >= MAX_ENERGY or minutes < 1:
        return None
    used = min(MAX_ENERGY - energy, minutes)
    return {**dynamic, "energy": energy + used, "last_restore": float(dynamic["last_restore"]) + REGEN_SECONDS * used}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waifus", type=int, default=1_000_000, help="waifus (and players) to load")
    parser.add_argument("--participate-waifus", type=int, default=10_000,
                        help="waifus the participation phase spreads its calls over")
    parser.add_argument("--seconds", type=float, default=10, help="duration of each load phase")
    parser.add_argument("--tick-runs", type=int, default=5, help="restore ticks with 5%% due (median)")
    parser.add_argument("--idle-runs", type=int, default=20, help="restore ticks with none due (median)")
    parser.add_argument("--seed-rows", type=int, default=20_000,
                        help="single-row UPDATEs of the seed's way (extrapolated to every row)")
    parser.add_argument("--cluster", default="bench",
                        help="name of the local cluster (.localdb/<name>, re-created at the start)")
    common.add_database_args(parser)
    args = parser.parse_args(argv)
    if args.waifus < DUE_EVERY or args.participate_waifus < 1 or args.seconds <= 0:
        parser.error(f"--waifus must be >= {DUE_EVERY}, --participate-waifus >= 1, --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    settings = common.parse_settings(args.settings)
    with common.bench_database(args.cluster, args.database_url, args.bot_database_url, args.keep, settings) as db:
        bench = Bench(args, db)
        asyncio.run(bench.run())
    bench.context["wall_s"] = round(time.perf_counter() - started, 1)
    common.report(NAME, bench.metrics, bench.context)
    print(f"load (1/5/15 min) at start {bench.context['load_at_start']}, at end {bench.context.get('load_at_end')}; "
          f"total {bench.context['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
