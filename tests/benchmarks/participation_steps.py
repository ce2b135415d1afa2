"""What each step of a participation costs (issue 22), measured by taking it away.

    .venv/bin/python -m tests.benchmarks.participation_steps [--waifus 200000] [--calls 5000] [--rounds 5]

On one loaded game, each variant below runs `--calls` participations (each on a different
waifu, as role waifu_bot) in one transaction that is rolled back, and the server CPU time
of that backend is read from /proc: no commit, no client, no network, so what is left is
the function's own work. A variant is the current code with one step removed or changed,
applied inside the same transaction (CREATE OR REPLACE / ALTER TABLE are transactional):
the throwaway branch of the issue, without a branch. Variants run in a shuffled order,
`--rounds` times; the table gives medians and the difference to the current code.

Variants:
- current: api.participate_in_event as migrated;
- no request key: the key is neither taken nor looked up (game.request_keys);
- no ledger insert: the ledger row is built in memory, not written;
- unpartitioned ledger: the insert goes to one plain table with the same unique index
  (what routing into the weekly partitions costs);
- minimal answer: the answer JSON is not built;
- no language look-up: the answer's title is not translated (reader taken as English);
- no CHECK: game.waifus without its stats CHECK; inline CHECK: the same rules as a plain
  expression instead of the PL/pgSQL function game.dynamic_is_valid;
- no adopt-key index: game.waifus without its (owner_id, adopt_key) unique index;
- no full_at: game.waifus without the tick's generated column and its index;
- no wallet (0013): game.earn not called (no coins, no leaderboard XP; the answer reads
  the wallet instead); no coin ledger row (0013): game.earn without its game.coin_ledger
  insert (since 0016 the answer takes the balance game.earn returns: no variant for it);
- bare UPDATE: one single-row `UPDATE ... jsonb_set` per call (the ceiling's statement);
- no XP indexes: game.wallets without the leaderboards' two XP indexes (its UPDATE can
  then be heap-only); lean: no request key, no coin ledger row and no XP indexes at once.
  The probe's event pays no coins, so its participations write four rows (waifu, request
  key, ledger, wallet), never the coin ledger's; an event that pays writes that fifth one;
- and any `--variant NAME=FILE.sql` given: that SQL applied first (a candidate change).

`--throughput SECONDS` also measures calls/s with commits, as ab_core does: for each
variant that can be undone (functions and the wallets' indexes), the variant is committed,
pgbench runs participations (10 connections, a fresh request key per call over 10,000
waifus) and then the bare UPDATE, and the original definitions are put back. Its table
gives calls/s and the ratio to the bare UPDATE of the same round (issue 22: >= 0.60),
and two designs that would change the limit, each one statement (ONE_STATEMENT_SCRIPTS).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from tests.benchmarks import bench_core, common
from tests.benchmarks.ab_core import CEILING_SCRIPT, PARTICIPATE_SCRIPT, PGBENCH_WAIFUS, REFILL_SQL, pgbench
from tests.benchmarks.common import info

NAME = "participation_steps"
EVENT = bench_core.EVENT_CODE

CALLS_SQL = """
SELECT count(api.participate_in_event($1::bigint + g, g, $2, $3 || g))
FROM generate_series($4::bigint, $5::bigint) AS g
"""
BARE_SQL = """
DO $$
BEGIN
    FOR g IN {lo}..{hi} LOOP
        UPDATE game.waifus SET dynamic = jsonb_set(dynamic, '{{xp}}', to_jsonb((dynamic ->> 'xp')::bigint + 5))
        WHERE id = g;
    END LOOP;
END
$$
"""
INLINE_CHECK = """
ALTER TABLE game.waifus DROP CONSTRAINT waifus_dynamic_valid;
ALTER TABLE game.waifus ADD CONSTRAINT waifus_dynamic_valid CHECK (coalesce(
    jsonb_typeof(dynamic -> 'xp') = 'number' AND jsonb_typeof(dynamic -> 'energy') = 'number'
    AND jsonb_typeof(dynamic -> 'mood') = 'number' AND jsonb_typeof(dynamic -> 'loyalty') = 'number'
    AND jsonb_typeof(dynamic -> 'last_restore') = 'number' AND (dynamic ->> 'xp')::bigint >= 0
    AND (dynamic ->> 'energy')::integer BETWEEN 0 AND 100 AND (dynamic ->> 'mood')::integer BETWEEN 0 AND 100
    AND (dynamic ->> 'loyalty')::integer BETWEEN 0 AND 100, false)) NOT VALID;
"""
FLAT_LEDGER = """
CREATE TABLE game.participations_flat (LIKE game.participations);
CREATE UNIQUE INDEX ON game.participations_flat (telegram_id, request_key);
"""


NO_XP_INDEXES = "DROP INDEX game.wallets_xp_total_idx, game.wallets_xp_week_idx;"
# What --throughput may change and put back; the variants on game.waifus' columns and
# constraints are measured by CPU only.
UNDOABLE_FUNCTIONS = ("api.participate_in_event", "game.earn", "game.participation_json")
THROUGHPUT_VARIANTS = ("current", "no request key", "no ledger insert", "no wallet (0013)", "no coin ledger row (0013)",
                       "unpartitioned ledger", "minimal answer", "no language look-up", "no XP indexes", "lean")
# Designs that would change the limit, as one statement each (no plpgsql, no checks of
# energy, cooldown or an open event, no retry path: what they would cost at the least):
# the same four rows the probe's participation writes (waifu, request key, ledger row,
# wallet; the probe's event pays no coins), and two rows (waifu and one keyed row).
# Both designs: the event, and the waifu's one UPDATE (restore and spend), with her row returned.
_SPEND = """WITH e AS (SELECT * FROM game.events WHERE code = '{event}'),
w AS (
  UPDATE game.waifus AS x
  SET dynamic = game.apply_event(game.regen(x.dynamic, now()), e, now()),
      last_played = x.last_played || jsonb_build_object(e.code, extract(epoch FROM now()))
  FROM e
  WHERE x.id = :w AND x.owner_id = {base} + :w
  RETURNING x.id, x.owner_id, x.name, x.template_code, x.dynamic)"""
# Both designs' answer: her stats and the keyed row `p`; each design ends it.
_ANSWER = """SELECT jsonb_build_object('waifu_id', w.id, 'owner_id', w.owner_id, 'name', w.name,
  'template_code', w.template_code, 'xp', (w.dynamic ->> 'xp')::bigint, 'energy', (w.dynamic ->> 'energy')::int,
  'mood', (w.dynamic ->> 'mood')::int, 'loyalty', (w.dynamic ->> 'loyalty')::int, 'as_of', now(),
  'event_code', p.event_code, 'request_key', p.request_key,"""
ONE_STATEMENT_SCRIPTS = {
    # `b` reads her row as it was: every part of one statement sees the same snapshot.
    "one statement, four rows": _SPEND + """,
b AS (SELECT x.dynamic FROM game.waifus AS x WHERE x.id = :w),
k AS (INSERT INTO game.request_keys (telegram_id, request_key, waifu_id, event_code, participated_at)
      SELECT w.owner_id, md5(random()::text), w.id, '{event}', now() FROM w RETURNING request_key),
p AS (INSERT INTO game.participations (participated_at, telegram_id, waifu_id, xp_gained, level_before, level_after,
                                       energy_spent, mood_change, loyalty_change, event_code, request_key, coins_gained)
      SELECT now(), w.owner_id, w.id, (w.dynamic ->> 'xp')::int - (b.dynamic ->> 'xp')::int, 1, 1, 1, 1, 1,
             '{event}', k.request_key, 0
      FROM w, k, b RETURNING *),
wal AS (UPDATE game.wallets AS y SET xp_total = y.xp_total + 5, xp_week = y.xp_week + 5, updated_at = now()
        FROM w WHERE y.telegram_id = w.owner_id RETURNING y.coins)
""" + _ANSWER + """
  'participated_at', p.participated_at, 'changes', jsonb_build_object('xp', p.xp_gained, 'energy', -1),
  'coins', wal.coins,
  'replayed', false)
FROM w, p, wal;""",
    "one statement, two rows": _SPEND + """,
p AS (INSERT INTO game.request_keys (telegram_id, request_key, waifu_id, event_code, participated_at)
      SELECT w.owner_id, md5(random()::text), w.id, '{event}', now() FROM w RETURNING *)
""" + _ANSWER + """
  'replayed', false)
FROM w, p;""",
}


def function_sql(conn_source: str, replacements: list[tuple[str, str]], name: str) -> str:
    for old, new in replacements:
        if old not in conn_source:
            raise RuntimeError(f"{name}: the function no longer contains {old[:60]!r}")
        conn_source = conn_source.replace(old, new)
    return conn_source


async def variants(admin: asyncpg.Connection) -> dict[str, str]:
    """name -> SQL applied before the calls (inside the measured transaction)."""
    part = await admin.fetchval("SELECT pg_get_functiondef('api.participate_in_event'::regproc)")
    answer = await admin.fetchval("SELECT pg_get_functiondef('game.participation_json'::regproc)")
    key_start = part.index("    -- The key first, in one statement")
    key_block = part[key_start:part.index("    SELECT * INTO e FROM game.events")]
    insert_head = ("INSERT INTO game.participations AS p (participated_at, telegram_id, waifu_id, xp_gained, "
                   "level_before,\n                                          level_after, energy_spent, mood_change, "
                   "loyalty_change, event_code,\n                                          request_key, coins_gained)"
                   "  -- 0013: coins_gained\n    VALUES (")
    insert_tail = ("e.code, participate_in_event.request_key, e.coin_reward)  -- 0013: e.coin_reward\n"
                   "    RETURNING p.* INTO rec;")
    earn = await admin.fetchval("SELECT pg_get_functiondef('game.earn'::regproc)")
    earn_call = part[part.index("    balance := game.earn("):part.index("    INSERT INTO game.participations AS p")]
    coin_row = earn[earn.index("    IF earn.coins <> 0 THEN"):earn.index("    RETURN balance;")]
    last_return = "    RETURN game.participation_json(w, after, at, rec, e.title, false, balance);"
    return {
        "current": "",
        "no request key": function_sql(part, [(key_block, "")], "key"),
        "no ledger insert": function_sql(part, [(insert_head, "SELECT "),
                                                (insert_tail, "e.code, participate_in_event.request_key, "
                                                              "e.coin_reward\n    INTO rec;")], "insert"),
        "no wallet (0013)": function_sql(part, [(earn_call, "")], "earn call"),
        "no coin ledger row (0013)": function_sql(earn, [(coin_row, "")], "coin row"),
        "unpartitioned ledger": FLAT_LEDGER + function_sql(
            part, [("game.participations AS p", "game.participations_flat AS p")], "flat"),
        "minimal answer": function_sql(part, [(last_return, "    RETURN '{}'::jsonb;")], "answer"),
        "no language look-up": function_sql(answer, [(
            "reader_language text := game.player_language(participation_json.p.telegram_id);",
            "reader_language text := 'en';")], "language"),
        "no CHECK": "ALTER TABLE game.waifus DROP CONSTRAINT waifus_dynamic_valid;",
        "inline CHECK": INLINE_CHECK,
        "no adopt-key index": "ALTER TABLE game.waifus DROP CONSTRAINT waifus_adopt_key_once;",
        "no full_at": "DROP INDEX game.waifus_full_at_idx; ALTER TABLE game.waifus DROP COLUMN full_at CASCADE;",
        "no XP indexes": NO_XP_INDEXES,
        "lean": (function_sql(part, [(key_block, "")], "key") + ";\n" + function_sql(earn, [(coin_row, "")], "coin row")
                 + ";\n" + NO_XP_INDEXES),
        "bare UPDATE": "",
    }


async def originals(admin: asyncpg.Connection) -> str:
    """SQL that puts back what the undoable variants change."""
    parts = [await admin.fetchval(f"SELECT pg_get_functiondef('{f}'::regproc)") for f in UNDOABLE_FUNCTIONS]
    indexes = await admin.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = 'game' AND tablename = 'wallets' "
                                "AND indexname LIKE 'wallets_xp_%'")
    parts += [r["indexdef"].replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS") for r in indexes]
    parts.append("DROP TABLE IF EXISTS game.participations_flat")
    return ";\n".join(parts) + ";"


async def measure(url: str, name: str, ddl: str, lo: int, hi: int, run: str) -> float:
    """Server CPU seconds of (hi - lo + 1) participations after `ddl`, rolled back."""
    conn = await bench_core.connect(url)
    try:
        cpu = await common.BackendCpu.of(conn, url)
        tr = conn.transaction()
        await tr.start()
        if ddl:
            await conn.execute(ddl)
        await conn.execute("SET LOCAL ROLE waifu_bot")
        # Warm: plans, caches (not measured).
        if name == "bare UPDATE":
            await conn.execute("RESET ROLE")
            await conn.execute(BARE_SQL.format(lo=hi + 1, hi=hi + 200))
            c0 = cpu.seconds()
            await conn.execute(BARE_SQL.format(lo=lo, hi=hi))
        else:
            await conn.fetchval(CALLS_SQL, bench_core.TELEGRAM_BASE, EVENT, f"{run}-warm-", hi + 1, hi + 200)
            c0 = cpu.seconds()
            await conn.fetchval(CALLS_SQL, bench_core.TELEGRAM_BASE, EVENT, f"{run}-", lo, hi)
        seconds = cpu.seconds() - c0
        await tr.rollback()
    finally:
        await conn.close()
    return seconds


async def run(args: argparse.Namespace, db: common.BenchDatabase) -> tuple[list[common.Metric], dict[str, Any]]:
    clock = datetime.now(UTC)
    admin = await bench_core.connect(db.admin_url)
    try:
        await bench_core.reset_game(admin)
        await bench_core.load_game(db.admin_url, args.waifus, clock)
        await admin.execute("SELECT ops.create_event($1, 'Benchmark event', 1, 5, 1, 1, interval '0')", EVENT)
        if await admin.fetchval("SELECT to_regclass('game.wallets') IS NOT NULL"):
            # Each call is a different player's: give each the wallet a player who played
            # before has (the steady state), or every call would be a first earning.
            await admin.execute("INSERT INTO game.wallets (telegram_id) SELECT telegram_id FROM game.players "
                                "ON CONFLICT DO NOTHING")
            await admin.execute("VACUUM ANALYZE game.wallets")
        await admin.execute("CHECKPOINT")
        chosen = await variants(admin)
        for spec in args.variant:
            name, _, path = spec.partition("=")
            chosen[name] = Path(path).read_text()
    finally:
        await admin.close()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only or k == "current"}
    samples: dict[str, list[float]] = {name: [] for name in chosen}
    order = list(chosen)
    for r in range(args.rounds):
        random.Random(r).shuffle(order)
        for name in order:
            seconds = await measure(db.admin_url, name, chosen[name], 1, args.calls, f"{time.time_ns():x}")
            samples[name].append(seconds / args.calls * 1e6)
            print(f"round {r + 1}: {name:<24} {samples[name][-1]:7.1f} us", flush=True)
    base = statistics.median(samples["current"])
    metrics = [info(f"{name}", round(statistics.median(v), 1), "us/call",
                    ("" if name == "current" else f"{statistics.median(v) - base:+.1f} us vs current; ")
                    + "runs " + ", ".join(f"{x:.0f}" for x in v))
               for name, v in samples.items()]
    context: dict[str, Any] = {"samples_us": samples, "waifus": args.waifus, "calls": args.calls,
                               "rounds": args.rounds}
    if args.throughput:
        rates = await throughput(args, db, {k: v for k, v in chosen.items() if k in THROUGHPUT_VARIANTS})
        context["throughput"] = rates
        for name, runs in rates.items():
            ratios = [calls / bare for calls, bare in runs]
            metrics.append(info(f"{name}: calls/s (pgbench, commits)", round(statistics.median(c for c, _ in runs)),
                                "calls/s", f"/ bare UPDATE of the same round: {statistics.median(ratios):.2f} "
                                           "(issue 22: >= 0.60); runs " + ", ".join(f"{c:.0f}" for c, _ in runs)))
    return metrics, context


async def throughput(args: argparse.Namespace, db: common.BenchDatabase,
                     chosen: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    """name -> [(participations/s, bare UPDATEs/s)] per round, each variant committed in turn."""
    admin = await bench_core.connect(db.admin_url)
    try:
        undo = await originals(admin)
        rates: dict[str, list[tuple[float, float]]] = {name: [] for name in [*chosen, *ONE_STATEMENT_SCRIPTS]}
        order = [*chosen, *ONE_STATEMENT_SCRIPTS]
        for r in range(args.rounds):
            random.Random(100 + r).shuffle(order)
            for name in order:
                ddl = chosen.get(name, "")
                script = PARTICIPATE_SCRIPT
                if name in ONE_STATEMENT_SCRIPTS:
                    script = f"\\set w random(1, {PGBENCH_WAIFUS})\n" + ONE_STATEMENT_SCRIPTS[name].format(
                        base=bench_core.TELEGRAM_BASE, event=EVENT) + ";\n"
                await admin.execute(f"BEGIN; {ddl}; COMMIT" if ddl else "SELECT 1")
                try:
                    await admin.execute(REFILL_SQL, PGBENCH_WAIFUS)
                    calls = await asyncio.to_thread(pgbench, db.admin_url, script, args.throughput)
                    bare = await asyncio.to_thread(pgbench, db.admin_url, CEILING_SCRIPT, args.throughput)
                finally:
                    await admin.execute(undo)
                rates[name].append((calls, bare))
                print(f"round {r + 1}: {name:<24} {calls:7.0f} calls/s, bare {bare:7.0f}/s ({calls / bare:.2f})",
                      flush=True)
    finally:
        await admin.close()
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.participation_steps", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waifus", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cluster", default="bench-steps")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FILE.sql",
                        help="also measure with this SQL applied first (repeatable)")
    parser.add_argument("--throughput", type=float, default=0, metavar="SECONDS",
                        help="also pgbench each undoable variant for this long, with commits (default off)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="measure only these variants (and current)")
    common.add_database_args(parser)
    args = parser.parse_args(argv)
    if args.calls + 200 > args.waifus or (args.throughput and args.waifus < PGBENCH_WAIFUS):
        parser.error(f"--waifus must exceed --calls by 200 (each call on a waifu of its own), "
                     f"and be {PGBENCH_WAIFUS:,} or more with --throughput")
    with common.bench_database(args.cluster, args.database_url, args.bot_database_url, args.keep,
                              common.parse_settings(args.settings)) as db:
        metrics, context = asyncio.run(run(args, db))
    context["load"] = common.machine_load()
    common.report(NAME, metrics, context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
