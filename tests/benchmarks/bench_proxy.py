"""Benchmark of the PL/Proxy layout (issue 11): what the proxy costs per call, and the
restore tick of 1M waifus over 2 partitions.

    python -m tests.benchmarks.bench_proxy                 # 1M waifus, 10 s runs
    python -m tests.benchmarks.bench_proxy --waifus 20000 --seconds 3   # quick

1. A fresh proxy + 2 partitions (db.localdb, db.partitions; PostgreSQL defaults but
   shared_buffers 128MB per partition), players and one waifu each loaded set-based on
   their own partition (ids through the partition's id trigger, as adoptions get them).
2. participate: the same closed loop (pool 10, 50 callers, cost-1 event, as role
   waifu_bot) against players of partition 0, first straight to partition 0, then
   through the proxy; calls/s, p50/p99 and the difference per call. Alternated twice.
3. tick: 5% of each partition's waifus reaching the cap (energy 95 on a clock 10 minutes
   behind a clock far in the future, so pg_cron's real-time ticks never touch them; since
   0010 a tick writes only the waifus it fills); `api.restore_energy(T)` on each
   partition directly, one after the other, then through the proxy (RUN ON ALL: the
   partitions in parallel). Median of --tick-runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from db import localdb
from tests.benchmarks import common
from tests.proxy.harness import partition_set

NAME = "bench-proxy"
PARTITIONS = 2
POOL_SIZE = 10
CALLERS = 50
EVENT = "bench_proxy"
T = datetime(2100, 1, 1, tzinfo=UTC)
DUE_EVERY = 20  # 5%
ARMED_ENERGY = 95  # the 10 minutes owed fill her: the tick finds her

LOAD_SQL = """
WITH p AS (
    INSERT INTO game.players (telegram_id, username, first_name, language_code)
    SELECT g, 'bench_' || g, 'Bench', 'en' FROM generate_series($1::bigint, $2::bigint) AS g
    WHERE partition.player_hash(g) & ($3 - 1) = $4
    RETURNING telegram_id)
INSERT INTO game.waifus (owner_id, template_code, name, dynamic)
SELECT p.telegram_id, 'sakura', 'Sakura',
       jsonb_build_object('xp', 0, 'energy', game.max_energy(), 'mood', 50, 'loyalty', 50,
                          'last_restore', extract(epoch FROM $5::timestamptz) - 86400)
FROM p
"""
ARM_SQL = f"""
UPDATE game.waifus
SET dynamic = dynamic || jsonb_build_object('energy', {ARMED_ENERGY},
                                            'last_restore', extract(epoch FROM $1::timestamptz) - 600)
WHERE owner_id % {DUE_EVERY} = 0
"""
REFILL_SQL = """
UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', game.max_energy())
WHERE (dynamic ->> 'energy')::integer < game.max_energy()
"""
PARTICIPATE_SQL = "SELECT api.participate_in_event($1, $2, $3, $4)"


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await common.init_connection(conn)
    return conn


async def load(urls: list[str], waifus: int) -> list[int]:
    """Players 1..waifus (one waifu each), each on its partition; returns waifus per partition."""
    counts = []
    for k, url in enumerate(urls):
        conn = await connect(url)
        try:
            chunk = 250_000
            for lo in range(1, waifus + 1, chunk):
                await conn.execute(LOAD_SQL, lo, min(lo + chunk - 1, waifus), len(urls), k, T)
            await conn.execute("VACUUM ANALYZE game.players")
            await conn.execute("VACUUM ANALYZE game.waifus")
            counts.append(await conn.fetchval("SELECT count(*) FROM game.waifus"))
        finally:
            await conn.close()
    return counts


async def participate_run(url: str, targets: list[tuple[int, int]], seconds: float, tag: str,
                          callers: int = CALLERS) -> common.LoadResult:
    budget = 95 * len(targets)  # cost 1, 100 energy: never WF001

    def call_with(pool: asyncpg.Pool, run: str) -> Callable[[int], Awaitable[Any]]:
        async def call(i: int) -> Any:
            telegram_id, waifu_id = targets[i % len(targets)]
            return await pool.fetchval(PARTICIPATE_SQL, telegram_id, waifu_id, EVENT, f"{run}-{i}")
        return call

    pool = await asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE, init=common.init_connection)
    try:
        await common.closed_loop(call_with(pool, f"{tag}-warm-{time.time_ns()}"), callers, min(2.0, seconds / 5),
                                 budget // 4)
        return await common.closed_loop(call_with(pool, f"{tag}-{time.time_ns()}"), callers, seconds, budget // 2)
    finally:
        await pool.close()


async def refill(urls: list[str]) -> None:
    for url in urls:
        conn = await connect(url)
        try:
            await conn.execute(REFILL_SQL)
            await conn.execute("VACUUM game.waifus")
        finally:
            await conn.close()


async def arm(urls: list[str]) -> int:
    due = 0
    for url in urls:
        conn = await connect(url)
        try:
            due += int((await conn.execute(ARM_SQL, T)).split()[-1])
            # Clocks written by hand, behind the cursor of the last tick (at T): look back.
            await common.look_back(conn, datetime.now(UTC) - timedelta(hours=1))
            await conn.execute("VACUUM game.waifus")
        finally:
            await conn.close()
    return due


async def timed_tick(url: str) -> tuple[float, int]:
    conn = await connect(url)
    try:
        t0 = time.perf_counter()
        updated = await conn.fetchval("SELECT api.restore_energy($1)", T)
        return time.perf_counter() - t0, updated
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    metrics: list[common.Metric] = []
    context: dict[str, Any] = {"machine": common.machine_load(), "partitions": PARTITIONS,
                               "partition_settings": localdb.PARTITION_SETTINGS, "args": vars(args)}
    with partition_set(NAME, PARTITIONS) as pset:
        urls = pset.partition_urls
        log(f"loading {args.waifus:,} waifus over {PARTITIONS} partitions")
        t0 = time.perf_counter()
        counts = await load(urls, args.waifus)
        context["waifus_per_partition"] = counts
        metrics.append(common.info("load (set-based, through the id trigger)", round(time.perf_counter() - t0, 1),
                                   "s", f"waifus per partition: {counts}"))
        proxy = await connect(pset.proxy_url)
        try:
            await proxy.fetchval("SELECT ops.create_event($1, 'Bench', 1, 5, 1, 1, interval '0')", EVENT)
            part0 = await connect(urls[0])
            targets = [(r["owner_id"], r["id"]) for r in await part0.fetch(
                "SELECT owner_id, id FROM game.waifus ORDER BY owner_id LIMIT $1", args.participate_waifus)]
            await part0.close()

            # -- participation: direct vs through the proxy, alternated ---------------------------
            bot_direct = localdb.with_user(urls[0], localdb.BOT_ROLE)
            bot_proxy = localdb.with_user(pset.proxy_url, localdb.BOT_ROLE)
            results: dict[str, list[common.LoadResult]] = {"direct": [], "proxy": []}
            for rnd in range(2):
                for kind, url in (("direct", bot_direct), ("proxy", bot_proxy)):
                    await refill(urls)
                    log(f"participate {kind} (round {rnd + 1}): {len(targets):,} waifus, {args.seconds} s")
                    res = await participate_run(url, targets, args.seconds, f"{kind}{rnd}")
                    results[kind].append(res)
                    log(f"  {res.per_second:,.0f} calls/s, {res.errors} errors {res.first_error or ''}")
            summary = {}
            for kind, runs in results.items():
                lat = [x for r in runs for x in r.latencies]
                summary[kind] = {"calls_per_s": [round(r.per_second) for r in runs],
                                 "errors": sum(r.errors for r in runs), **common.latency_ms(lat)}
            context["participate"] = summary
            d, p = summary["direct"], summary["proxy"]
            for kind in ("direct", "proxy"):
                s = summary[kind]
                metrics.append(common.info(f"participate {kind}: calls/s", round(statistics.mean(s["calls_per_s"])),
                                           "calls/s", f"runs {s['calls_per_s']}, errors {s['errors']}"))
                metrics.append(common.info(f"participate {kind}: p50 / p99", f"{s['p50_ms']} / {s['p99_ms']}", "ms"))
            metrics.append(common.info("p50 difference under load (50 callers)",
                                       round(p["p50_ms"] - d["p50_ms"], 2), "ms",
                                       f"p99 difference {p['p99_ms'] - d['p99_ms']:.2f} ms"))
            # One caller, back to back: the latency a single call pays for the extra hop.
            serial: dict[str, dict[str, float]] = {}
            for kind, url in (("direct", bot_direct), ("proxy", bot_proxy), ("direct", bot_direct),
                              ("proxy", bot_proxy)):
                res = await participate_run(url, targets, args.seconds / 2, f"serial-{kind}", callers=1)
                prev = serial.get(kind)
                lat = common.latency_ms(res.latencies)
                serial[kind] = lat if prev is None or lat["p50_ms"] < prev["p50_ms"] else prev
            context["participate_serial"] = serial
            metrics.append(common.info("one caller: p50 direct / through the proxy",
                                       f"{serial['direct']['p50_ms']} / {serial['proxy']['p50_ms']}", "ms",
                                       f"p99 {serial['direct']['p99_ms']} / {serial['proxy']['p99_ms']} ms "
                                       "(better of two runs each)"))
            metrics.append(common.info("proxy overhead per call (one caller, p50)",
                                       round(serial["proxy"]["p50_ms"] - serial["direct"]["p50_ms"], 2), "ms"))
            metrics.append(common.info("proxy throughput / direct",
                                       round(statistics.mean(p["calls_per_s"]) / statistics.mean(d["calls_per_s"]), 2)))
            await refill(urls)

            # -- the restore tick -------------------------------------------------------------------
            direct_runs, proxy_runs = [], []
            for rnd in range(args.tick_runs):
                due = await arm(urls)
                per_part = [await timed_tick(u) for u in urls]
                assert sum(n for _, n in per_part) == due, (per_part, due)
                direct_runs.append([round(s * 1000) for s, _ in per_part])
                await arm(urls)
                took, updated = await timed_tick(pset.proxy_url)
                assert updated == due, (updated, due)
                proxy_runs.append(round(took * 1000))
                log(f"tick {rnd + 1}: {due:,} due; direct {direct_runs[-1]} ms, through the proxy {proxy_runs[-1]} ms")
            context["tick"] = {"due": due, "direct_ms": direct_runs, "proxy_ms": proxy_runs}
            seq = statistics.median(sum(r) for r in direct_runs)
            par = statistics.median(proxy_runs)
            metrics.append(common.info(f"tick, {args.waifus:,} waifus, {due:,} due: partitions one after the other",
                                       seq, "ms", f"per partition (median runs): {direct_runs}"))
            metrics.append(common.info("tick through the proxy (RUN ON ALL, in parallel)", par, "ms",
                                       f"runs {proxy_runs}; {common.machine_load()['cpus']} cores shared"))
        finally:
            await proxy.close()
    common.report("bench_proxy", metrics, context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waifus", type=int, default=1_000_000)
    parser.add_argument("--participate-waifus", type=int, default=2000, help="players of partition 0 in the loop")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tick-runs", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
