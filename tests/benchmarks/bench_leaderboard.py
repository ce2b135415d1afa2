"""Leaderboard benchmark (issue 19): `/top` at 1,000,000 waifus.

    .venv/bin/python -m tests.benchmarks.bench_leaderboard [--quick] [--waifus 1000000]
        [--waifus-per-player 2] [--calls 300] [--database-url URL] [--keep]

Loads `--waifus` waifus (two per player by default: 500,000 players), each player's wallet
with the XP their waifus hold (a long tail: most players have little, a few a lot), a
third of them active this week, and 2,000 groups of 50 members. Then times
`api.leaderboard` as the bot role (`waifu_bot`) over loopback, one call at a time, for the
answers `/top` gives: the all-time and the weekly board for a player at the top, in the
middle and at the bottom (own rank below the first 1,000 comes from game.rank_steps),
and a group's board. Also: the pg_cron job that refreshes the rank steps, and the cost a
participation pays for the counters (api.participate_in_event, one at a time).
Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from typing import Any

import asyncpg

from tests.benchmarks import common
from tests.benchmarks.common import info, target_at_most

NAME = "bench_leaderboard"
CLUSTER = "bench-leaderboard"
TARGET_TOP_MS = 20.0
GROUPS, GROUP_SIZE = 2000, 50
GROUP_BASE = -1_000_000_000_000

LOAD_SQL = [
    """INSERT INTO game.players (telegram_id, username, first_name, language_code)
       SELECT g, 'bench_' || g, 'Bench ' || g, 'en' FROM generate_series(1, $1::bigint) AS g""",
    # XP with a long tail: most players little, a few a lot (as play makes it).
    """WITH t AS (SELECT array_agg(code ORDER BY code) AS codes FROM game.waifu_templates)
       INSERT INTO game.waifus (owner_id, template_code, name, dynamic)
       SELECT p, t.codes[k], 'W', jsonb_build_object('xp', floor(20000 * power(random(), 4))::integer,
              'energy', 100, 'mood', 50, 'loyalty', 50, 'last_restore', extract(epoch FROM now()))
       FROM generate_series(1, $1::bigint) AS p, generate_series(1, $2::integer) AS k, t""",
    """INSERT INTO game.wallets (telegram_id, coins, xp_total, week_start, xp_week)
       SELECT w.owner_id, 0, sum((w.dynamic ->> 'xp')::bigint), game.ledger_week(now()),
              CASE WHEN w.owner_id % 3 = 0 THEN floor(500 * power(random(), 3))::integer ELSE 0 END
       FROM game.waifus AS w GROUP BY w.owner_id""",
    """INSERT INTO game.groups (chat_id, title) SELECT $3::bigint - g, 'G' FROM generate_series(1, $4::integer) AS g
       WHERE $1::bigint > 0 AND $2::integer > 0""",
    """INSERT INTO game.group_members (chat_id, telegram_id)
       SELECT $3::bigint - g, 1 + ((g * 7919 + m * 104729) % $1::bigint)
       FROM generate_series(1, $4::integer) AS g, generate_series(1, $5::integer) AS m
       WHERE $2::integer > 0  -- (every statement takes the same parameters)
       ON CONFLICT DO NOTHING""",
]


async def timed_calls(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...], calls: int) -> list[float]:
    await conn.fetchval(sql, *args)  # plan cached, pages in memory
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        await conn.fetchval(sql, *args)
        out.append(time.perf_counter() - start)
    return out


async def bench(args: argparse.Namespace, db: common.BenchDatabase) -> None:
    players = args.waifus // args.waifus_per_player
    admin = await asyncpg.connect(db.admin_url)
    await common.init_connection(admin)
    load_before = common.machine_load()
    started = time.perf_counter()
    groups = min(GROUPS, max(1, players // GROUP_SIZE))
    params: tuple[Any, ...] = (players, args.waifus_per_player, GROUP_BASE, groups, GROUP_SIZE)
    for sql in LOAD_SQL:
        used = max((int(n) for n in re.findall(r"\$(\d)", sql)), default=0)  # it takes $1..$used
        await admin.execute(sql, *params[:used])
    await admin.execute("VACUUM ANALYZE game.players, game.waifus, game.wallets, game.groups, game.group_members")
    load_seconds = time.perf_counter() - started
    refresh_start = time.perf_counter()
    steps = await admin.fetchval("SELECT game.refresh_rank_steps()")
    refresh_ms = (time.perf_counter() - refresh_start) * 1000

    # Who to ask for: the top player, the median one, the last one (0 XP) and a group member.
    top_player = await admin.fetchval("SELECT telegram_id FROM game.wallets ORDER BY xp_total DESC LIMIT 1")
    median = await admin.fetchval("SELECT telegram_id FROM game.wallets ORDER BY xp_total DESC OFFSET $1 LIMIT 1",
                                  players // 2)
    bottom = await admin.fetchval("SELECT telegram_id FROM game.wallets ORDER BY xp_total, telegram_id LIMIT 1")
    chat, member = await admin.fetchrow("SELECT chat_id, telegram_id FROM game.group_members LIMIT 1")

    bot = await asyncpg.connect(db.bot_url)
    await common.init_connection(bot)
    sql = "SELECT api.leaderboard($1, $2, $3)"
    cases = [("all, top player", (top_player, "all", None)), ("all, median player", (median, "all", None)),
             ("all, last player", (bottom, "all", None)), ("week, median player", (median, "week", None)),
             ("week, last player", (bottom, "week", None)), ("group of 50, all", (member, "all", chat)),
             ("group of 50, week", (member, "week", chat))]
    metrics: list[common.Metric] = [
        info("players", players), info("waifus", args.waifus), info("load", round(load_seconds, 1), "s"),
        info("rank steps refresh (job leaderboard-steps)", round(refresh_ms, 1), "ms", f"{steps['steps']} steps"),
    ]
    answers = {}
    for label, call_args in cases:
        latencies = await timed_calls(bot, sql, call_args, args.calls)
        ms = common.latency_ms(latencies)
        answers[label] = await bot.fetchval(sql, *call_args)
        me = answers[label]["me"]
        metrics.append(target_at_most(f"/top {label}: p99", ms["p99_ms"], TARGET_TOP_MS, "ms",
                                      f"p50 {ms['p50_ms']:.2f} ms; own rank {me['rank']:,} "
                                      f"({'exact' if me['exact'] else 'from the steps'})"))

    # What the counters cost a participation: one call at a time, the ledger included.
    await admin.execute("UPDATE game.waifus SET dynamic = dynamic || '{\"energy\": 100}' WHERE owner_id <= 300")
    waifu_ids = await admin.fetch("SELECT id, owner_id FROM game.waifus WHERE owner_id <= 300 ORDER BY id")
    latencies = []
    for n, row in enumerate(waifu_ids):
        start = time.perf_counter()
        await bot.fetchval("SELECT api.participate_in_event($1, $2, 'walk', $3)", row["owner_id"], row["id"],
                           f"bench-{n}")
        latencies.append(time.perf_counter() - start)
    ms = common.latency_ms(latencies)
    metrics.append(info("participation with coins and XP counters: p50", ms["p50_ms"], "ms",
                        f"p99 {ms['p99_ms']:.2f} ms over {len(latencies)} calls, one at a time"))
    await bot.close()
    await admin.close()
    context = {"database": db.source, "server": await common.server_settings(db.admin_url),
               "load_before": load_before, "load_after": common.machine_load(), "args": vars(args)}
    common.report(NAME, metrics, context)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_leaderboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_database_args(parser)
    parser.add_argument("--quick", action="store_true", help="20,000 waifus, 50 calls per case")
    parser.add_argument("--waifus", type=int, default=None, help="waifus (default 1,000,000; quick 20,000)")
    parser.add_argument("--waifus-per-player", type=int, default=2, choices=range(1, 6), metavar="1..5")
    parser.add_argument("--calls", type=int, default=None, help="timed calls per case (default 300; quick 50)")
    args = parser.parse_args(argv)
    args.waifus = args.waifus or (20_000 if args.quick else 1_000_000)
    args.calls = args.calls or (50 if args.quick else 300)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with common.bench_database(CLUSTER, args.database_url, args.bot_database_url, args.keep,
                               common.parse_settings(args.settings)) as db:
        asyncio.run(bench(args, db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
