"""Mini App benchmark (issue 4): GET /api/me with 50 concurrent clients.

    .venv/bin/python -m tests.benchmarks.bench_webapp [--quick] [--seconds 20] [--clients 50]
        [--players 2000] [--waifus-per-player 2] [--database-url URL] [--keep]

The server is the real one: `setup_webapp` on an aiohttp application, run in its own
process as `python -m bot` runs it (AppRunner without access log, pool sized by the
settings' defaults), connected as role waifu_bot to a real PostgreSQL on 127.0.0.1.
The load: `--clients` connections, each sending back to back `GET /api/me` with a
correctly signed initData of one of `--players` players (every request is authenticated
in full: HMAC, parsing, age check, one database call). Every answer's status and
Cache-Control are checked, and a sample of bodies is parsed and compared.

`--client wrk` (the default) sends the load with wrk, a load generator written in C
(Debian's `wrk`, which `make setup` installs), one thread; `--client aiohttp` with an
aiohttp client in this process. The target is the server's: the Python client cost
about a quarter of this 2-core machine's CPU (270 us a request, more than PostgreSQL's
share of some requests), which a player's phone pays in production, not our server.

Server, client and PostgreSQL share this machine's cores, so the figures are for the
whole system on one box; the CPU seconds of the server and client processes are reported
beside them. Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from db import localdb
from tests.benchmarks import common
from tests.benchmarks.common import info, target_at_least, target_at_most
from tests.webapp.initdata import TEST_TOKEN, init_data

NAME = "bench_webapp"
CLUSTER = "bench-webapp"
TELEGRAM_BASE = 7_000_000_000
TARGET_RPS = 1500
TARGET_P99_MS = 50
SAMPLE_EVERY = 97  # parse and check one answer in this many (parsing all would load the client)

LOAD_PLAYERS_SQL = """
INSERT INTO game.players (telegram_id, username, first_name, language_code)
SELECT $1::bigint + g, 'bench' || g, 'Bench ' || g, 'en' FROM generate_series(1, $2) AS g
"""
# Varied stats: energy below the cap with clocks of different ages, so reads regenerate.
LOAD_WAIFUS_SQL = """
INSERT INTO game.waifus (owner_id, template_code, name, dynamic)
SELECT $1::bigint + g, t.code, t.name,
       game.new_dynamic(now() - (g % 90) * interval '1 minute')
       || jsonb_build_object('energy', 100 - (g % 90), 'xp', g % 1000)
FROM generate_series(1, $2) AS g
CROSS JOIN LATERAL (SELECT code, name FROM game.waifu_templates ORDER BY code LIMIT $3) AS t
"""


# -- the server process ----------------------------------------------------------------------


async def serve(bot_url: str, ready_file: Path) -> None:
    from aiohttp import web

    from bot.config import Settings
    from bot.game import Game
    from bot.webapp import setup_webapp

    settings = Settings(_env_file=None, bot_token=TEST_TOKEN)
    game = await Game.connect(bot_url, min_size=settings.db_pool_min_size, max_size=settings.db_pool_max_size)
    app = web.Application()
    setup_webapp(app, game=game, settings=settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    ready_file.write_text(json.dumps({"port": runner.addresses[0][1], "pid": os.getpid()}))
    try:
        await stop.wait()  # until the parent terminates us
    finally:
        await runner.cleanup()
        await game.close()


# -- the load ------------------------------------------------------------------------------


async def load_players(admin_url: str, players: int, waifus_per_player: int) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("TRUNCATE game.stat_corrections, game.participations, game.waifus, game.players "
                           "RESTART IDENTITY CASCADE")
        async with conn.transaction():
            await conn.execute(LOAD_PLAYERS_SQL, TELEGRAM_BASE, players)
            await conn.execute(LOAD_WAIFUS_SQL, TELEGRAM_BASE, players, waifus_per_player)
        await conn.execute("VACUUM ANALYZE game.players, game.waifus")
        # Every simulated player comes from 127.0.0.1: the shared per-address budget (meant
        # for one client) would refuse nearly all of them. It is still asked on every
        # request (a database call each): the limiter is measured, not bypassed.
        await conn.fetchval("SELECT ops.set_rate_limit('web_address', 1000000, 1000000)")
    finally:
        await conn.close()


async def run_load(base_url: str, headers: list[dict[str, str]], clients: int, seconds: float,
                   waifus_per_player: int) -> common.LoadResult:
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients, force_close=False)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:
        async def call(i: int) -> None:
            player = i % len(headers)
            async with session.get("/api/me", headers=headers[player]) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
                if resp.headers.get("Cache-Control") != "no-store":
                    raise RuntimeError("answer without Cache-Control: no-store")
            if i % SAMPLE_EVERY == 0:
                me = json.loads(body)
                if me["telegram_id"] != TELEGRAM_BASE + player + 1 or len(me["waifus"]) != waifus_per_player:
                    raise RuntimeError(f"wrong profile for player {player}: {body[:200]!r}")

        return await common.closed_loop(call, clients, seconds)


# wrk's script: each request signed as the next player (one header line per player in the
# file named by the first argument); answers without Cache-Control: no-store are counted,
# and wrk counts statuses other than 2xx/3xx itself. done() prints one JSON line.
WRK_SCRIPT = r"""
local headers, threads = {}, {}
n, uncached = 0, 0  -- globals: done() reads each thread's with thread:get
function setup(thread) table.insert(threads, thread) end
function init(args)
  for line in io.lines(args[1]) do table.insert(headers, line) end
end
function request()
  n = n + 1
  return wrk.format("GET", "/api/me", {Authorization = headers[(n - 1) % #headers + 1]})
end
function response(status, hdrs, body)
  if hdrs["Cache-Control"] ~= "no-store" then uncached = uncached + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("uncached") end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "uncached": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


async def run_wrk(base_url: str, headers: list[dict[str, str]], clients: int, seconds: float) -> dict[str, Any]:
    """wrk's figures: requests, duration_us, errors, uncached, p50/p90/p99/max_us."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (make setup installs it; or use --client aiohttp)")
    with tempfile.TemporaryDirectory(prefix="bench-webapp-") as tmp:
        script, header_file = Path(tmp, "me.lua"), Path(tmp, "headers")
        script.write_text(WRK_SCRIPT)
        header_file.write_text("".join(h["Authorization"] + "\n" for h in headers))
        proc = await asyncio.create_subprocess_exec(
            wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script),
            base_url, "--", str(header_file), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()[-500:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def check_sample(base_url: str, headers: list[dict[str, str]], waifus_per_player: int) -> None:
    """What wrk does not read: a sample of the bodies, each the right player's profile."""
    async with aiohttp.ClientSession(base_url) as session:
        for player in range(0, len(headers), max(1, len(headers) // 20)):
            async with session.get("/api/me", headers=headers[player]) as resp:
                me = await resp.json()
            if me["telegram_id"] != TELEGRAM_BASE + player + 1 or len(me["waifus"]) != waifus_per_player:
                raise RuntimeError(f"wrong profile for player {player}: {str(me)[:200]}")


async def bench(args: argparse.Namespace, db: common.BenchDatabase) -> None:
    await load_players(db.admin_url, args.players, args.waifus_per_player)
    # One signed initData per player, made before the clock starts.
    headers = [{"Authorization": f"tma {init_data(TELEGRAM_BASE + p + 1, f'Bench {p + 1}')}"}
               for p in range(args.players)]

    ready_file = Path(common.RESULTS_DIR) / f".{NAME}-{os.getpid()}.ready"
    ready_file.parent.mkdir(exist_ok=True)
    ready_file.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bench_webapp", "--serve",
                               "--bot-database-url", db.bot_url, "--ready-file", str(ready_file)]
                              + (["--profile", str(args.profile.resolve())] if args.profile else []),
                              cwd=common.PROJECT_ROOT)
    try:
        deadline = time.monotonic() + 30
        while not ready_file.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the web app server did not start (see its output above)")
            await asyncio.sleep(0.05)
        port = json.loads(ready_file.read_text())["port"]
        base_url = f"http://127.0.0.1:{port}"

        load_before = common.machine_load()
        postmaster = (common.postmaster_of(localdb.cluster(CLUSTER).data) if db.source.startswith("local cluster")
                      else None)

        def db_cpu_seconds() -> float | None:
            return None if postmaster is None else common.server_cpu_seconds(postmaster)

        if args.client == "wrk":
            await run_wrk(base_url, headers, args.clients, args.warmup)
            server_cpu0, client_cpu0, db_cpu0 = common.cpu_seconds(server.pid), children_cpu(), db_cpu_seconds()
            figures = await run_wrk(base_url, headers, args.clients, args.seconds)
            client_cpu = children_cpu() - client_cpu0  # wrk, waited for: its CPU is our children's
            await check_sample(base_url, headers, args.waifus_per_player)
            calls, elapsed = figures["requests"] - figures["errors"], figures["duration_us"] / 1e6
            errors = figures["errors"] + figures["uncached"]
            first_error = (f"{figures['errors']} errors (wrk: statuses other than 2xx/3xx, timeouts), "
                           f"{figures['uncached']} answers without Cache-Control: no-store") if errors else None
            lat = {f"{q}_ms": round(figures[f"{q}_us"] / 1000, 3) for q in ("p50", "p90", "p99", "max")}
        else:
            await run_load(base_url, headers, args.clients, args.warmup, args.waifus_per_player)
            server_cpu0, client_cpu0, db_cpu0 = common.cpu_seconds(server.pid), time.process_time(), db_cpu_seconds()
            result = await run_load(base_url, headers, args.clients, args.seconds, args.waifus_per_player)
            client_cpu = time.process_time() - client_cpu0
            calls, errors, elapsed, first_error = result.calls, result.errors, result.elapsed, result.first_error
            lat = common.latency_ms(result.latencies)
        server_cpu = common.cpu_seconds(server.pid) - server_cpu0
        db_cpu_end = db_cpu_seconds()
        db_cpu = None if db_cpu0 is None or db_cpu_end is None else db_cpu_end - db_cpu0
        load_after = common.machine_load()
    finally:
        server.terminate()
        server.wait(timeout=10)
        ready_file.unlink(missing_ok=True)

    metrics = [
        target_at_least("GET /api/me throughput", round(calls / elapsed, 1), TARGET_RPS, "req/s",
                        note=f"load from {args.client}"),
        target_at_most("GET /api/me p99 latency", lat["p99_ms"], TARGET_P99_MS, "ms"),
        info("p50 latency", lat["p50_ms"], "ms"),
        info("p90 latency", lat["p90_ms"], "ms"),
        info("max latency", lat["max_ms"], "ms"),
        info("requests", calls),
        target_at_most("errors", errors, 0, "", note=first_error or ""),
        info("server process CPU", round(100 * server_cpu / elapsed, 1), "% of one core"),
        info("client process CPU", round(100 * client_cpu / elapsed, 1), "% of one core", note=args.client),
        # Per request, CPU time is steadier than throughput on a shared machine.
        info("server CPU per request", round(1e6 * server_cpu / max(calls, 1)), "us"),
        info("client CPU per request", round(1e6 * client_cpu / max(calls, 1)), "us", note=args.client),
        info("PostgreSQL CPU per request", None if db_cpu is None else round(1e6 * db_cpu / max(calls, 1)),
             "us", note="" if db_cpu is not None else "only measured on the local cluster"),
    ]
    context: dict[str, Any] = {
        "clients": args.clients, "seconds": args.seconds, "warmup_seconds": args.warmup,
        "players": args.players, "waifus_per_player": args.waifus_per_player, "quick": args.quick,
        "client": args.client,
        "database": db.source, "server_settings": await common.server_settings(db.admin_url),
        "machine_before": load_before, "machine_after": load_after,
        "python": sys.version.split()[0], "aiohttp": aiohttp.__version__,
    }
    print(f"\n{NAME}: {args.clients} clients, {args.seconds:g} s, {args.players} players x "
          f"{args.waifus_per_player} waifus; load before {load_before}, after {load_after}")
    common.report(NAME, metrics, context)


def children_cpu() -> float:
    """CPU seconds of this process's children that ended and were waited for (wrk)."""
    usage = os.times()
    return usage.children_user + usage.children_system


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_webapp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_database_args(parser)
    parser.add_argument("--quick", action="store_true", help="small and short (under 30 s in all)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds (default 20; quick 5)")
    parser.add_argument("--warmup", type=float, default=None, help="unmeasured seconds first (default 3; quick 1)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--client", choices=("wrk", "aiohttp"), default="wrk",
                        help="the load generator (default wrk, in C; aiohttp: a Python client in this process)")
    parser.add_argument("--players", type=int, default=None, help="players (default 2000; quick 200)")
    parser.add_argument("--waifus-per-player", type=int, default=2, choices=range(1, 6), metavar="1..5")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="cProfile the server process, written to FILE (pstats) when it stops")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    args.players = args.players or (200 if args.quick else 2000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        if args.profile:
            import cProfile

            with cProfile.Profile() as profiler:
                asyncio.run(serve(args.bot_database_url, args.ready_file))
            profiler.dump_stats(args.profile)
        else:
            asyncio.run(serve(args.bot_database_url, args.ready_file))
        return 0
    with common.bench_database(CLUSTER, args.database_url, args.bot_database_url, args.keep) as db:
        asyncio.run(bench(args, db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
