"""Core benchmark (issue 8): the restore tick and participations at 1M (and 10M) waifus.

    .venv/bin/python -m tests.benchmarks.bench_core [--waifus 1000000] [--participate-waifus 10000]
        [--seconds 10] [--database-url URL] [--keep] [--set NAME=VALUE]
    .venv/bin/python -m tests.benchmarks.bench_core --big      # 10M waifus, 500,000 due: load, sizes, ticks

CI size (well under a minute): --waifus 20000 --participate-waifus 1000 --seconds 2

On the same data, in one run:
1. load: N players and N waifus (one each), set-based INSERT ... SELECT generate_series in
   chunks over --load-jobs connections, foreign-key triggers off for the load (superuser:
   session_replication_role = replica; the data is consistent by construction), then
   VACUUM ANALYZE. Reports load time, table and index sizes and bytes per waifu.
2. restore tick with 5% due (every 20th id: clock 10.5 min old; 1 in 10 of them at energy
   95, so that the tick fills her, the others at 50): `SELECT api.restore_energy(T)`, median
   of --tick-runs, re-armed (UPDATE + VACUUM) before each run. Since 0010 the tick writes
   only the waifus it fills. Also: steady state (a tick a minute, no VACUUM, each filling a
   new tenth), none filling, all filling (with their notifications), and right after a
   CHECKPOINT. The share of heap-only (HOT) updates comes from pg_stat_user_tables
   (n_tup_hot_upd / n_tup_upd around each tick, flushed with pg_stat_force_next_flush() in
   the ticking session). Beside it, the work a tick did up to 0009: one bare set-based
   jsonb_set UPDATE of all the due rows.
3. ticks that find nothing due: (a) no waifu regenerating, (b) 5% regenerating, none due
   (clocks 30.5 s old), both after VACUUM, median of --idle-runs; (c) the first tick right
   after a tick, before any VACUUM, median of 3.
4. the seed's way on the same data: read every row into Python, then one autocommitted
   UPDATE per row (a subset of --seed-rows due rows, extrapolated to every row).
5. api.participate_in_event from asyncpg as role waifu_bot (pool 10, 50 callers, a unique
   request key per call) over --participate-waifus waifus for --seconds, against the
   ceiling: a bare single-statement `UPDATE ... jsonb_set ... RETURNING` with the same pool
   and callers (as the superuser: the bot role has no table privileges), measured in the
   same run. WAL per call from pg_current_wal_lsn(). The event costs 1 energy with no
   cooldown; every waifu is refilled before the run, which stops at 95 calls per waifu.
   Then the same calls at a fixed rate (--participate-rate, default half the calls/s just
   measured, so a machine of any speed is half loaded): latency from
   each call's scheduled moment, what a player waits at that load (with 50 callers always
   waiting, the closed runs' latency is queueing: p50 ~ 50 / calls per second).

--big: 10,000,000 waifus, 500,000 due; phases 1-3 only (3 tick runs, 1 ceiling run).

Wall times on a shared 2-core machine move with the other load, so the script also reports
the CPU time of the server process and the load (load average, CPU pressure) at each phase.

The clock of phases 2-4 is a fixed T passed as `now` (the superuser may; the bot role may
not); pg_cron's restore-energy job is paused for the run and re-activated at the end. A
--database-url database is WIPED (game tables truncated).

Targets are reported, never enforced: the exit status is 0 unless the script crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.benchmarks import common
from tests.benchmarks.common import Metric, info, target_at_least, target_at_most

NAME = "bench_core"
TELEGRAM_BASE = 5_000_000_000  # player of waifu id w is TELEGRAM_BASE + w (ids are not confused)
DUE_EVERY = 20  # every 20th waifu is below max: 5%
ARMED_ENERGY = 50
FILL_ENERGY = 95  # armed this low, the 10 minutes a tick restores fill her
FILL_EVERY = 10  # 1 in 10 of the due waifus reaches the cap at the tick (see ARM_SQL)
NONE_FILL = 10**12  # a fill_every no waifu id reaches
ARMED_AGE_SECONDS = 630.5  # 10 whole minutes to restore and a partial one that must carry over
FRESH_AGE_SECONDS = 30.5  # regenerating but not due yet
REGEN_SECONDS = 60  # only the seed's Python rule uses it; the SQL reads game.energy_regen_seconds()
MAX_ENERGY = 100
EVENT_CODE = "bench"
EVENT_COST = 1  # 100 energy = 100 calls per waifu; the run stops at 95 (see participate())
POOL_SIZE = 10
CALLERS = 50
LOAD_CHUNK = 500_000
BIG_WAIFUS = 10_000_000

# Tables the benchmark keeps (catalogue and settings); every other game table is emptied.
KEPT_TABLES = ("waifu_templates", "events", "config", "tick_state", "rate_limits")

LOAD_PLAYERS_SQL = """
INSERT INTO game.players (telegram_id, username, first_name, language_code)
SELECT $3::bigint + g, 'bench_' || g, 'Bench ' || g, 'en'
FROM generate_series($1::bigint, $2::bigint) AS g
"""

# Stats as game.new_dynamic makes them, aged and varied: full energy, a stopped clock some
# time in the past, xp/mood/loyalty spread out. Waifu id g belongs to player g.
LOAD_WAIFUS_SQL = """
WITH t AS (SELECT array_agg(code ORDER BY code) AS codes, array_agg(name ORDER BY code) AS names
           FROM game.waifu_templates)
INSERT INTO game.waifus (id, owner_id, template_code, name, dynamic)
OVERRIDING SYSTEM VALUE
SELECT g, $3::bigint + g, t.codes[1 + g % cardinality(t.codes)], t.names[1 + g % cardinality(t.names)],
       jsonb_build_object('xp', floor(random() * 20000)::integer, 'energy', game.max_energy(),
                          'mood', floor(random() * 101)::integer, 'loyalty', floor(random() * 101)::integer,
                          'last_restore', extract(epoch FROM $4::timestamptz) - floor(random() * 2592000))
FROM generate_series($1::bigint, $2::bigint) AS g, t
"""

# The 5% scattered over the whole table (every 20th id), as active players would be;
# their clocks $2 seconds old at $1. Every $3-th of them (by id / 20) is armed at
# FILL_ENERGY, so that the 10 minutes owed fill her; the others at ARMED_ENERGY stay below
# the cap. Since 0010 the tick writes only the ones it fills; every read computes the rest.
ARM_SQL = f"""
UPDATE game.waifus
SET dynamic = dynamic || jsonb_build_object(
    'energy', CASE WHEN (id / {DUE_EVERY}) % $3::bigint = 0 THEN {FILL_ENERGY} ELSE {ARMED_ENERGY} END,
    'last_restore', extract(epoch FROM $1::timestamptz) - $2::numeric)
WHERE id % {DUE_EVERY} = 0
"""

# The same 5% with clocks ARMED_AGE_SECONDS old, in 10 groups by id / 20 at energy 89 - group:
# none is at the cap at the clock $1, group k - 1 reaches it k minutes later. A tick each
# minute then fills a tenth of them, as a steady stream of waifus coming back to full.
STEADY_ARM_SQL = f"""
UPDATE game.waifus
SET dynamic = dynamic || jsonb_build_object(
    'energy', 89 - (id / {DUE_EVERY}) % 10,
    'last_restore', extract(epoch FROM $1::timestamptz) - {ARMED_AGE_SECONDS})
WHERE id % {DUE_EVERY} = 0
"""

# The probe (22): the same 5% with energies spread over 0..99 and clocks under a
# minute old at $1, so their full_at spread evenly over the next 100 minutes: each minute
# a hundredth of them (500 at 1M, 5,000 at 10M) reaches the cap.
SPREAD_ARM_SQL = f"""
UPDATE game.waifus
SET dynamic = dynamic || jsonb_build_object(
    'energy', (id / {DUE_EVERY}) % 100,
    'last_restore', extract(epoch FROM $1::timestamptz) - (id % 6000) / 100.0)
WHERE id % {DUE_EVERY} = 0
"""

# A burst: the same 5% at 90 with clocks 10 minutes and up to 59 s old at the real now, so
# that every one of them reached the cap during the last minute.
BURST_ARM_SQL = f"""
UPDATE game.waifus
SET dynamic = dynamic || jsonb_build_object(
    'energy', 90, 'last_restore', extract(epoch FROM now()) - 600 - (id % 5900) / 100.0)
WHERE id % {DUE_EVERY} = 0
"""
# The players who play during the burst: others than the burst's (id % 20 = 10).
BURST_PLAYERS_EVERY = 10

# Everyone back to full.
REFILL_SQL = """
UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', game.max_energy())
WHERE (dynamic ->> 'energy')::integer < game.max_energy()
"""

TICK_SQL = "SELECT api.restore_energy($1)"

# The work of an eager tick (one that stores every due waifu's +1, as up to 0009): all the
# due rows, found through the regenerating partial index, rewritten by one bare jsonb_set.
TICK_CEILING_SQL = """
UPDATE game.waifus
SET dynamic = jsonb_set(dynamic, '{{energy}}', to_jsonb((dynamic ->> 'energy')::integer + 10))
WHERE {regenerating}
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

WAIFU_COUNTERS_SQL = """
SELECT n_tup_upd, n_tup_hot_upd, autovacuum_count, vacuum_count
FROM pg_stat_user_tables WHERE relid = 'game.waifus'::regclass
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await common.init_connection(conn)
    return conn


# -- loading (also used by soak_core) ----------------------------------------------------


async def reset_game(conn: asyncpg.Connection) -> None:
    """Empty every game table but the catalogue and settings; drop the benchmark's event."""
    tables = await conn.fetchval(
        """SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ')
           FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
           WHERE n.nspname = 'game' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             AND c.relname <> ALL($1::text[])""", list(KEPT_TABLES))
    await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    await conn.execute("DELETE FROM game.events WHERE code = $1", EVENT_CODE)


async def load_game(url: str, n: int, clock: datetime, jobs: int = 2, chunk: int = LOAD_CHUNK) -> dict[str, float]:
    """N players and N waifus (waifu g owned by player TELEGRAM_BASE + g), then VACUUM
    ANALYZE. Chunks of `chunk` rows over `jobs` connections; foreign-key checks off for
    the load (session_replication_role = replica, superuser only). Returns timings (s)."""
    admin = await connect(url)
    try:
        await reset_game(admin)
    finally:
        await admin.close()
    chunks = [(lo, min(lo + chunk - 1, n)) for lo in range(1, n + 1, chunk)]
    queue = asyncio.Queue[tuple[str, int, int]]()
    for lo, hi in chunks:
        queue.put_nowait(("players", lo, hi))
        queue.put_nowait(("waifus", lo, hi))
    done = 0

    async def worker(seed: float) -> None:
        nonlocal done
        conn = await connect(url)
        try:
            await conn.execute("SET session_replication_role = replica")
            await conn.execute("SELECT setseed($1)", seed)
            while not queue.empty():
                what, lo, hi = queue.get_nowait()
                if what == "players":
                    await conn.execute(LOAD_PLAYERS_SQL, lo, hi, TELEGRAM_BASE)
                else:
                    await conn.execute(LOAD_WAIFUS_SQL, lo, hi, TELEGRAM_BASE, clock)
                done += hi - lo + 1
                if len(chunks) > 2:
                    log(f"  loaded {done / 2:,.0f} of {n:,} players + waifus")
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(0.42 - k / 100) for k in range(max(1, jobs))))
    insert_s = time.perf_counter() - t0
    admin = await connect(url)
    try:
        # The identity column must continue after the explicit ids.
        await admin.execute("SELECT setval(pg_get_serial_sequence('game.waifus', 'id'), $1)", n)
        t0 = time.perf_counter()
        await admin.execute("VACUUM (ANALYZE) game.waifus")
        await admin.execute("VACUUM (ANALYZE) game.players")
        vacuum_s = time.perf_counter() - t0
        row = await admin.fetchrow("SELECT min(id), max(id), count(*) FROM game.waifus")
    finally:
        await admin.close()
    if row is None or tuple(row) != (1, n, n):
        raise RuntimeError(f"expected waifu ids 1..{n} (min, max, count), got {row and tuple(row)}")
    return {"insert_s": insert_s, "vacuum_analyze_s": vacuum_s}


async def relation_sizes(conn: asyncpg.Connection) -> dict[str, dict[str, int]]:
    """Heap and index bytes of game.waifus and game.players, and each index of game.waifus."""
    out: dict[str, dict[str, int]] = {}
    for table in ("game.waifus", "game.players"):
        heap, indexes = await conn.fetchrow(
            "SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass)", table) or (0, 0)
        out[table] = {"heap": heap, "indexes": indexes}
    rows = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_relation_size(i.indexrelid) AS bytes
           FROM pg_index AS i WHERE i.indrelid = 'game.waifus'::regclass ORDER BY 1""")
    out["game.waifus indexes"] = {r["name"]: r["bytes"] for r in rows}
    return out


class Bench:
    def __init__(self, args: argparse.Namespace, db: common.BenchDatabase) -> None:
        self.args = args
        self.db = db
        self.metrics: list[Metric] = []
        self.context: dict[str, Any] = {}
        # The benchmark's clock for ticks and the seed: whole seconds, so epoch arithmetic is exact.
        self.clock = datetime.now(UTC).replace(microsecond=0)
        self.admin: asyncpg.Connection
        self.admin_cpu: common.BackendCpu
        self.due = 0
        self.tick_s = math.nan
        self.tick_rows_per_s = math.nan

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

    async def vacuum(self) -> None:
        await self.admin.execute("VACUUM game.waifus")

    async def arm(self, age_seconds: float = ARMED_AGE_SECONDS, fill_every: int = FILL_EVERY) -> int:
        """The same 5% below max with clocks `age_seconds` old at self.clock, every
        `fill_every`-th of them at the cap by then (self.filling), dead rows vacuumed.
        Returns how many are armed (self.due)."""
        status = await self.admin.execute(ARM_SQL, self.clock, age_seconds, fill_every)
        await common.look_back(self.admin, self.clock - timedelta(seconds=age_seconds + 1))
        await self.vacuum()
        self.due = int(status.split()[-1])
        # ARM_SQL's filling ids: id / DUE_EVERY a multiple of fill_every.
        self.filling = 0 if age_seconds < ARMED_AGE_SECONDS else self.args.waifus // DUE_EVERY // fill_every
        return self.due

    async def wal_lsn(self) -> int:
        return int(await self.admin.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))

    async def waifu_counters(self) -> asyncpg.Record:
        """game.waifus' cumulative counters, this session's pending ones flushed first."""
        await self.admin.execute("SELECT pg_stat_force_next_flush()")  # flushed when the session goes idle
        row = await self.admin.fetchrow(WAIFU_COUNTERS_SQL)
        assert row is not None
        return row

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
            upd, hot = await conn.fetchrow(
                "SELECT pg_stat_get_xact_tuples_updated($1), pg_stat_get_xact_tuples_hot_updated($1)",
                self.waifus_oid) or (0, 0)
            await tr.rollback()
        finally:
            await conn.close()
        return cpu_s, upd, hot

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
            await self.describe_server()
            paused = await self.pause_cron()
            await self.load()
            writes = await self.bgwriter()
            await self.restore_ticks()
            await self.idle_ticks()
            await self.spread_ticks()
            await self.report_writes(writes)
            await self.burst()
            if not self.args.big:
                await self.seed_way()
                await self.participate()
            self.context["load_at_end"] = common.machine_load()
        finally:
            try:
                await self.resume_cron(paused)
            finally:
                await self.admin.close()

    async def describe_server(self) -> None:
        settings = await common.server_settings(self.db.admin_url)
        extra = await self.admin.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1::text[])",
            ["wal_compression", "max_wal_size", "checkpoint_timeout"])
        settings.update({r["name"]: r["value"] for r in extra})
        log("server: " + ", ".join(f"{k}={v}" for k, v in sorted(settings.items())))
        self.context.update(
            database=self.db.source, settings=settings, load_at_start=common.machine_load(),
            args=vars(self.args), clock=self.clock.isoformat(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"))
        for name in ("fsync", "synchronous_commit", "shared_buffers", "wal_compression", "max_wal_size"):
            self.add(info(f"server {name}", settings.get(name, "?")))
        self.waifus_oid = await self.admin.fetchval("SELECT 'game.waifus'::regclass::oid")
        # The tick's work list: the regenerating partial index (0006) or the old due-index predicate.
        has_column = await self.admin.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'game.waifus'::regclass "
            "AND attname = 'regenerating' AND NOT attisdropped)")
        self.regenerating_sql = ("regenerating" if has_column
                                 else "(dynamic ->> 'energy')::integer < game.max_energy()")

    async def load(self) -> None:
        n = self.args.waifus
        self.phase("load", f"loading {n:,} players and waifus ({self.args.load_jobs} connections)")
        t0 = time.perf_counter()
        timings = await load_game(self.db.admin_url, n, self.clock, self.args.load_jobs)
        total_s = time.perf_counter() - t0
        sizes = await relation_sizes(self.admin)
        self.context["load"] = {**timings, "total_s": total_s, "sizes": sizes}
        waifus, players = sizes["game.waifus"], sizes["game.players"]
        self.add(info("waifus", n))
        self.add(info("load: players + waifus", round(total_s, 1), "s",
                      f"INSERT {timings['insert_s']:.1f} s ({2 * n / timings['insert_s']:,.0f} rows/s), "
                      f"VACUUM ANALYZE {timings['vacuum_analyze_s']:.1f} s"))
        self.add(info("game.waifus heap", round(waifus["heap"] / 2**20, 1), "MB",
                      f"fillfactor {await self.fillfactor()}"))
        self.add(info("game.waifus indexes", round(waifus["indexes"] / 2**20, 1), "MB",
                      ", ".join(f"{k.split('.')[-1]} {v / 2**20:.1f} MB"
                                for k, v in sizes["game.waifus indexes"].items())))
        self.add(info("bytes per waifu", round((waifus["heap"] + waifus["indexes"]) / n), "bytes",
                      f"heap + indexes of game.waifus; with her player: "
                      f"{(waifus['heap'] + waifus['indexes'] + players['heap'] + players['indexes']) / n:,.0f}"))
        log(f"loaded in {total_s:.1f} s; waifus {waifus['heap'] / 2**20:.0f} MB + {waifus['indexes'] / 2**20:.0f} MB")
        # The load wrote gigabytes of WAL: without a checkpoint now, the one it triggers runs
        # through the first timed ticks, and every page they touch then costs a full-page image.
        await self.admin.execute("CHECKPOINT")

    async def bgwriter(self) -> dict[str, int]:
        row = await self.admin.fetchrow(
            "SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean, buffers_backend "
            "FROM pg_stat_bgwriter")
        return dict(row or {})

    async def report_writes(self, start: dict[str, int]) -> None:
        """Checkpoints and who wrote the dirty buffers during the tick phases: a table larger
        than shared_buffers makes the ticking backend write out what it evicts."""
        end = await self.bgwriter()
        delta = {k: end[k] - start[k] for k in start}
        self.context["bgwriter_during_ticks"] = delta
        self.add(info("checkpoints during the tick phases", f"{delta['checkpoints_timed']} timed, "
                      f"{delta['checkpoints_req']} requested", "",
                      f"buffers written: by backends {delta['buffers_backend'] * 8 / 2**20:.1f} GB, by the "
                      f"checkpointer {delta['buffers_checkpoint'] * 8 / 2**20:.1f} GB, by the background writer "
                      f"{delta['buffers_clean'] * 8 / 2**20:.1f} GB (requested checkpoints: max_wal_size reached)"))

    async def fillfactor(self) -> str:
        options = await self.admin.fetchval("SELECT reloptions FROM pg_class WHERE oid = 'game.waifus'::regclass")
        found = [o.split("=", 1)[1] for o in options or [] if o.startswith("fillfactor=")]
        return found[0] if found else "100 (default)"

    # -- restore ticks ------------------------------------------------------------------------

    async def restore_ticks(self) -> None:
        runs = self.args.tick_runs
        pct = f"{100 / DUE_EVERY:g}%"
        self.phase("restore_tick", f"restore tick, {pct} due, 1 in {FILL_EVERY} of them filling: {runs} runs after "
                   f"VACUUM, {runs} in steady state")
        ticks = await self.tick_runs(runs)
        steady = await self.steady_tick_runs(runs)
        after_checkpoint = await self.checkpoint_tick()
        none_filling = await self.tick_runs(runs, NONE_FILL)
        fill = await self.fill_tick()
        ceiling = await self.ceiling_runs(self.args.ceiling_runs)
        self.context["restore_tick"] = {"due": self.due, "filling": ticks["filled"], "after_vacuum": ticks,
                                        "steady": steady, "after_checkpoint": after_checkpoint,
                                        "none_filling": none_filling, "fill": fill, "ceiling": ceiling}
        tick, steady_tick = statistics.median(ticks["runs_s"]), statistics.median(steady["runs_s"])
        # Rows brought up to date per second: the tick leaves the due waifus it does not fill
        # exactly as right as it found them (reads compute their energy).
        self.tick_s, self.tick_rows_per_s = tick, self.due / tick
        limit_ms = 3500 if self.args.waifus >= BIG_WAIFUS else 350
        filling = ticks["filled"][0]
        self.add(target_at_most(f"restore tick, {self.due:,} due ({pct}), {filling:,} filling, after VACUUM",
                                round(tick * 1000, 1), limit_ms, "ms",
                                f"median of {runs}, each on freshly armed rows; it finds the {filling:,} at the cap "
                                "(the others' energy is computed at every read); runs: "
                                + ", ".join(f"{t * 1000:.0f}" for t in ticks["runs_s"])
                                + f"; load 1m at the runs: {ticks['load_1m']}"))
        self.add(target_at_most(f"restore tick, {self.due:,} due, steady state", round(steady_tick * 1000, 1),
                                limit_ms, "ms", f"median of {runs} ticks a minute apart (clock +60 s each), no VACUUM "
                                f"between, each filling a new tenth of the due ({', '.join(map(str, steady['filled']))}"
                                "); runs: " + ", ".join(f"{t * 1000:.0f}" for t in steady["runs_s"])
                                + f"; load 1m at the runs: {steady['load_1m']}; autovacuum runs meanwhile: "
                                + str(steady["autovacuum_runs"])))
        self.add(info(f"restore tick, {self.due:,} due, none filling", round(
                      statistics.median(none_filling["runs_s"]) * 1000, 1), "ms",
                      f"median of {runs}, after VACUUM: rows written "
                      f"{', '.join(map(str, none_filling['updates']))}"))
        hot = sum(ticks["hot_updates"]) + sum(steady["hot_updates"])
        upd = sum(ticks["updates"]) + sum(steady["updates"])
        if upd == 0:  # since 0011 the tick writes no waifu at all
            self.add(info("restore tick: waifu rows written", 0, "",
                          f"none in the {2 * runs} ticks (pg_stat_user_tables): the tick stages the waifus that "
                          "reach the cap (game.rested_ranges); reads restore energy"))
        else:
            self.add(target_at_least("restore tick HOT updates", round(100 * hot / max(upd, 1), 2), 95, "%",
                                     f"{hot:,} of {upd:,} updates of game.waifus during the {2 * runs} ticks were "
                                     "heap-only (pg_stat_user_tables); the "
                                     f"{runs * (self.due - filling):,} due waifus it did not fill were not "
                                     "written at all"))
        self.add(info("restore tick server CPU", round(statistics.median(ticks["server_cpu_s"]) * 1000, 1), "ms",
                      f"median CPU time of the server process running the tick (after VACUUM; steady state "
                      f"{statistics.median(steady['server_cpu_s']) * 1000:.1f} ms): what other load changes least"))
        self.add(info("restore tick rows/s", round(self.tick_rows_per_s), "",
                      f"{self.due:,} due waifus up to date per tick time"))
        self.add(info("restore tick WAL", round(statistics.median(ticks["wal_bytes"]) / 2**20, 2), "MB",
                      f"median per tick, {statistics.median(ticks['wal_bytes']) / max(filling, 1):.0f} bytes per "
                      "waifu filled"))
        self.add(info("restore tick just after CHECKPOINT", round(after_checkpoint["s"] * 1000, 1), "ms",
                      f"one run; WAL {after_checkpoint['wal_bytes'] / 2**20:.1f} MB (full-page images of every page "
                      "touched)"))
        self.add(info(f"restore tick filling all {self.due:,}", round(fill["s"] * 1000, 1), "ms",
                      f"one run; every due waifu reaches max: {fill['notifications']:,} 'rested' notifications "
                      f"queued or staged in the same transaction, HOT {fill['hot_updates']:,} of {fill['updates']:,}; "
                      f"server CPU {fill['server_cpu_s'] * 1000:.0f} ms"))
        med_ceiling = statistics.median(ceiling["runs_s"])
        ceiling_cpu_ms = statistics.median(ceiling["server_cpu_s"]) * 1000
        self.add(info("one bare UPDATE of every due row", round(med_ceiling * 1000, 1), "ms",
                      f"server CPU {ceiling_cpu_ms:.0f} ms for the {self.due:,} due rows (jsonb_set); HOT "
                      f"{ceiling['hot_updates']:,} of {ceiling['updates']:,} (a change of energy moves full_at): "
                      "the work a tick storing every due waifu's +1 did (up to 0009)"))
        self.add(info("restore tick time / that UPDATE", round(tick / med_ceiling, 3), "",
                      "below 1.0: faster than writing the due rows at all"))
        log(f"tick median {tick * 1000:.0f} ms after VACUUM ({filling} of {self.due} filled), "
            f"{steady_tick * 1000:.0f} ms steady, none filling {statistics.median(none_filling['runs_s']) * 1000:.1f}"
            f" ms, HOT {hot}/{upd}, bare UPDATE of the due rows {med_ceiling * 1000:.0f} ms")

    @staticmethod
    def _runs() -> dict[str, list[Any]]:
        return {k: [] for k in ("runs_s", "server_cpu_s", "wal_bytes", "updates", "hot_updates", "load_1m",
                                "filled")}

    async def one_tick(self, out: dict[str, list[Any]], at: datetime, filling: int) -> None:
        """One timed tick at `at` that must fill `filling` waifus; appends to `out`."""
        before = await self.waifu_counters()
        lsn = await self.wal_lsn()
        out["load_1m"].append(common.machine_load()["load_1m"])
        elapsed, cpu, filled = await self.timed(TICK_SQL, at)
        out["wal_bytes"].append(await self.wal_lsn() - lsn)
        after = await self.waifu_counters()
        if filled != filling:
            raise RuntimeError(f"restore_energy filled {filled} waifus, {filling} were at the cap")
        out["runs_s"].append(elapsed)
        out["server_cpu_s"].append(cpu)
        out["filled"].append(filled)
        out["updates"].append(after["n_tup_upd"] - before["n_tup_upd"])
        out["hot_updates"].append(after["n_tup_hot_upd"] - before["n_tup_hot_upd"])

    async def tick_runs(self, runs: int, fill_every: int = FILL_EVERY) -> dict[str, list[Any]]:
        """`runs` ticks, each on freshly armed and vacuumed rows."""
        out = self._runs()
        for _ in range(runs):
            await self.arm(fill_every=fill_every)
            await self.one_tick(out, self.clock, self.filling)
        return out

    async def steady_tick_runs(self, runs: int) -> dict[str, Any]:
        """The due 5% armed once (STEADY_ARM_SQL), a tick that fills none, then `runs` more a
        minute apart on the clock with no VACUUM between, each filling the next tenth."""
        out: dict[str, Any] = self._runs()
        # An hour back: the ticks' clocks stay behind the real one, so the tick's cursor
        # follows them as it follows pg_cron's (it never passes the real time).
        base = self.clock - timedelta(hours=1)
        await self.admin.execute(STEADY_ARM_SQL, base)
        await common.look_back(self.admin, base - timedelta(seconds=ARMED_AGE_SECONDS + 1))
        await self.vacuum()
        groups = self.args.waifus // DUE_EVERY
        await self.one_tick(out, base, 0)
        out = self._runs()
        vacuums = (await self.waifu_counters())["autovacuum_count"]
        for k in range(1, runs + 1):
            filling = sum(1 for g in range(1, groups + 1) if g % 10 == k - 1)
            await self.one_tick(out, base + timedelta(minutes=k), filling)
        out["autovacuum_runs"] = (await self.waifu_counters())["autovacuum_count"] - vacuums
        return out

    async def fill_tick(self) -> dict[str, Any]:
        """One tick that fills every due waifu: each leaves the partial index (not HOT) and
        her player gets a 'rested' notification in the same transaction."""
        await self.arm(fill_every=1)
        has_outbox = await self.admin.fetchval("SELECT to_regclass('game.notifications') IS NOT NULL")
        staging = await self.admin.fetchval("SELECT to_regclass('game.rested_ranges') IS NOT NULL")
        if has_outbox:
            await self.admin.execute("TRUNCATE game.notifications")  # the earlier ticks' ones
        if staging:
            await self.admin.execute("TRUNCATE game.rested_ranges")
        before = await self.waifu_counters()
        elapsed, cpu, updated = await self.timed(TICK_SQL, self.clock)
        after = await self.waifu_counters()
        if updated != self.filling:
            raise RuntimeError(f"restore_energy filled {updated} waifus, {self.filling} were at the cap")
        queued = 0
        if has_outbox:
            queued = await self.admin.fetchval("SELECT count(*) FROM game.notifications")
            await self.admin.execute("TRUNCATE game.notifications")
        if staging:  # since 0011 the tick stages them; the sender's claims make the rows
            queued += await self.admin.fetchval("SELECT coalesce(sum(waifus), 0) FROM game.rested_ranges")
            await self.admin.execute("TRUNCATE game.rested_ranges")
        return {"s": elapsed, "server_cpu_s": cpu, "filled": updated, "notifications": queued,
                "updates": after["n_tup_upd"] - before["n_tup_upd"],
                "hot_updates": after["n_tup_hot_upd"] - before["n_tup_hot_upd"]}

    async def checkpoint_tick(self) -> dict[str, float]:
        """A tick just after a checkpoint writes a full-page image of every page it touches."""
        await self.arm()
        await self.admin.execute("CHECKPOINT")
        lsn = await self.wal_lsn()
        elapsed, cpu, _ = await self.timed(TICK_SQL, self.clock)
        return {"s": elapsed, "server_cpu_s": cpu, "wal_bytes": await self.wal_lsn() - lsn}

    async def ceiling_runs(self, runs: int) -> dict[str, Any]:
        sql = TICK_CEILING_SQL.format(regenerating=self.regenerating_sql)
        times, cpus = [], []
        for _ in range(runs):
            await self.arm(fill_every=NONE_FILL)  # all at 50: +10 stays below the cap
            elapsed, cpu, updated = await self.timed(f"WITH u AS ({sql} RETURNING 1) SELECT count(*) FROM u")
            if updated != self.due:
                raise RuntimeError(f"the ceiling UPDATE updated {updated} rows, {self.due} expected")
            times.append(elapsed)
            cpus.append(cpu)
        await self.arm(fill_every=NONE_FILL)  # all at 50: +10 stays below the cap
        _, upd, hot = await self.rolled_back(self.db.admin_url, sql)
        return {"runs_s": times, "server_cpu_s": cpus, "updates": upd, "hot_updates": hot}

    # -- the probe: steady ticks, none due, a burst in batches (issue 22) -------------------

    async def spread_ticks(self) -> None:
        runs = self.args.tick_runs
        n_regen = self.args.waifus // DUE_EVERY
        self.phase("spread_tick", f"steady ticks: {n_regen:,} regenerating, energies spread 0..99, {runs} ticks "
                   "a minute apart")
        base = self.clock - timedelta(hours=3)
        await self.admin.execute(SPREAD_ARM_SQL, base)
        await common.look_back(self.admin, base - timedelta(seconds=61))
        await self.vacuum()
        await self.timed(TICK_SQL, base)  # the cursor at the base
        times, filled, cpus, hot, upd = [], [], [], 0, 0
        for k in range(1, runs + 1):
            before = await self.waifu_counters()
            elapsed, cpu, n = await self.timed(TICK_SQL, base + timedelta(minutes=k))
            after = await self.waifu_counters()
            times.append(elapsed)
            cpus.append(cpu)
            filled.append(n)
            hot += after["n_tup_hot_upd"] - before["n_tup_hot_upd"]
            upd += after["n_tup_upd"] - before["n_tup_upd"]
        idle = []
        for _ in range(runs):
            # Again at the last tick's clock: nothing came due since (in the spread, a
            # waifu reaches the cap every few milliseconds of game time at 1M).
            elapsed, _, n = await self.timed(TICK_SQL, base + timedelta(minutes=runs))
            if n:
                raise RuntimeError(f"a tick right after a tick filled {n}")
            idle.append(elapsed)
        big = self.args.waifus >= BIG_WAIFUS
        self.context["spread_tick"] = {"runs_s": times, "filled": filled, "server_cpu_s": cpus, "idle_s": idle,
                                       "hot_updates": hot, "updates": upd, "regenerating": n_regen}
        self.add(target_at_most(f"steady tick, {n_regen:,} regenerating (energies 0..99)",
                                round(statistics.median(times) * 1000, 1), 100 if big else 25, "ms",
                                f"median of {runs} ticks a minute apart, filling "
                                f"{', '.join(f'{n:,}' for n in filled)}; runs "
                                + ", ".join(f"{t * 1000:.1f}" for t in times)
                                + f"; HOT {hot:,} of {upd:,} updates; target 100 ms at 10M (issue 22)"))
        self.add(target_at_most(f"tick with nothing to fill, {n_regen:,} regenerating",
                                round(statistics.median(idle) * 1000, 2), 20, "ms",
                                f"the last steady tick's clock again, median of {runs}; max "
                                f"{max(idle) * 1000:.1f} ms"))

    async def burst(self) -> None:
        """Every regenerating waifu reaches the cap in the same minute; the tick as pg_cron
        runs it (game.tick_batch, one transaction per batch) at the real time, each batch
        timed, while players call participate on other waifus at half their capacity."""
        n_due = self.args.waifus // DUE_EVERY
        batch = await self.admin.fetchval("SELECT tick_batch_size FROM game.config")
        self.phase("burst", f"burst: {n_due:,} waifus reach the cap in one minute, batches of {batch:,}, "
                   f"with {CALLERS} callers playing")
        await self.admin.execute(
            "SELECT ops.create_event($1, 'Benchmark event', $2, 5, 1, 1, interval '0')", EVENT_CODE, EVENT_COST)
        await self.admin.execute("TRUNCATE game.notifications, game.rested_ranges")
        players = [w for w in range(BURST_PLAYERS_EVERY, self.args.waifus + 1, DUE_EVERY)][:10_000]
        await self.admin.execute(REFILL_SQL)
        run = f"{time.time_ns():x}"
        pool = await asyncpg.create_pool(self.db.bot_url, min_size=POOL_SIZE, max_size=POOL_SIZE,
                                         init=common.init_connection)
        try:
            calls = [0]

            fair = common.FairPool(pool)

            async def call(i: int) -> None:
                w = players[i % len(players)]
                calls[0] += 1
                await fair.fetchval(PARTICIPATE_SQL, TELEGRAM_BASE + w, w, EVENT_CODE, f"{run}-b-{i}")

            # The players' capacity with callers back to back (also warming the pool), then
            # play at half of it, alone and with the burst: latency from each call's
            # scheduled moment. Back to back, the callers would take every core the tick
            # leaves, and "unaffected" could only mean "the tick used no CPU".
            capacity = await common.closed_loop(call, CALLERS, 2.0)
            rate = max(1.0, round(capacity.per_second / 2))
            alone = await common.fixed_rate(call, CALLERS, rate, 3.0)
            await self.admin.execute(BURST_ARM_SQL)
            await common.look_back(self.admin, datetime.now(UTC) - timedelta(minutes=2))
            await self.vacuum()
            stamps: list[tuple[float, float]] = []
            stop = asyncio.Event()

            async def player(k: int) -> None:
                i, scheduled = k, time.perf_counter() + k / rate
                while not stop.is_set():
                    if (ahead := scheduled - time.perf_counter()) > 0:
                        await asyncio.sleep(ahead)
                    await call(i)
                    stamps.append((scheduled, time.perf_counter() - scheduled))
                    i += CALLERS
                    scheduled += CALLERS / rate

            load = [asyncio.ensure_future(player(k)) for k in range(CALLERS)]
            await asyncio.sleep(1.0)
            before = await self.waifu_counters()
            lsn = await self.wal_lsn()
            # The job as pg_cron runs it: one CALL, its batches committed inside the server
            # (0015: without waiting for the disk). The longest batch is the server's own
            # figure (game.tick_state.last_longest_transaction_ms).
            started = time.perf_counter()
            await self.admin.execute("CALL game.restore_energy_job()")
            total = time.perf_counter() - started
            ended = time.perf_counter()
            wal = await self.wal_lsn() - lsn
            after = await self.waifu_counters()
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*load)
        finally:
            await pool.close()
        state = await self.admin.fetchrow(
            "SELECT last_filled, last_notified, last_batches, "
            "(to_jsonb(s) ->> 'last_longest_transaction_ms')::float8 / 1000 AS longest_s FROM game.tick_state AS s")
        n_batches, longest_s = state["last_batches"], state["longest_s"]
        staged = await self.admin.fetchval("SELECT coalesce(sum(waifus), 0) FROM game.rested_ranges")
        if state["last_filled"] != n_due or staged != n_due:
            raise RuntimeError(f"the burst found {state['last_filled']} and staged {staged} of {n_due}")
        # The sender's side: rows made from the stage as a claim makes them (1,000 waifus a
        # call), timed for a few calls; at Telegram's pace a call's rows last a minute or more.
        expand_s: list[float] = []
        made = 0
        for _ in range(5):
            t0 = time.perf_counter()
            made += await self.admin.fetchval("SELECT game.expand_rested(now(), 100)")
            expand_s.append(time.perf_counter() - t0)
        during = [lat for t0, lat in stamps if started <= t0 <= ended]
        alone_lat, during_lat = common.latency_ms(alone.latencies), common.latency_ms(during)
        # The eager tick's work on the same rows, as the ceiling: one bare UPDATE of them all.
        await self.admin.execute(BURST_ARM_SQL)
        ceiling_s, _, ceiling_n = await self.timed(
            "WITH u AS (UPDATE game.waifus SET dynamic = jsonb_set(dynamic, '{energy}', '100') "
            f"WHERE id % {DUE_EVERY} = 0 RETURNING 1) SELECT count(*) FROM u")
        big = self.args.waifus >= BIG_WAIFUS
        self.context["burst"] = {"due": n_due, "batch_size": batch, "batches": n_batches, "longest_batch_s": longest_s,
                                 "total_s": total,
                                 "filled": state["last_filled"], "staged": staged,
                                 "expand_s": expand_s, "expanded_rows": made, "wal_bytes": wal,
                                 "hot_updates": after["n_tup_hot_upd"] - before["n_tup_hot_upd"],
                                 "updates": after["n_tup_upd"] - before["n_tup_upd"],
                                 "participate_capacity": capacity.per_second, "participate_rate": rate,
                                 "participate_alone": alone_lat, "participate_during": during_lat,
                                 "participate_calls_during": len(during),
                                 "ceiling_s": ceiling_s, "ceiling_rows": ceiling_n}
        self.add(target_at_most(f"burst: {n_due:,} filling in one tick, in batches", round(total * 1000, 1),
                                5000 if big else 500, "ms",
                                f"{n_batches} batches of {batch:,} (CALL game.restore_energy_job(), as pg_cron; "
                                f"one transaction each), "
                                f"{staged:,} \"she is rested\" staged; waifu rows written "
                                f"{after['n_tup_upd'] - before['n_tup_upd']:,} (the players' calls); "
                                f"WAL {wal:,} bytes in all"))
        if longest_s is not None:
            self.add(target_at_most("burst: longest batch (one transaction)", round(longest_s * 1000, 1), 100, "ms",
                                    f"the server's figure (ops.tick.last_longest_transaction_ms); mean "
                                    f"{total / max(n_batches, 1) * 1000:.1f} ms a batch"))
        self.add(info("burst: participate p99 alone / during the burst",
                      f"{alone_lat['p99_ms']} / {during_lat['p99_ms']}", "ms",
                      f"{rate:,.0f} calls/s (half of {capacity.per_second:,.0f}/s back to back), {CALLERS} callers "
                      f"on fixed schedules, pool {POOL_SIZE}, other waifus than the burst's; p50 "
                      f"{alone_lat['p50_ms']} / {during_lat['p50_ms']} ms; {len(during):,} calls during the burst"))
        self.add(info("burst: the sender makes rows from the stage", round(sum(expand_s) / 5 * 1000, 1), "ms a call",
                      f"game.expand_rested, 5 calls: {made:,} rows ({sum(expand_s) / max(made, 1) * 1e6:.0f} us a "
                      f"row), 1,000 waifus a call; a claim makes them only when its outbox is short"))
        self.add(info("burst: one bare UPDATE of the same rows", round(ceiling_s * 1000, 1), "ms",
                      f"{ceiling_n:,} rows, jsonb_set, one statement (what an eager tick would at least write); "
                      f"the batched tick / that UPDATE: {total / ceiling_s:.2f}"))
        await self.admin.execute(REFILL_SQL)
        await self.admin.execute("TRUNCATE game.notifications, game.rested_ranges")
        await self.vacuum()

    # -- ticks that find nothing due --------------------------------------------------------------

    async def idle_ticks(self) -> None:
        runs = self.args.idle_runs
        n_regen = self.args.waifus // DUE_EVERY
        self.phase("idle_tick", f"restore tick, none due: {runs} runs each with none and {n_regen:,} regenerating")
        # (c) first, while the 5% are armed anyway: a tick fills its tenth, and the next tick,
        # before any VACUUM, finds the dead versions that tick left in the index.
        first_looks = []
        for _ in range(3):
            await self.arm()
            await self.timed(TICK_SQL, self.clock)
            first_looks.extend(await self.idle_runs(1))
        # (b) regenerating, none due, after VACUUM.
        await self.arm(FRESH_AGE_SECONDS)
        regenerating = await self.idle_runs(runs)
        # (a) nobody regenerating.
        await self.admin.execute(REFILL_SQL)
        await self.vacuum()
        nobody = await self.idle_runs(runs)
        self.context["idle_tick"] = {"nobody_regenerating_s": nobody, "regenerating_none_due_s": regenerating,
                                     "first_after_a_tick_s": first_looks, "regenerating": n_regen}
        self.add(target_at_most("restore tick, none due, none regenerating", round(statistics.median(nobody) * 1000, 2),
                                20, "ms", f"after VACUUM; median of {runs}, max {max(nobody) * 1000:.1f} ms"))
        self.add(target_at_most(f"restore tick, none due, {n_regen:,} regenerating",
                                round(statistics.median(regenerating) * 1000, 2), 80, "ms",
                                f"clocks {FRESH_AGE_SECONDS} s old, after VACUUM; median of {runs}, "
                                f"max {max(regenerating) * 1000:.1f} ms"))
        self.add(target_at_most("restore tick, none due, right after a tick",
                                round(statistics.median(first_looks) * 1000, 2), 80, "ms",
                                f"the first tick after a tick that filled 1 in {FILL_EVERY} of the {n_regen:,} due, "
                                "same clock, no VACUUM between; median of 3: "
                                + ", ".join(f"{t * 1000:.1f}" for t in first_looks)))

    async def idle_runs(self, runs: int) -> list[float]:
        times = []
        for _ in range(runs):
            elapsed, _, updated = await self.timed(TICK_SQL, self.clock)
            if updated != 0:
                raise RuntimeError(f"idle tick updated {updated} waifus")
            times.append(elapsed)
        return times

    # -- the seed's way -----------------------------------------------------------------------------

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
            due_rows = [(i, d) for i, d in changed if d is not None]
            due = len(due_rows)
            del rows, changed
            subset = due_rows[: self.args.seed_rows]
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

    # -- participation ------------------------------------------------------------------------------

    async def participate(self) -> None:
        m = min(self.args.participate_waifus, self.args.waifus)
        seconds = self.args.seconds
        await self.admin.execute(
            "SELECT ops.create_event($1, 'Benchmark event', $2, 5, 1, 1, interval '0')", EVENT_CODE, EVENT_COST)
        run = f"{time.time_ns():x}"
        warmup = min(2.0, seconds / 5)
        self.phase("participate", f"participate: {m:,} waifus, pool {POOL_SIZE}, {CALLERS} callers, two runs of "
                   f"{seconds} s, no warm-up, as role waifu_bot")
        # Two runs as they come, each on refilled and vacuumed rows, a fresh pool each: the
        # first is what a deployment meets after a load or a restart (issue 22: within 20%).
        first, _, _, _ = await self.participate_run(m, run + "a", 0.0)
        part, part_wal, part_cores, counters = await self.participate_run(m, run, 0.0)
        # With 50 callers always waiting, latency is queueing: p50 ~ 50 / (calls/s) (Little's
        # law), so the closed run's p99 restates its throughput. What a player waits at a
        # given load: calls at a fixed rate, latency from the scheduled moment, on a pool
        # already warm (a session's first participation costs ~10 ms more: see the first run).
        rate = self.args.participate_rate or round(part.per_second / 2)
        paced, _, _, _ = await self.participate_run(m, run + "p", warmup, rate=rate)
        ledger = await self.admin.fetchval(
            "SELECT count(*) FROM game.participations WHERE request_key LIKE $1", f"{run}-run-%")
        # Server CPU per call, one transaction (no commit, no client, no network), rolled back.
        sample = min(m, 2000)
        part_cpu, _, _ = await self.rolled_back(
            self.db.bot_url, PARTICIPATE_SAMPLE_SQL, TELEGRAM_BASE, EVENT_CODE, f"{run}-sample-", sample)
        bare_cpu, _, _ = await self.rolled_back(self.db.admin_url, BARE_UPDATE_SAMPLE_SQL.format(n=sample))
        self.phase("participate_ceiling", "ceiling: bare UPDATE ... jsonb_set ... RETURNING, as superuser")
        ceil, ceil_wal, ceil_cores = await self.ceiling_run(m, warmup)

        part_lat, ceil_lat = common.latency_ms(part.latencies), common.latency_ms(ceil.latencies)
        hot, upd = counters
        self.context["participate"] = {
            "waifus": m, "pool": POOL_SIZE, "callers": CALLERS, "seconds": seconds, "role": "waifu_bot",
            "event": {"code": EVENT_CODE, "energy_cost": EVENT_COST, "cooldown": "0",
                      "energy": "refilled to max by a set-based UPDATE before the warm-up and the run"},
            "calls": part.calls, "errors": part.errors, "first_error": part.first_error,
            "elapsed_s": part.elapsed, "latency": part_lat, "ledger_rows": ledger, "wal_bytes": part_wal,
            "cores_used": part_cores, "waifu_updates": upd, "waifu_hot_updates": hot,
            "sample": {"calls": sample, "server_cpu_s": part_cpu, "bare_update_server_cpu_s": bare_cpu},
            "ceiling": {"role": "superuser", "calls": ceil.calls, "errors": ceil.errors,
                        "first_error": ceil.first_error, "elapsed_s": ceil.elapsed, "latency": ceil_lat,
                        "wal_bytes": ceil_wal, "cores_used": ceil_cores}}
        self.add(target_at_least("participate calls/s", round(part.per_second), 5000, "calls/s",
                                 f"{part.calls:,} calls in {part.elapsed:.1f} s, {part.errors} errors"
                                 + (f" (first: {part.first_error})" if part.first_error else "")))
        self.add(Metric("participate ledger rows = answered calls", ledger, "", f"= {part.calls:,}",
                        ledger == part.calls, "a correctness check, not a speed target"))
        self.add(info("participate p50", part_lat["p50_ms"], "ms"))
        self.add(target_at_most("participate p99", part_lat["p99_ms"], 25, "ms",
                                f"{CALLERS} callers always waiting: by Little's law p50 ~ {CALLERS} / calls/s = "
                                f"{CALLERS / max(part.per_second, 1) * 1000:.0f} ms"))
        paced_lat = common.latency_ms(paced.latencies)
        self.context["participate"]["fixed_rate"] = {"rate": rate, "calls": paced.calls, "errors": paced.errors,
                                                     "elapsed_s": paced.elapsed, "latency": paced_lat}
        self.add(info(f"participate p50 / p99 at {rate:g} calls/s", f"{paced_lat['p50_ms']} / {paced_lat['p99_ms']}",
                      "ms", f"{CALLERS} callers on fixed schedules, pool {POOL_SIZE} warmed first, latency from "
                      "the scheduled moment; "
                      f"achieved {paced.per_second:,.0f}/s, {paced.errors} errors"))
        self.add(target_at_most("participate WAL per call", round(part_wal / max(part.calls, 1)), 1024, "bytes",
                                f"pg_current_wal_lsn() over the run / calls; ceiling: "
                                f"{ceil_wal / max(ceil.calls, 1):.0f} bytes per bare UPDATE"))
        self.add(info("participate HOT updates of game.waifus", round(100 * hot / max(upd, 1), 1), "%",
                      f"{hot:,} of {upd:,} during the run (pg_stat_user_tables)"))
        self.add(info("participate server CPU per call", round(part_cpu / sample * 1e6), "us",
                      f"{sample:,} calls in one rolled-back transaction (no commit, no client); "
                      f"a bare single-row UPDATE: {bare_cpu / sample * 1e6:.0f} us"))
        self.add(info("cores used during the participate run", cores_text(part_cores), "",
                      f"of {common.machine_load()['cpus']}; per call: "
                      f"server {per_call_us(part_cores, 'server', part)}, "
                      f"client {per_call_us(part_cores, 'client', part)}. Ceiling run: {cores_text(ceil_cores)}; "
                      f"per call: server {per_call_us(ceil_cores, 'server', ceil)}, "
                      f"client {per_call_us(ceil_cores, 'client', ceil)}"))
        self.add(info("ceiling: bare UPDATE ... RETURNING", round(ceil.per_second), "calls/s",
                      f"p50 {ceil_lat['p50_ms']} ms, p99 {ceil_lat['p99_ms']} ms, {ceil.errors} errors"))
        self.add(target_at_least("participate / ceiling", round(part.per_second / ceil.per_second, 2), 0.60,
                                 "", "calls/s of the second participate run / the bare UPDATE's, same run"))
        first_lat = common.latency_ms(first.latencies)
        self.context["participate"]["first_run"] = {"calls": first.calls, "elapsed_s": first.elapsed,
                                                    "latency": first_lat}
        self.add(target_at_least("participate first run / second run", round(first.per_second / part.per_second, 2),
                                 0.80, "", f"first {first.per_second:,.0f}/s (p99 {first_lat['p99_ms']} ms), second "
                                 f"{part.per_second:,.0f}/s: each right after a refill and VACUUM, on a new pool"))
        log(f"participate {part.per_second:,.0f}/s p99 {part_lat['p99_ms']} ms; ceiling {ceil.per_second:,.0f}/s")

    async def refill(self) -> None:
        await self.admin.execute(REFILL_SQL)
        await self.vacuum()

    async def participate_run(
        self, m: int, run: str, warmup: float, rate: float | None = None,
    ) -> tuple[common.LoadResult, int, dict[str, float], tuple[int, int]]:
        """Warm-up, refill, then the measured run, callers back to back or at a fixed `rate`:
        (result, WAL bytes, cores, (HOT, updates))."""
        # Cost 1 and 100 energy: each waifu takes 100 calls; stop at 95 so WF001 never fires.
        budget = 95 * m

        def call_with(pool: common.FairPool, tag: str) -> Callable[[int], Awaitable[Any]]:
            async def call(i: int) -> Any:
                waifu_id = 1 + i % m
                return await pool.fetchval(PARTICIPATE_SQL, TELEGRAM_BASE + waifu_id, waifu_id, EVENT_CODE,
                                           f"{run}-{tag}-{i}")
            return call

        await self.refill()
        pool = await asyncpg.create_pool(self.db.bot_url, min_size=POOL_SIZE, max_size=POOL_SIZE,
                                         init=common.init_connection)
        try:
            fair = common.FairPool(pool)
            await common.closed_loop(call_with(fair, "warm"), CALLERS, warmup, budget // 2)
            await self.refill()
            # Idle sessions flush their counters within a second: the warm-up's must land before `before`.
            await asyncio.sleep(1.2)
            before = await self.waifu_counters()
            lsn = await self.wal_lsn()
            shares = await common.CpuShares.of(self.admin, self.db.admin_url)
            shares.start()
            if rate is None:
                result = await common.closed_loop(call_with(fair, "run"), CALLERS, self.args.seconds, budget)
            else:
                result = await common.fixed_rate(call_with(fair, "run"), CALLERS, rate, self.args.seconds, budget)
            cores = shares.stop()
            wal = await self.wal_lsn() - lsn
        finally:
            await pool.close()
        # The pool's sessions flush their counters when they end (or within a second of idling).
        await asyncio.sleep(1.2)
        after = await self.waifu_counters()
        counters = (after["n_tup_hot_upd"] - before["n_tup_hot_upd"], after["n_tup_upd"] - before["n_tup_upd"])
        return result, wal, cores, counters

    async def ceiling_run(self, m: int, warmup: float) -> tuple[common.LoadResult, int, dict[str, float]]:
        async def call(i: int) -> Any:
            return await fair.fetchval(PARTICIPATE_CEILING_SQL, 1 + i % m)

        pool = await asyncpg.create_pool(self.db.admin_url, min_size=POOL_SIZE, max_size=POOL_SIZE,
                                         init=common.init_connection)
        fair = common.FairPool(pool)
        try:
            await common.closed_loop(call, CALLERS, warmup)
            lsn = await self.wal_lsn()
            shares = await common.CpuShares.of(self.admin, self.db.admin_url)
            shares.start()
            result = await common.closed_loop(call, CALLERS, self.args.seconds)
            cores = shares.stop()
            wal = await self.wal_lsn() - lsn
        finally:
            await pool.close()
        return result, wal, cores


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
    parser.add_argument("--big", action="store_true",
                        help=f"{BIG_WAIFUS:,} waifus: load, sizes and ticks only (default 3 tick runs, 1 ceiling run)")
    parser.add_argument("--waifus", type=int, default=None, help="waifus (and players) to load (default 1,000,000)")
    parser.add_argument("--participate-waifus", type=int, default=10_000,
                        help="waifus the participation phase spreads its calls over")
    parser.add_argument("--seconds", type=float, default=10, help="duration of each load phase")
    parser.add_argument("--participate-rate", type=float, default=None,
                        help="calls/s of the fixed-rate participation run (default: half the closed run's)")
    parser.add_argument("--tick-runs", type=int, default=None, help="restore ticks with 5%% due (median; default 5)")
    parser.add_argument("--ceiling-runs", type=int, default=None, help="bare UPDATE runs (default: --tick-runs)")
    parser.add_argument("--idle-runs", type=int, default=None, help="restore ticks with none due (median; "
                        "default 20, --big 5)")
    parser.add_argument("--seed-rows", type=int, default=20_000,
                        help="single-row UPDATEs of the seed's way (extrapolated to every row)")
    parser.add_argument("--load-jobs", type=int, default=2, help="connections loading the data")
    parser.add_argument("--cluster", default="bench",
                        help="name of the local cluster (.localdb/<name>, re-created at the start)")
    common.add_database_args(parser)
    args = parser.parse_args(argv)
    if args.waifus is None:
        args.waifus = BIG_WAIFUS if args.big else 1_000_000
    if args.tick_runs is None:
        args.tick_runs = 3 if args.big else 5
    if args.ceiling_runs is None:
        args.ceiling_runs = 1 if args.big else args.tick_runs
    if args.idle_runs is None:
        args.idle_runs = 5 if args.big else 20
    rate_ok = args.participate_rate is None or args.participate_rate > 0
    if args.waifus < DUE_EVERY or args.participate_waifus < 1 or args.seconds <= 0 or not rate_ok or min(
            args.tick_runs, args.ceiling_runs, args.idle_runs, args.load_jobs) < 1:
        parser.error(f"--waifus must be >= {DUE_EVERY}, --participate-waifus >= 1, --seconds and "
                     "--participate-rate > 0, runs and jobs >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    settings = common.parse_settings(args.settings)
    with common.bench_database(args.cluster, args.database_url, args.bot_database_url, args.keep, settings) as db:
        bench = Bench(args, db)
        asyncio.run(bench.run())
    bench.context["wall_s"] = round(time.perf_counter() - started, 1)
    common.report(NAME + ("_big" if args.big else ""), bench.metrics, bench.context)
    print(f"load (1/5/15 min) at start {bench.context['load_at_start']}, at end {bench.context.get('load_at_end')}; "
          f"total {bench.context['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
