"""The notification sender: drains the outbox `game.notifications` into Telegram.

The restore tick stages the waifus that reached the cap (game.rested_ranges), then
`NOTIFY waifu_notifications`; a claim turns the staged ranges into one outbox row per
player when fewer rows wait than it asks for. This task, started with the bot (polling
and webhook mode alike) or alone (`python -m bot.notifier`), wakes on that NOTIFY (a
dedicated LISTEN connection; a poll every NOTIFY_POLL_SECONDS when it is down) and:

1. claims a batch with `api.claim_notifications` (FOR UPDATE SKIP LOCKED, so any number
   of bot processes can drain together; each row is leased for NOTIFY_LEASE_SECONDS);
2. merges the rows of one player into one message (her name and energy, buttons for
   events and stats, and one to turn the messages off);
3. paces the sends to NOTIFY_RATE messages/s for this process and at most one message
   per NOTIFY_CHAT_INTERVAL seconds per chat, and never starts a send whose lease could
   run out before the send's own timeout;
4. finishes each message right after Telegram answers: `sent`; `retry` after a 429's
   `retry_after` (and every send of this process waits that long too); `blocked` on 403
   (the player's notifications are turned off, retrying never helps); `failed` on any
   other refusal (400 chat not found...). A network error or a 5xx leaves the outcome
   unknown: the row is given back after a short delay and may go out twice.

A sender that dies holds its rows until their lease ends; then another sender (or the
same one restarted) claims and sends them: nothing is lost.

The double-send window. A message goes out twice only if the process dies (or loses the
database) after Telegram accepted it and before the `sent` mark commits - one database
round trip, about a millisecond, per message: the mark is written for each message as
soon as its own send returns, not per batch. A `sent` mark whose database call fails is
retried until it lands or the lease is about to end; it applies whoever holds the row by
then. Rows waiting in this process are never sent after their lease (minus the send
timeout and a margin), so two live senders never send the same row. The other way to a
duplicate is a send whose outcome is unknown (timeout, connection reset, 5xx): Telegram
may have delivered it, and it is sent again after NETWORK_RETRY_SECONDS - a second
message rather than none.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardMarkup

from bot import keyboards
from bot.config import EX_CONFIG, ConfigError, Settings, load_settings
from bot.game import Game
from bot.texts import Html, Texts

log = logging.getLogger("bot.notifier")

CHANNEL = "waifu_notifications"
# A send (HTTP request to Telegram) is abandoned after this long; a row is only sent if
# its lease outlasts this plus LEASE_MARGIN_SECONDS.
SEND_TIMEOUT_SECONDS = 10.0
LEASE_MARGIN_SECONDS = 5.0
# Outcome unknown (network, 5xx): try again after this long.
NETWORK_RETRY_SECONDS = 5
# Database trouble while claiming: back off up to this long.
MAX_BACKOFF_SECONDS = 10.0
MAX_WAIFUS_WITH_BUTTONS = 5


@dataclass
class Group:
    """The claimed rows of one player: one message."""

    telegram_id: int
    rows: list[dict[str, Any]]
    deadline: float  # monotonic: after this the lease may be over

    @property
    def ids(self) -> list[int]:
        return [int(r["id"]) for r in self.rows]

    def waifus(self) -> list[dict[str, Any]]:
        """The waifus of every row, one entry per waifu (the latest row's figures)."""
        by_id: dict[int, dict[str, Any]] = {}
        for row in self.rows:
            for w in (row.get("payload") or {}).get("waifus", []):
                by_id[int(w["waifu_id"])] = w
        return [by_id[k] for k in sorted(by_id)]


class Pacer:
    """A global rate (evenly spaced slots) and a minimum interval per chat.

    `reserve(chat)` books the earliest moment both allow and returns it; a 429 pushes
    every later slot past its retry_after.
    """

    def __init__(self, rate: float, chat_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.chat_interval = chat_interval
        self.clock = clock
        self.next_slot = 0.0
        self.chat_next: dict[int, float] = {}
        self.paused_until = 0.0

    def chat_ready_at(self, chat_id: int) -> float:
        return self.chat_next.get(chat_id, 0.0)

    def reserve(self, chat_id: int) -> float:
        now = self.clock()
        at = max(now, self.next_slot, self.paused_until, self.chat_ready_at(chat_id))
        self.next_slot = at + self.interval
        self.chat_next[chat_id] = at + self.chat_interval
        if len(self.chat_next) > 10_000:
            self.chat_next = {c: t for c, t in self.chat_next.items() if t > now}
        return at

    def pause(self, seconds: float, chat_id: int | None = None) -> None:
        until = self.clock() + seconds
        self.paused_until = max(self.paused_until, until)
        if chat_id is not None:
            self.chat_next[chat_id] = max(self.chat_next.get(chat_id, 0.0), until)


@dataclass
class Stats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    blocked: int = 0
    failed: int = 0
    expired: int = 0  # rows not sent because their lease ran out here
    rate_limited: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)


class Notifier:
    def __init__(self, game: Game, bot: Bot, *, dsn: str | None = None, rate: float = 25.0,
                 chat_interval: float = 1.0, batch_size: int = 50, lease_seconds: int = 60,
                 poll_seconds: float = 10.0, worker: str | None = None,
                 texts_for: Callable[[dict[str, Any]], Texts] | None = None) -> None:
        self.game = game
        self.bot = bot
        self.dsn = dsn
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.worker = worker or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pacer = Pacer(rate, chat_interval)
        self.texts_for = texts_for or default_texts
        self.stats = Stats()
        # Groups waiting for their turn: (earliest start, sequence, group).
        self._queue: list[tuple[float, int, Group]] = []
        self._seq = itertools.count()
        self._queued_rows = 0
        self._wake = asyncio.Event()  # a NOTIFY arrived (or stop)
        self._queue_changed = asyncio.Event()  # for the sender: a group arrived
        self._room = asyncio.Event()  # for the claimer: a group left the queue
        # A short lease (tests) shortens the send timeout and the margin with it.
        self.send_timeout = max(1.0, min(SEND_TIMEOUT_SECONDS, lease_seconds / 3))
        self.lease_margin = min(LEASE_MARGIN_SECONDS, lease_seconds / 6)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._sends = asyncio.Semaphore(max(4, int(rate * self.send_timeout / 4)))
        self._tasks: list[asyncio.Task[None]] = []
        self._current: Group | None = None
        self._owns_game = False
        self._stopping = False

    @classmethod
    def from_settings(cls, game: Game, settings: Settings, dsn: str | None) -> Notifier:
        return cls(game, notifier_bot(settings), dsn=dsn, rate=settings.notify_rate,
                   chat_interval=settings.notify_chat_interval, batch_size=settings.notify_batch_size,
                   lease_seconds=settings.notify_lease_seconds, poll_seconds=settings.notify_poll_seconds)

    @classmethod
    async def connect(cls, settings: Settings, dsn: str) -> Notifier:
        """A sender with a pool of its own (1-2 connections, plus the LISTEN one): its `sent`
        marks never queue behind the bot's updates for a connection, which would widen the
        double-send window under load; close() closes it."""
        game = await Game.connect(dsn, min_size=1, max_size=2)
        notifier = cls.from_settings(game, settings, dsn)
        notifier._owns_game = True
        return notifier

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._claim_loop(), name="notifier-claim"),
                       asyncio.create_task(self._send_loop(), name="notifier-send")]
        if self.dsn:
            self._tasks.append(asyncio.create_task(self._listen_loop(), name="notifier-listen"))
        log.info("notifier started", extra={"worker": self.worker})

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming, let sends in flight finish (up to `grace` s), give back the rest."""
        self._stopping = True
        self._wake.set()
        self._queue_changed.set()
        self._room.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=grace)
        waiting = [g for _, _, g in self._queue] + ([self._current] if self._current is not None else [])
        self._queue.clear()
        self._current = None
        ids = [i for g in waiting for i in g.ids]
        if ids:
            try:
                await self.game.finish_notifications(self.worker, ids, "retry", 0)
            except Exception as exc:  # noqa: BLE001 - their lease will run out instead
                log.warning("could not give back rows on stop", extra={"rows": len(ids), "error": str(exc)})
        log.info("notifier stopped", extra={"worker": self.worker, "sent": self.stats.sent})

    async def close(self) -> None:
        await self.bot.session.close()
        if self._owns_game:
            await self.game.close()

    # -- claiming ----------------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        """Keep a LISTEN connection; each NOTIFY wakes the claimer. Reconnects with backoff."""
        assert self.dsn is not None
        delay = 1.0
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANNEL, self._on_notify)
                delay = 1.0
                self._wake.set()  # whatever was written while we were not listening
                await lost.wait()
                log.warning("LISTEN connection lost; polling until it is back")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: poll meanwhile, reconnect later
                log.warning("LISTEN connection failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _claim_loop(self) -> None:
        backoff = 0.5
        while not self._stopping:
            # Keep about one batch waiting: enough that the sender never idles between
            # batches, few enough that none waits near its lease.
            if self._queued_rows >= self.batch_size:
                self._room.clear()
                await self._room.wait()
                continue
            self._wake.clear()
            try:
                rows = await self.game.claim_notifications(self.worker, self.batch_size, self.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - the sender must outlive any failure: back off, retry
                log.warning("claiming notifications failed", extra={"error": f"{type(exc).__name__}: {exc}",
                                                                    "retry_in": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = 0.5
            if rows:
                self._enqueue(rows)
            if len(rows) < self.batch_size:
                # Drained: wait for a NOTIFY, or poll.
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                except TimeoutError:
                    pass

    def _enqueue(self, rows: list[dict[str, Any]]) -> None:
        self.stats.claimed += len(rows)
        deadline = time.monotonic() + self.lease_seconds - self.send_timeout - self.lease_margin
        groups: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(int(row["telegram_id"]), []).append(row)
        for telegram_id, player_rows in groups.items():
            group = Group(telegram_id, player_rows, deadline)
            heapq.heappush(self._queue, (self.pacer.chat_ready_at(telegram_id), next(self._seq), group))
            self._queued_rows += len(player_rows)
        self._queue_changed.set()

    # -- sending -------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while not self._stopping:
            if not self._queue:
                self._queue_changed.clear()
                await self._queue_changed.wait()
                continue
            ready_at, _, group = self._queue[0]
            now = time.monotonic()
            if ready_at > now:
                # The first in line waits for its chat's interval; a new arrival may be sooner.
                self._queue_changed.clear()
                try:
                    await asyncio.wait_for(self._queue_changed.wait(), ready_at - now)
                except TimeoutError:
                    pass
                continue
            heapq.heappop(self._queue)
            self._current = group  # out of the queue, not yet sent: given back if we stop now
            self._queued_rows -= len(group.rows)
            self._room.set()  # the claimer may top up
            if self.pacer.chat_ready_at(group.telegram_id) > now:
                # The chat got a message since this group was queued: back in line.
                heapq.heappush(self._queue, (self.pacer.chat_ready_at(group.telegram_id), next(self._seq), group))
                self._queued_rows += len(group.rows)
                self._current = None
                continue
            at = self.pacer.reserve(group.telegram_id)
            while at > time.monotonic():
                await asyncio.sleep(at - time.monotonic())
                at = max(at, self.pacer.paused_until)  # a 429 meanwhile
            if time.monotonic() > group.deadline:
                # Its lease could end before the send does: another sender may hold the
                # rows by then. Not sent here; claimed again once the lease is over.
                self.stats.expired += len(group.rows)
                continue
            await self._sends.acquire()
            self._current = None
            task = asyncio.create_task(self._deliver(group))
            self._in_flight.add(task)
            task.add_done_callback(self._sent_done)

    def _sent_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._sends.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("notification delivery failed", exc_info=task.exception())

    async def _deliver(self, group: Group) -> None:
        try:
            text, markup = self.render(group)
            await self.bot.send_message(group.telegram_id, text, reply_markup=markup,
                                        request_timeout=int(self.send_timeout))
        except TelegramRetryAfter as exc:
            self.stats.rate_limited += 1
            self.pacer.pause(exc.retry_after, group.telegram_id)
            log.warning("429 from Telegram", extra={"retry_after": exc.retry_after, "chat_id": group.telegram_id})
            await self._finish(group, "retry", exc.retry_after)
            return
        except TelegramForbiddenError:
            # Blocked by the user (or deactivated): stop writing to them.
            await self._finish(group, "blocked")
            return
        except (TelegramBadRequest, TelegramNotFound) as exc:
            log.warning("notification refused", extra={"chat_id": group.telegram_id, "error": exc.message})
            await self._finish(group, "failed")
            return
        except (TelegramAPIError, OSError, TimeoutError) as exc:
            # Network trouble or a 5xx: Telegram may or may not have it. Again later.
            self.stats.errors += 1
            log.warning("notification send failed", extra={"chat_id": group.telegram_id,
                                                           "error": f"{type(exc).__name__}: {exc}"})
            await self._finish(group, "retry", NETWORK_RETRY_SECONDS)
            return
        await self._finish(group, "sent")

    async def _finish(self, group: Group, outcome: str, retry_after: int | None = None) -> None:
        """Record the outcome; a `sent` mark is retried while the lease lasts (the fewer
        marks lost, the fewer duplicates)."""
        delay = 0.1
        while True:
            try:
                await self.game.finish_notifications(self.worker, group.ids, outcome, retry_after)
                break
            except Exception as exc:  # noqa: BLE001 - logged; the lease decides what happens next
                if outcome != "sent" or time.monotonic() + delay > group.deadline + self.send_timeout:
                    log.warning("could not record a notification outcome",
                                extra={"outcome": outcome, "rows": len(group.ids), "error": str(exc)})
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        counter = {"sent": "sent", "retry": "retried", "blocked": "blocked", "failed": "failed"}[outcome]
        setattr(self.stats, counter, getattr(self.stats, counter) + len(group.ids))

    # -- the message -------------------------------------------------------------------------

    def render(self, group: Group) -> tuple[Html, InlineKeyboardMarkup]:
        texts = self.texts_for(group.rows[-1])
        waifus = group.waifus()
        if len(waifus) == 1:
            w = waifus[0]
            text = texts("rested_one", name=w["name"], energy=w["energy"])
        else:
            lines: list[str] = [texts("rested_many_title")]
            lines += [texts("rested_line", name=w["name"], energy=w["energy"]) for w in waifus]
            text = texts.lines(lines)
        return text, keyboards.rested(texts, waifus[:MAX_WAIFUS_WITH_BUTTONS])


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


def default_texts(row: dict[str, Any]) -> Texts:
    """The player's language: their setting, else Telegram's language_code."""
    language = row.get("language")
    if language and language != "auto":
        return Texts(language)
    return Texts.for_user(row.get("language_code"))


def notifier_bot(settings: Settings) -> Bot:
    """A Bot of its own for the sender: no automatic retry of 429 (the sender paces
    itself and gives the row back instead of holding it through a retry_after)."""
    session = (AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
               if settings.telegram_api_url else AiohttpSession())
    return Bot(settings.bot_token.get_secret_value(), session=session,
               default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True))


async def run_alone(settings: Settings, database_url: str) -> None:
    """`python -m bot.notifier`: only the sender (more senders beside the bots, or a drain)."""
    import signal

    notifier = await Notifier.connect(settings, database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    notifier.start()
    try:
        await stop.wait()
    finally:
        await notifier.stop()
        await notifier.close()


def main() -> int:
    from bot.logs import setup_logging

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EX_CONFIG
    setup_logging(settings.log_level)
    if not settings.database_url:
        print("DATABASE_URL is not set: the sender needs the bot's database.", file=sys.stderr)
        return EX_CONFIG
    asyncio.run(run_alone(settings, settings.database_url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
