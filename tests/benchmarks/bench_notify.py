"""Notification benchmark: a restore tick that fills 100,000 waifus, and the drain.

    python -m tests.benchmarks.bench_notify             # 100,000 waifus, 60 s of drain
    python -m tests.benchmarks.bench_notify --quick     # 10,000 waifus, 15 s of drain

1. The tick: 100,000 players with one waifu each, one point short of full with a clock a
   minute old, so one `api.restore_energy()` finds all of them (one waifu per player is
   the outbox's worst case: one row per waifu). It stages their "she is rested"
   (game.rested_ranges); the rows are made by the sender's claims, as they can be sent:
   the cost of making them (game.expand_rested, 1,000 waifus a call) is timed apart.
   Runs with notifications on and off for every player alternate, each after resetting
   the waifus and a VACUUM.
2. The drain: `python -m bot.notifier` (the bot's sender alone, role waifu_bot) sends to
   the Bot API stand-in in its own process with Telegram's flood limits on (`--limits`:
   429 beyond 30 messages/s or a chat's burst). Reported: messages/s sustained (target
   >= 24/s: the sender paces to 25/s), 429s received, duplicates (0 expected).
3. Restarts in the middle of the drain: SIGTERM (the sender gives back the rows it holds
   and exits; a new one starts) and SIGKILL (the rows the dead one held wait for their
   lease). Reported: the gap in sending, the rows the killed sender held and how long
   they waited, and the duplicates each restart caused.

The whole drain of 100,000 messages takes about 67 minutes at 25/s (Telegram's limit is
physics); the sustained rate over --drain-seconds is measured and the full drain time is
derived from it. The pg_cron restore job is paused during the run so only the
benchmark's ticks run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.benchmarks.common import (
    Metric,
    add_database_args,
    bench_database,
    info,
    machine_load,
    parse_settings,
    report,
    server_settings,
    target_at_least,
    target_at_most,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "123456:BENCH-token_for-the-stand-in"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load_players(admin: asyncpg.Connection, count: int) -> None:
    await admin.execute("SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobname = 'restore-energy'")
    await admin.execute(
        "INSERT INTO game.players (telegram_id, username, first_name, language_code) "
        "SELECT g, 'p' || g, 'Player ' || g, 'en' FROM generate_series(1, $1) AS g", count)
    await admin.execute(
        "INSERT INTO game.waifus (owner_id, template_code, name, dynamic) "
        "SELECT g, 'sakura', 'Sakura', game.new_dynamic(now()) FROM generate_series(1, $1) AS g", count)


async def make_due(admin: asyncpg.Connection) -> None:
    """Every waifu one point short, her clock a minute old; then VACUUM (a fair start)."""
    await admin.execute("DELETE FROM game.notifications")
    await admin.execute("DELETE FROM game.rested_ranges")
    await admin.execute(
        "UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', game.max_energy() - 1, "
        "'last_restore', extract(epoch FROM now()) - 61)")
    await admin.fetchval("SELECT ops.reset_tick(now() - interval '1 hour')")  # written behind the tick's back
    await admin.execute("VACUUM (ANALYZE) game.waifus, game.notifications, game.rested_ranges")


async def timed_tick(admin: asyncpg.Connection) -> tuple[float, int, int]:
    started = time.perf_counter()
    filled = await admin.fetchval("SELECT api.restore_energy()")
    seconds = time.perf_counter() - started
    staged = await admin.fetchval("SELECT coalesce(sum(waifus), 0) FROM game.rested_ranges")
    return seconds, filled, staged


class Process:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None, log: str | None = None) -> Process:
        """Run `python *args`; its stderr (the JSON log lines) goes to bench-results/<log>."""
        stderr: Any = asyncio.subprocess.DEVNULL
        if log:
            (PROJECT_ROOT / "bench-results").mkdir(exist_ok=True)
            stderr = open(PROJECT_ROOT / "bench-results" / log, "ab")
        proc = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=PROJECT_ROOT,
                                                    env={**os.environ, **(env or {})},
                                                    stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
        if log:
            stderr.close()
        return cls(proc)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), timeout)


class Drain:
    """The stand-in's counters, sampled every `period` s: messages sent over time."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http
        self.samples: list[tuple[float, dict[str, Any]]] = []

    async def stats(self) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/_stats") as resp:
            return dict(await resp.json())

    async def sample(self) -> dict[str, Any]:
        s = await self.stats()
        self.samples.append((time.monotonic(), s))
        return s

    async def wait_messages(self, at_least: int, timeout: float) -> float:
        """Wait until the stand-in has `at_least` messages; returns the moment (monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await self.stats())["messages"] >= at_least:
                return time.monotonic()
            await asyncio.sleep(0.02)
        raise TimeoutError(f"fewer than {at_least} messages after {timeout} s")

    async def run_for(self, seconds: float, period: float = 1.0) -> tuple[float, int]:
        """Sample for `seconds`; returns (messages/s over the period, messages in it)."""
        first = await self.sample()
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            await asyncio.sleep(period)
            await self.sample()
        last = self.samples[-1]
        return (last[1]["messages"] - first["messages"]) / (last[0] - started), last[1]["messages"] - first["messages"]


async def run(args: argparse.Namespace) -> None:
    with bench_database("bench-notify", args.database_url, args.bot_database_url, args.keep,
                        parse_settings(args.settings)) as db:
        admin = await asyncpg.connect(db.admin_url)
        metrics: list[Metric] = []
        try:
            print(f"loading {args.waifus:,} players with one waifu each...", flush=True)
            await load_players(admin, args.waifus)

            # 1. The tick, with and without the outbox writes, alternating.
            with_outbox: list[float] = []
            without: list[float] = []
            for n in range(args.tick_runs):
                for on in (True, False) if n % 2 == 0 else (False, True):
                    await admin.execute("UPDATE game.players SET notifications = $1", on)
                    await make_due(admin)
                    seconds, filled, staged = await timed_tick(admin)
                    assert filled == args.waifus, filled
                    assert staged == args.waifus, staged
                    (with_outbox if on else without).append(seconds)
                    print(f"  tick {'with' if on else 'without'} outbox: {seconds * 1000:.0f} ms", flush=True)
            on_ms, off_ms = statistics.median(with_outbox) * 1000, statistics.median(without) * 1000
            metrics += [
                info("tick finding all, notifications on (median)", round(on_ms), "ms",
                     f"{args.waifus:,} waifus found, their \"she is rested\" staged; runs: "
                     + ", ".join(f"{s * 1000:.0f}" for s in with_outbox)),
                info("tick finding all, notifications off (median)", round(off_ms), "ms",
                     "runs: " + ", ".join(f"{s * 1000:.0f}" for s in without)),
            ]
            # What the sender's claims pay instead, a call at a time (notifications on).
            await admin.execute("UPDATE game.players SET notifications = true")
            await make_due(admin)
            await timed_tick(admin)
            expand: list[float] = []
            made = 0
            for _ in range(5):
                started = time.perf_counter()
                made += await admin.fetchval("SELECT game.expand_rested(now(), 1000)")
                expand.append(time.perf_counter() - started)
            metrics.append(info("rows made from the stage, per row", round(sum(expand) * 1e6 / max(made, 1), 1), "us",
                                f"game.expand_rested, 5 calls of 1,000 waifus: {made:,} rows, "
                                + ", ".join(f"{s * 1000:.0f}" for s in expand) + " ms"))

            # The queue to drain: the last tick with notifications on.
            await admin.execute("UPDATE game.players SET notifications = true")
            await make_due(admin)
            await timed_tick(admin)

            # 2. The drain through the strict stand-in.
            port = free_port()
            stand_in = await Process.start("-m", "bot.dev.local_botapi", "--port", str(port), "--token", TOKEN,
                                           "--limits")
            url = f"http://127.0.0.1:{port}"
            sender_env = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": url, "DATABASE_URL": db.bot_url,
                          "LOG_LEVEL": "INFO", "NOTIFY_RATE": str(args.rate),
                          "NOTIFY_LEASE_SECONDS": str(args.lease), "NOTIFY_POLL_SECONDS": "1"}
            async with aiohttp.ClientSession() as http:
                drain = Drain(url, http)
                for _ in range(100):
                    try:
                        await drain.stats()
                        break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                launched = time.monotonic()
                sender = await Process.start("-m", "bot.notifier", env=sender_env, log="bench_notify-sender.log")
                first_at = await drain.wait_messages(1, 60)
                await asyncio.sleep(3)  # past the start
                rate, sent = await drain.run_for(args.drain_seconds)
                print(f"  drain: {rate:.1f} messages/s over {args.drain_seconds} s", flush=True)
                before_restarts = await drain.stats()
                metrics += [
                    info("sender start to first message", round(first_at - launched, 2), "s",
                         "interpreter and imports, pool, LISTEN, first claim"),
                    target_at_least("messages/s sustained", round(rate, 1), 24, "msg/s",
                                    f"{sent} messages over {args.drain_seconds} s, sender at {args.rate}/s, "
                                    "stand-in limit 30/s"),
                    info("429s received", before_restarts["rate_limited"]),
                    target_at_most("duplicates", before_restarts["duplicates"], 0),
                    info(f"full drain of {args.waifus:,} messages (derived)",
                         round(args.waifus / rate / 60, 1) if rate else None, "min"),
                ]

                # 3a. Graceful restart.
                count = (await drain.stats())["messages"]
                stopping = time.monotonic()
                await sender.stop(signal.SIGTERM)
                stopped = time.monotonic()
                sender = await Process.start("-m", "bot.notifier", env=sender_env, log="bench_notify-sender.log")
                resumed = await drain.wait_messages((await drain.stats())["messages"] + 1, 60)
                await asyncio.sleep(3)
                after = await drain.stats()
                metrics += [
                    info("graceful restart: stop took", round(stopped - stopping, 2), "s"),
                    info("graceful restart: gap in sending", round(resumed - stopping, 2), "s",
                         f"from SIGTERM to the next message; {count} sent before"),
                    target_at_most("graceful restart: duplicates", after["duplicates"] - before_restarts["duplicates"],
                                   0),
                ]

                # 3b. Crash: SIGKILL in the middle of a batch.
                base = await drain.stats()
                held_before = await admin.fetchval(
                    "SELECT count(*) FROM game.notifications WHERE sent_at IS NULL AND claimed_by IS NOT NULL "
                    "AND available_at > now()")
                await sender.stop(signal.SIGKILL)
                killed = time.monotonic()
                held = await admin.fetch(
                    "SELECT id FROM game.notifications WHERE sent_at IS NULL AND claimed_by IS NOT NULL "
                    "AND available_at > now()")
                held_ids = [r["id"] for r in held]
                sender = await Process.start("-m", "bot.notifier", env=sender_env, log="bench_notify-sender.log")
                resumed = await drain.wait_messages((await drain.stats())["messages"] + 1, 60)
                waited = None
                if held_ids:
                    deadline = time.monotonic() + args.lease + 30
                    while time.monotonic() < deadline:
                        left = await admin.fetchval(
                            "SELECT count(*) FROM game.notifications WHERE id = ANY($1) AND sent_at IS NULL", held_ids)
                        if left == 0:
                            waited = time.monotonic() - killed
                            break
                        await asyncio.sleep(0.2)
                await asyncio.sleep(2)
                after_kill = await drain.stats()
                metrics += [
                    info("crash: gap in sending", round(resumed - killed, 2), "s",
                         "from SIGKILL to the next message (a new sender claims the rows nobody holds)"),
                    info("crash: rows the dead sender held", len(held_ids), "",
                         f"{held_before} just before the kill; they wait for the lease ({args.lease} s)"),
                    info("crash: held rows sent again after", round(waited, 1) if waited is not None else None, "s"),
                    info("crash: duplicates", after_kill["duplicates"] - base["duplicates"], "",
                         "messages Telegram took that the dead sender had not marked sent (in flight at the kill)"),
                ]
                await sender.stop(signal.SIGTERM)
                final = await drain.stats()
                await stand_in.stop(signal.SIGTERM)
            pending = await admin.fetchval("SELECT count(*) FROM game.notifications WHERE sent_at IS NULL")
            metrics.append(info("messages sent in all", final["messages"], "", f"{pending:,} rows still queued"))
            context = {
                "waifus": args.waifus, "rate": args.rate, "lease_seconds": args.lease,
                "drain_seconds": args.drain_seconds, "tick_runs": args.tick_runs,
                "database": db.source, "server": await server_settings(db.admin_url), "machine": machine_load(),
                "stand_in": "bot.dev.local_botapi --limits (30 msg/s overall, burst 5 then 1/s per chat)",
                "samples": [(round(t - launched, 2), s["messages"]) for t, s in drain.samples],
            }
        finally:
            await admin.close()
        report("bench_notify", metrics, context)
        print(json.dumps({m.name: m.value for m in metrics}, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_args(parser)
    parser.add_argument("--waifus", type=int, default=100_000)
    parser.add_argument("--drain-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=25.0, help="the sender's NOTIFY_RATE")
    parser.add_argument("--lease", type=int, default=20, help="NOTIFY_LEASE_SECONDS for the sender")
    parser.add_argument("--tick-runs", type=int, default=3, help="ticks with and without the outbox, each")
    parser.add_argument("--quick", action="store_true", help="10,000 waifus, 15 s of drain, 1 tick each")
    args = parser.parse_args()
    if args.quick:
        args.waifus, args.drain_seconds, args.tick_runs, args.lease = 10_000, 15.0, 1, 10
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
