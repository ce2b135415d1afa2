"""Bot benchmark: updates per second through the whole path, and latency per update.

    python -m tests.benchmarks.bench_bot            # 50 players, 20 s + 20 s
    python -m tests.benchmarks.bench_bot --quick    # 50 players, 4 s + 4 s (under 30 s in all)

The path of one update: aiogram's dispatcher and middlewares, the handler, the database
call(s) through the asyncpg pool as role waifu_bot, and the replies (editMessageText /
sendMessage, answerCallbackQuery) over HTTP to the Bot API stand-in, which runs in its
own process (Telegram is elsewhere too). 50 simulated players play at once, each one
update after the other like a person tapping: /profile, Refresh, Events, a walk,
Again, Menu, Stats, over and over.

Two phases:
1. throughput: every player sends its next update as soon as the previous one is
   handled (no pause). Updates/s = all updates over the wall time. Latency here is
   mostly queueing (50 updates always in flight: latency ~ 50 / throughput).
2. latency at a rate: the players together send `--rate` updates/s (default 500, the
   target), each on a fixed schedule; latency counts from the scheduled moment, so a
   slow answer that delays the next send is counted too (no coordinated omission).

`--webhook` hands each update over as the webhook endpoint does once it has parsed the
request (bot/webhook.py): a button's answer then rides in the response, whose body is
made but not sent (carrying it out is Telegram's work). Without it, updates go
through `feed_raw_update`, as long polling hands them over.

`--floor` measures the same load through aiogram alone: one router, no middleware of
ours, no database, handlers that only send or edit a screen and answer the button (the
replies the real handlers make). It is the cost of the framework and the stand-in
beneath any handler, on this machine, today: the real path cannot be cheaper.

CPU time of the bot process, of the stand-in process and of the pool's PostgreSQL
backends is read from /proc around each phase: on a machine shared with other work,
CPU per update is the steadier figure. Energy is refilled in the background (a
superuser UPDATE, outside the bot's path) so the mix stays mostly successful
participations. The bot logs its JSON line per update as in production (to /dev/null).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.methods import AnswerCallbackQuery, EditMessageCaption, EditMessageText, SendMessage, SendPhoto
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from aiohttp import web

from bot.app import create_bot, create_dispatcher, freeze_startup_objects
from bot.config import Settings
from bot.game import Game
from bot.logs import setup_logging
from bot.webhook import ValidatingRequestHandler, WebhookReply, reply_body
from tests.benchmarks.common import (
    Metric,
    add_database_args,
    bench_database,
    cpu_seconds_of,
    info,
    machine_busy_seconds,
    machine_load,
    percentile,
    report,
    server_settings,
    target_at_least,
    target_at_most,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "123456:BENCH-token_for-the-stand-in"
SCRIPT = ("/profile", "Refresh", "Events", "Walk in the park", "Again", "Menu", "Stats")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CpuMeter:
    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.start: dict[str, float | None] = {}

    def begin(self) -> None:
        self.start = {name: cpu_seconds_of(pids) for name, pids in self.groups.items()}
        self.start["bot"] = time.process_time()
        self.start["machine"] = machine_busy_seconds()
        self.started = time.perf_counter()

    async def sample_others(self, period: float = 1.0) -> list[float | None]:
        """Every `period` s until cancelled: cores used by other processes in that second."""
        samples: list[float | None] = []
        try:
            while True:
                self.begin()
                await asyncio.sleep(period)
                samples.append(self.others_cores())
        except asyncio.CancelledError:
            return samples

    def others_cores(self) -> float | None:
        """Cores used on average by every other process of the machine since `begin`."""
        ours = 0.0
        for name, pids in self.groups.items():
            now, before = cpu_seconds_of(pids), self.start.get(name)
            if now is None or before is None:
                return None
            ours += now - before
        ours += time.process_time() - (self.start["bot"] or 0.0)
        machine, before = machine_busy_seconds(), self.start.get("machine")
        if machine is None or before is None:
            return None
        return round(max(0.0, machine - before - ours) / (time.perf_counter() - self.started), 2)

    def per_update_ms(self, updates: int) -> dict[str, float | None]:
        used: dict[str, float | None] = {"bot": time.process_time() - self.start["bot"]}
        for name, pids in self.groups.items():
            now, before = cpu_seconds_of(pids), self.start.get(name)
            used[name] = None if now is None or before is None else now - before
        return {name: (None if v is None else round(v / max(updates, 1) * 1000, 3)) for name, v in used.items()}


class GcPauses:
    """Full (generation 2) garbage collections in this process and how long they stopped it."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._started)

    def reset(self) -> None:
        self.durations = []

    def summary(self) -> str:
        if not self.durations:
            return "none"
        return f"{len(self.durations)}, longest {max(self.durations) * 1000:.1f} ms"

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


class LastMessage(BaseRequestMiddleware):
    """Remembers the bot's latest message per chat (what each player sees). A dict
    write per reply: negligible next to the request itself."""

    def __init__(self) -> None:
        self.by_chat: dict[int, Message] = {}

    async def __call__(self, make_request, bot: Bot, method):  # type: ignore[no-untyped-def]
        result = await make_request(bot, method)
        if isinstance(method, (SendMessage, EditMessageText, SendPhoto, EditMessageCaption)) \
                and isinstance(result, Message):
            self.by_chat[result.chat.id] = result
        return result


class SimPlayer:
    update_ids = itertools.count(1)
    callback_ids = itertools.count(1)

    def __init__(self, telegram_id: int, seen: LastMessage) -> None:
        self.id = telegram_id
        self.seen = seen
        self.user = {"id": telegram_id, "is_bot": False, "first_name": f"Player {telegram_id}", "language_code": "en"}
        self.chat = {"id": telegram_id, "type": "private", "first_name": self.user["first_name"]}

    def message(self, text: str) -> dict[str, Any]:
        return {"update_id": next(self.update_ids), "message": {
            "message_id": 1, "date": int(time.time()), "from": self.user, "chat": self.chat, "text": text}}

    def press(self, label: str) -> dict[str, Any]:
        message = self.seen.by_chat[self.id]
        markup = message.reply_markup
        buttons = [b for row in (markup.inline_keyboard if markup else []) for b in row if b.callback_data]
        data = next((b.callback_data for b in buttons if label in b.text), None)
        if data is None:  # the screen the script expected did not come: say which it was
            raise RuntimeError(f"no {label!r} button under {(message.text or '')[:60]!r}: "
                               f"{[b.text for b in buttons]}")
        return {"update_id": next(self.update_ids), "callback_query": {
            "id": f"bench-{next(self.callback_ids)}", "from": self.user, "chat_instance": str(self.id), "data": data,
            "message": {"message_id": message.message_id, "date": int(time.time()), "chat": self.chat,
                        # the stat card is a photo: its buttons act on it as one
                        **({"photo": [p.model_dump() for p in message.photo], "caption": "-"} if message.photo
                           else {"text": "-"})}}}

    def next_update(self, step: int) -> dict[str, Any]:
        action = SCRIPT[step % len(SCRIPT)]
        return self.message(action) if action.startswith("/") else self.press(action)


def floor_dispatcher() -> Dispatcher:
    """aiogram with nothing of ours: every button of the script on every screen, and the
    two replies a real update makes (a screen, and the button's answer)."""
    dp = Dispatcher(disable_fsm=True)
    labels = ("Sakura", *(a for a in SCRIPT if not a.startswith("/")))
    markup = InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=label, callback_data=f"floor:{n}")] for n, label in enumerate(labels)])
    screens = itertools.count()  # each screen differs, or the stand-in refuses the edit as unchanged

    @dp.message()
    async def on_message(message: Message, bot: Bot) -> None:
        await bot.send_message(message.chat.id, f"Screen {next(screens)}", reply_markup=markup)

    @dp.callback_query()
    async def on_press(query: CallbackQuery, bot: Bot, webhook_reply: WebhookReply | None = None) -> None:
        assert isinstance(query.message, Message)
        await bot.edit_message_text(text=f"Screen {next(screens)}", chat_id=query.message.chat.id,
                                    message_id=query.message.message_id, reply_markup=markup)
        answer = AnswerCallbackQuery(callback_query_id=query.id)
        if webhook_reply is None or not webhook_reply.offer(answer):  # --webhook: in the response
            await bot(answer)

    return dp


class WebhookFeed(ValidatingRequestHandler):
    """The webhook endpoint past its HTTP parsing: an update is done when its handling ends."""

    def __init__(self, *args: Any, reply: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reply = reply
        self.handling: dict[int, asyncio.Task[None]] = {}

    def _start(self, bot: Bot, update: Update, reply: WebhookReply | None) -> asyncio.Task[None]:
        task = super()._start(bot, update, reply)
        self.handling[update.update_id] = task
        return task

    async def feed(self, bot: Bot, raw: dict[str, Any]) -> None:
        update = Update.model_validate(raw, context={"bot": bot})
        if self.reply:
            method = await self.feed_with_reply(bot, update)
            web.json_response({} if method is None else reply_body(method))  # as handle makes it
        else:  # --no-webhook-reply: every answer a request of its own (before the reply)
            self._start(bot, update, None)
            web.json_response({})
        await self.handling.pop(update.update_id)


async def start_stub(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.dev.local_botapi", "--port", str(port), "--token", TOKEN,
        cwd=PROJECT_ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the Bot API stand-in did not start")


async def refill_energy(admin_url: str, stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        while not stop.is_set():
            await conn.execute("UPDATE game.waifus SET dynamic = dynamic || '{\"energy\": 100}' "
                               "WHERE (dynamic ->> 'energy')::int < 50")
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    seconds = 4.0 if args.quick and args.seconds is None else (args.seconds or 20.0)
    with bench_database("bench-bot", args.database_url, args.bot_database_url, args.keep) as db:
        admin = await asyncpg.connect(db.admin_url)
        await admin.execute("TRUNCATE game.participations, game.waifus, game.players RESTART IDENTITY CASCADE")
        # The simulated players tap several times a second each, faster than a person: with
        # the shared per-user limit (chat_user: 2/s, bursts of 20) they would be refused
        # after their burst and lose their place in the script. The limiter still runs on
        # every update (api.admit_update); it just lets these through.
        await admin.fetchval("SELECT ops.set_rate_limit('chat_user', 1000, 1000)")
        port = free_port()
        stub = await start_stub(port)
        settings = Settings(_env_file=None, bot_token=TOKEN, telegram_api_url=f"http://127.0.0.1:{port}",
                            webapp_url="https://bench.example.test/webapp/")
        setup_logging("INFO")
        devnull = open(os.devnull, "w")  # closed at the end
        for handler in logging.getLogger().handlers:
            handler.setStream(devnull)  # type: ignore[attr-defined]
        game = await Game.connect(db.bot_url, min_size=settings.db_pool_min_size,
                                  max_size=settings.db_pool_max_size)
        bot = create_bot(settings)
        seen = LastMessage()
        bot.session.middleware(seen)
        dp = floor_dispatcher() if args.floor else create_dispatcher(game, settings)
        players = [SimPlayer(10_000 + n, seen) for n in range(args.players)]
        feed: Callable[[Bot, dict[str, Any]], Awaitable[Any]] = (
            WebhookFeed(dispatcher=dp, bot=bot, reply=not args.no_webhook_reply).feed if args.webhook
            else dp.feed_raw_update)
        stop_refill = asyncio.Event()
        refill = None
        try:
            # Warm-up (not measured): every player starts and adopts.
            for p in players:
                await dp.feed_raw_update(bot, p.message("/start"))
                await dp.feed_raw_update(bot, p.press("Sakura"))
            refill = asyncio.create_task(refill_energy(db.admin_url, stop_refill))
            # A short burst (not measured) grows the pool to its working size and warms caches.
            await drive(feed, bot, players, 1.0)
            if not args.no_gc_freeze:
                freeze_startup_objects()  # as `python -m bot` does once started
            pauses = GcPauses()

            backend_pids = [r["pid"] for r in await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE usename = 'waifu_bot' AND backend_type = 'client backend'")]
            meter = CpuMeter({"stand-in": [stub.pid], "postgres": backend_pids})
            ledger_before = await admin.fetchval("SELECT count(*) FROM game.participations")

            # Phase 1: throughput, no pause between a player's updates.
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            meter.begin()
            pauses.reset()
            closed = await drive(feed, bot, players, seconds)
            closed_cpu = meter.per_update_ms(len(closed.latencies))
            closed_others = meter.others_cores()
            closed_gc = pauses.summary()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            load_after_closed = machine_load()

            # Phase 2: latency at a fixed rate.
            meter.begin()
            pauses.reset()
            sampler_meter = CpuMeter(meter.groups)
            sampler = asyncio.create_task(sampler_meter.sample_others())
            paced = await drive(feed, bot, players, seconds, rate=args.rate)
            paced_cpu = meter.per_update_ms(len(paced.latencies))
            paced_others = meter.others_cores()
            sampler.cancel()
            others_by_second = await sampler
            paced_gc = pauses.summary()
            pauses.close()
            applied = await admin.fetchval("SELECT count(*) FROM game.participations") - ledger_before
            load = machine_load()
            pg = await server_settings(db.admin_url)
        finally:
            stop_refill.set()
            if refill is not None:
                await refill
            await bot.session.close()
            await game.close()
            await admin.close()
            stub.terminate()
            await stub.wait()
            devnull.close()
            logging.getLogger().handlers.clear()

    metrics: list[Metric] = [
        target_at_least("throughput", closed.per_second, 500, "upd/s",
                        note=f"{len(closed.latencies):,} updates by {args.players} players in {closed.elapsed:.1f} s, "
                             "no pause between a player's updates"),
        info("throughput phase p50 / p99", f"{closed.p(50):.1f} / {closed.p(99):.1f}", "ms",
             note="queueing: 50 updates always in flight"),
        target_at_most(f"p99 latency at {args.rate:g} upd/s", round(paced.p(99), 2), 50, "ms",
                       note=f"achieved {paced.per_second:.0f} upd/s; counted from the scheduled send time"),
        info(f"p50 latency at {args.rate:g} upd/s", round(paced.p(50), 2), "ms"),
        info(f"p90 / max latency at {args.rate:g} upd/s", f"{paced.p(90):.1f} / {max(paced.latencies) * 1000:.1f}",
             "ms"),
        info("other processes' CPU (phase 1 | phase 2)", f"{closed_others} | {paced_others}", "cores",
             note=f"of {os.cpu_count()}: everything on this machine but the bot, the stand-in and their "
                  "PostgreSQL backends (others' tests, PostgreSQL's own workers, the kernel)"),
        busy_seconds(paced, others_by_second),
        info("full GC passes (phase 1 | phase 2)", f"{closed_gc} | {paced_gc}", "",
             note="gc.freeze() after start-up" + (" OFF (--no-gc-freeze)" if args.no_gc_freeze else "")),
    ]
    for name, value in closed_cpu.items():
        metrics.append(info(f"CPU per update, {name}", value, "ms", note="throughput phase; /proc"))
    known = [v for v in closed_cpu.values() if v is not None]
    if len(known) == len(closed_cpu):
        total = sum(known)
        metrics.append(info("CPU per update, all three", round(total, 3), "ms",
                            note=f"= {os.cpu_count()} cores / {total:.2f} ms -> about "
                                 f"{os.cpu_count() / total * 1000:,.0f} upd/s if this machine ran nothing else"))
    for action in SCRIPT:
        cells = []
        for phase in (closed, paced):
            values = phase.by_action[action]
            cells.append(f"{percentile(values, 50) * 1000:.1f} / {percentile(values, 99) * 1000:.1f}"
                         if values else "n/a")
        metrics.append(info(f"p50 / p99 {action}", " | ".join(cells), "ms", note="phase 1 | phase 2"))
    if not args.floor:
        metrics.append(info("participations applied", applied, "",
                            note="the other walk/Again taps were refusals (energy)"))
    metrics += [
        target_at_most("errors", closed.errors + paced.errors, 0, "",
                       note=closed.first_error or paced.first_error or "none"),
    ]
    report("bench_bot" + ("_floor" if args.floor else "") + ("_webhook" if args.webhook else ""), metrics, {
        "players": args.players, "seconds_per_phase": seconds, "rate": args.rate, "quick": args.quick,
        "database": db.source, "pool_max_size": settings.db_pool_max_size,
        "machine_after_phase_1": load_after_closed, "machine_after_phase_2": load, "postgres": pg,
        "cpu_ms_per_update_phase_2": paced_cpu,
        "phase_2_slow_updates_by_second": slow_by_second(paced.timeline),
        "phase_2_other_processes_cores_by_second": others_by_second,
        "path": describe_path(args),
    })


def describe_path(args: argparse.Namespace) -> str:
    if not args.webhook:
        entry = "feed_raw_update"
    elif args.no_webhook_reply:
        entry = "webhook endpoint past HTTP, answers by request"
    else:
        entry = "webhook endpoint past HTTP, a button's answer in its response"
    handler = "a bare handler (--floor)" if args.floor else "handler -> asyncpg"
    return f"{entry} -> {handler} -> HTTP to the stand-in (separate process)"


def busy_seconds(paced: Run, others: list[float | None]) -> Metric:
    """Phase 2's slow updates set beside the seconds when other processes took a core or more."""
    slow = slow_by_second(paced.timeline)
    busy = {str(n) for n, cores in enumerate(others) if cores is not None and cores >= 1.0}
    slow_total = sum(slow.values())
    in_busy = sum(count for second, count in slow.items() if second in busy or str(int(second) - 1) in busy)
    return info("phase 2: seconds others took >= 1 core", f"{len(busy)} of {len(others)}", "",
                note=f"{in_busy} of the {slow_total} updates over 50 ms came in such a second or the one after")


def slow_by_second(timeline: list[tuple[float, float]], slow: float = 0.05) -> dict[str, int]:
    """How many updates took over 50 ms, per second of the run: a few bad seconds (a stall
    of the whole machine) look different from a tail spread evenly."""
    counts: dict[str, int] = {}
    for at, latency in timeline:
        if latency > slow:
            key = str(int(at))
            counts[key] = counts.get(key, 0) + 1
    return counts


class Run:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.by_action: dict[str, list[float]] = {a: [] for a in SCRIPT}
        self.errors = 0
        self.first_error: str | None = None
        self.elapsed = 0.0
        self.timeline: list[tuple[float, float]] = []  # (scheduled moment, latency), seconds

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


async def drive(feed: Callable[[Bot, dict[str, Any]], Awaitable[Any]], bot: Bot, players: list[SimPlayer],
                seconds: float, rate: float | None = None) -> Run:
    """Every player plays its script for `seconds`; with `rate`, all together send
    `rate` updates/s on a fixed schedule (latency counted from the scheduled moment)."""
    run = Run()
    start = time.perf_counter()
    deadline = start + seconds
    interval = len(players) / rate if rate else 0.0

    async def play(n: int, player: SimPlayer) -> None:
        step = 0
        # Spread the players' schedules evenly over one interval.
        scheduled = start + interval * n / len(players)
        while (now := time.perf_counter()) < deadline:
            if rate:
                if scheduled > now:
                    await asyncio.sleep(scheduled - now)
                t0 = scheduled
                scheduled += interval
            else:
                t0 = now
            try:
                await feed(bot, player.next_update(step))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                run.errors += 1
                run.first_error = run.first_error or f"{type(exc).__name__}: {exc}"
            else:
                elapsed = time.perf_counter() - t0
                run.latencies.append(elapsed)
                run.timeline.append((t0 - start, elapsed))
                run.by_action[SCRIPT[step % len(SCRIPT)]].append(elapsed)
            step += 1

    await asyncio.gather(*(play(n, p) for n, p in enumerate(players)))
    run.elapsed = time.perf_counter() - start
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_bot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 s per phase (the whole run under 30 s)")
    parser.add_argument("--players", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=None, help="seconds per phase (default 20, quick 4)")
    parser.add_argument("--rate", type=float, default=500.0, help="updates/s of phase 2 (default 500, the target)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the measured phase into FILE (slower)")
    parser.add_argument("--webhook", action="store_true",
                        help="updates as the webhook endpoint takes them (a button's answer in its response)")
    parser.add_argument("--no-webhook-reply", action="store_true",
                        help="with --webhook: answer buttons by request, not in the response")
    parser.add_argument("--floor", action="store_true",
                        help="aiogram alone: no middleware of ours, no database (the framework's floor)")
    parser.add_argument("--no-gc-freeze", action="store_true", help="measure without gc.freeze() after start-up")
    add_database_args(parser)
    args = parser.parse_args(argv)
    if args.no_webhook_reply and not args.webhook:
        parser.error("--no-webhook-reply goes with --webhook")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
