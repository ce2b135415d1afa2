"""What a lazy restore tick would cost, beside the product's tick, on the same data.

    .venv/bin/python -m tests.benchmarks.lazy_tick [--waifus 1000000] [--runs 3]

The product's tick is eager: every minute it stores the restored energy of every due
waifu, so its cost grows with the number of regenerating waifus (at 1M waifus with 5%
regenerating, 50,000 row writes a minute). Reads never needed it: every read computes
the energy from the clock. A lazy tick would store only what must change at a moment
in time: the waifus whose energy reaches the cap (they leave the work list and get the
"rested" notification). Its cost grows with the number of waifus filling per minute.

This script measures both on one throwaway cluster (never the product's schema: the
lazy variant is a prototype added to the loaded copy):

1. the product's tick (api.restore_energy, a full pass) with 5% regenerating and due, in
   three cases: none filling, 1% of them filling, all filling;
2. then a stored generated column full_at (epoch when she is full; NULL when she is, so
   the statistics describe the regenerating ones) with a partial index
   on it where regenerating, and the lazy tick `UPDATE ... SET dynamic = game.regen(...)
   WHERE regenerating AND full_at <= now` on the same three cases. The prototype queues no
   "rested" notifications; the product's tick queues one per player it fills (most of the
   difference in "all filling").

Medians of --runs, each on freshly armed, vacuumed and analyzed rows. What the lazy design would
change besides speed (not measured here): game.waifus.dynamic would hold the energy as of
its clock for up to 100 minutes instead of one, so a raw SELECT of it in psql shows a
lower energy than the player has; every api and ops read already computes it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime

from db import localdb, migrate
from tests.benchmarks import common
from tests.benchmarks.bench_core import (
    ARMED_AGE_SECONDS,
    ARMED_ENERGY,
    DUE_EVERY,
    FILL_ENERGY,
    TICK_SQL,
    connect,
    load_game,
    log,
)

# bench_core's arming (every DUE_EVERY-th waifu at ARMED_ENERGY), except that every
# `fill_every`-th one is armed at FILL_ENERGY: the 10 minutes the tick restores fill her.
ARM_SQL = f"""
UPDATE game.waifus
SET dynamic = dynamic || jsonb_build_object(
    'energy', CASE WHEN id % $3 = 0 THEN {FILL_ENERGY} ELSE {ARMED_ENERGY} END,
    'last_restore', extract(epoch FROM $1::timestamptz) - $2::numeric)
WHERE id % {DUE_EVERY} = 0
"""
LAZY_DDL = """
ALTER TABLE game.waifus ADD COLUMN full_at numeric GENERATED ALWAYS AS (
    CASE WHEN (dynamic ->> 'energy')::integer < game.max_energy()
         THEN (dynamic ->> 'last_restore')::numeric
              + game.energy_regen_seconds() * (game.max_energy() - (dynamic ->> 'energy')::integer) END) STORED;
CREATE INDEX waifus_full_at_idx ON game.waifus (full_at) WHERE regenerating;
ANALYZE game.waifus;
"""
LAZY_TICK_SQL = """
WITH r AS (
    UPDATE game.waifus AS w SET dynamic = game.regen(w.dynamic, $1)
    WHERE w.regenerating AND w.full_at <= extract(epoch FROM $1::timestamptz)
    RETURNING 1)
SELECT count(*) FROM r
"""
# fill_every per case (the armed ids are multiples of DUE_EVERY = 20).
CASES = {"none filling": 10**12, "1% filling": 2000, "all filling": 20}


async def measure(conn, sql: str, clock: datetime, fill_every: int, runs: int) -> tuple[float, int]:
    times, written = [], 0
    for _ in range(runs):
        await conn.execute(ARM_SQL, clock, ARMED_AGE_SECONDS, fill_every)
        await conn.execute(common.FORGET_LAST_TICK_SQL)
        # Statistics as autovacuum would keep them: the planner then takes the partial index.
        await conn.execute("VACUUM (ANALYZE) game.waifus")
        t0 = time.perf_counter()
        written = await conn.fetchval(sql, clock)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), written


async def run(url: str, args: argparse.Namespace) -> None:
    clock = datetime.now(UTC).replace(microsecond=0)
    log(f"loading {args.waifus:,} waifus")
    await load_game(url, args.waifus, clock)
    conn = await connect(url)
    try:
        await conn.execute("SELECT cron.alter_job(jobid, active := false) FROM cron.job")
        await conn.execute("CHECKPOINT")
        eager = {name: await measure(conn, TICK_SQL, clock, k, args.runs) for name, k in CASES.items()}
        log("adding the lazy prototype's column and index (rewrites the table)")
        t0 = time.perf_counter()
        await conn.execute(LAZY_DDL)
        ddl_s = time.perf_counter() - t0
        await conn.execute("CHECKPOINT")
        lazy = {name: await measure(conn, LAZY_TICK_SQL, clock, k, args.runs) for name, k in CASES.items()}
    finally:
        await conn.close()
    regenerating = args.waifus // DUE_EVERY
    print(f"\n{regenerating:,} of {args.waifus:,} waifus regenerating and due; median of {args.runs}")
    print(f"{'case':<14} {'eager tick (product)':>24} {'lazy tick (prototype)':>24}")
    for name in CASES:
        (e_ms, e_rows), (l_ms, l_rows) = eager[name], lazy[name]
        print(f"{name:<14} {e_ms:>12.1f} ms {e_rows:>7,} rows {l_ms:>12.1f} ms {l_rows:>7,} rows")
    print("the prototype queues no notifications; the product's tick does, for every player it fills")
    print(f"prototype column + index added in {ddl_s:.1f} s; load at the end: {common.machine_load()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.lazy_tick", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waifus", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args(argv)
    cluster = localdb.cluster("lazy-tick")
    try:
        cluster.destroy()
        cluster.start()
        migrate.apply(cluster.url())
        asyncio.run(run(cluster.url(), args))
    finally:
        if not args.keep:
            cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
