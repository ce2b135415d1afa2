"""A/B of the core's cost: the same data in two local clusters, one migrated up to a base
revision and one to the newest, measured in alternating runs.

    .venv/bin/python -m tests.benchmarks.ab_core [--base 0009.core-cost] [--waifus 1000000] [--runs 5]

On this shared machine the speed of the same statement moves by up to 2x from one
minute to the next, so figures from two separate bench_core runs cannot tell a 20%
change. Here each run does the same thing on A, then on B, and the medians compare like
with like:

- restore tick with 5% due (bench_core's arming: every 20th waifu with a clock 10.5 min
  old, 1 in 10 of them at energy 95 so that the tick fills her, the others at 50; VACUUM
  before each tick): wall time and the server process's CPU. The same data and the same
  game either way: a tick up to 0009 stores every due waifu's +1, since 0010 only the
  waifus it fills;
- the same tick a second later, before any VACUUM;
- participation: --calls calls of api.participate_in_event in one transaction, rolled back
  (server CPU per call, no commit or network in it);
- participation throughput from pgbench (a C client, so the client takes little of the two
  cores: 10 connections, --seconds each, a fresh request key per call over 10,000 waifus)
  and, the same way, a bare single-row `UPDATE ... jsonb_set ... RETURNING`: calls/s and
  their ratio.

Both clusters run at the same time with the project's tuned settings. Targets are not
judged here: bench_core reports them.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from db import localdb, migrate
from tests.benchmarks import common
from tests.benchmarks.bench_core import (
    ARM_SQL,
    ARMED_AGE_SECONDS,
    EVENT_CODE,
    FILL_EVERY,
    PARTICIPATE_CEILING_SQL,
    PARTICIPATE_SAMPLE_SQL,
    TELEGRAM_BASE,
    TICK_SQL,
    connect,
    load_game,
    log,
)

CLUSTERS = {"A": "ab-base", "B": "ab-head"}
# 0009's tick remembers its last run and would miss clocks armed into the past behind its
# back; forgetting it makes its next tick a full pass.
FORGET_LAST_TICK_SQL = "DELETE FROM game.restore_state"
PGBENCH_WAIFUS = 10_000
# Waifus 1..$1 at full energy (each pgbench call costs 1).
REFILL_SQL = ("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', game.max_energy()) "
              "WHERE id <= $1")
PARTICIPATE_SCRIPT = f"""\\set w random(1, {PGBENCH_WAIFUS})
SELECT api.participate_in_event({TELEGRAM_BASE} + :w, :w, '{EVENT_CODE}', md5(random()::text));
"""
# The same bare UPDATE as bench_core's ceiling, with pgbench's variable for the id.
CEILING_SCRIPT = f"""\\set w random(1, {PGBENCH_WAIFUS})
{PARTICIPATE_CEILING_SQL.strip().replace("$1", ":w")};
"""


def pgbench(url: str, script: str, seconds: float) -> float:
    """Transactions per second of `script` over 10 connections."""
    with tempfile.NamedTemporaryFile("w", suffix=".pgb") as f:
        f.write(script)
        f.flush()
        out = subprocess.run([str(localdb._pg_bindir() / "pgbench"), "-n", "-M", "prepared", "-c", "10", "-j", "2",
                              "-T", str(max(1, round(seconds))), "-f", f.name, url],
                             capture_output=True, text=True, check=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


class Side:
    def __init__(self, label: str, url: str) -> None:
        self.label, self.url = label, url
        self.results: dict[str, list[float]] = {}

    async def open(self) -> None:
        self.conn = await connect(self.url)
        self.cpu = await common.BackendCpu.of(self.conn, self.url)
        self.has_state = await self.conn.fetchval("SELECT to_regclass('game.restore_state') IS NOT NULL")

    def add(self, name: str, value: float) -> None:
        self.results.setdefault(name, []).append(value)

    async def timed(self, name: str, sql: str, *args: object) -> object:
        c0, t0 = self.cpu.seconds(), time.perf_counter()
        value = await self.conn.fetchval(sql, *args)
        self.add(f"{name} wall ms", (time.perf_counter() - t0) * 1000)
        self.add(f"{name} server CPU ms", (self.cpu.seconds() - c0) * 1000)
        return value

    async def refill(self, waifus: int) -> None:
        """Waifus 1..`waifus` at full energy (each call costs 1)."""
        await self.conn.execute(REFILL_SQL, waifus)

    async def tick_run(self, clock) -> None:
        await self.conn.execute(ARM_SQL, clock, ARMED_AGE_SECONDS, FILL_EVERY)
        if self.has_state:
            await self.conn.execute(FORGET_LAST_TICK_SQL)
        await common.look_back(self.conn, clock - timedelta(seconds=ARMED_AGE_SECONDS + 1))
        await self.conn.execute("VACUUM game.waifus")
        due = await self.timed("tick, 5% due", TICK_SQL, clock)
        again = await self.timed("tick 1 s later", TICK_SQL, clock + timedelta(seconds=1))
        if (due, again) == (0, 0):
            raise RuntimeError(f"{self.label}: the tick restored nobody")

    async def participate_run(self, calls: int, run: int) -> None:
        await self.refill(calls)
        transaction = self.conn.transaction()
        await transaction.start()
        try:
            c0 = self.cpu.seconds()
            await self.conn.fetchval(PARTICIPATE_SAMPLE_SQL, TELEGRAM_BASE, EVENT_CODE, f"ab{run}-", calls)
            self.add("participation server CPU us/call", (self.cpu.seconds() - c0) / calls * 1e6)
        finally:
            await transaction.rollback()

    async def throughput_run(self, seconds: float) -> None:
        await self.refill(PGBENCH_WAIFUS)
        calls = await asyncio.to_thread(pgbench, self.url, PARTICIPATE_SCRIPT, seconds)
        ceiling = await asyncio.to_thread(pgbench, self.url, CEILING_SCRIPT, seconds)
        self.add("participation calls/s (pgbench)", calls)
        self.add("bare UPDATE calls/s (pgbench)", ceiling)
        self.add("participation / bare UPDATE", calls / ceiling)


async def run(args: argparse.Namespace, sides: list[Side]) -> None:
    clock = datetime.now(UTC).replace(microsecond=0)
    for side in sides:
        log(f"{side.label}: loading {args.waifus:,} waifus")
        await load_game(side.url, args.waifus, clock)
        await side.open()
        await side.conn.execute("SELECT cron.alter_job(jobid, active := false) FROM cron.job")
        await side.conn.execute(
            "SELECT ops.create_event($1, 'Benchmark event', 1, 5, 1, 1, interval '0')", EVENT_CODE)
        await side.conn.execute("CHECKPOINT")
    for k in range(args.runs):
        for side in sides if k % 2 == 0 else reversed(sides):
            await side.tick_run(clock)
            await side.participate_run(args.calls, k)
            await side.throughput_run(args.seconds)
        log(f"run {k + 1} of {args.runs} done")
    names = list(sides[0].results)
    print(f"\n{'measure (median of ' + str(args.runs) + ')':<42} {'A ' + args.base:>18} {'B head':>12} {'B/A':>6}")
    for name in names:
        a, b = (statistics.median(s.results[name]) for s in sides)
        print(f"{name:<42} {a:>18.2f} {b:>12.2f} {b / a if a else float('nan'):>6.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.ab_core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="0009.core-cost", help="migration id A is migrated up to")
    parser.add_argument("--waifus", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="participations per run (rolled back)")
    parser.add_argument("--seconds", type=float, default=8, help="each pgbench run")
    parser.add_argument("--keep", action="store_true", help="leave both clusters running")
    args = parser.parse_args(argv)
    clusters = [localdb.cluster(CLUSTERS[k]) for k in ("A", "B")]
    try:
        for c in clusters:
            c.destroy()
            c.start()
        migrate.apply(clusters[0].url(), upto=args.base)
        migrate.apply(clusters[1].url())
        sides = [Side("A", clusters[0].url()), Side("B", clusters[1].url())]
        asyncio.run(run(args, sides))
    finally:
        if not args.keep:
            for c in clusters:
                c.destroy()
    print(f"load at the end: {common.machine_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
