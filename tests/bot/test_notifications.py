"""The "she is rested" sender (bot/notifier.py), end to end: the restore tick writes the
outbox, the sender (in this process, or as `python -m bot.notifier` processes) sends over
real HTTP to the strict Bot API stand-in, which enforces Telegram's flood limits and
answers 403 for a player who blocked the bot."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.dev.local_botapi import Limits, Player, TelegramStub, callback_id_of
from bot.game import Game
from bot.notifier import Notifier, notifier_bot
from tests.bot.conftest import Harness, make_settings

ROOT = Path(__file__).resolve().parents[2]
RESTED = ("is rested", "are rested")

StartNotifier = Callable[..., Awaitable[Notifier]]


@pytest.fixture
async def start_notifier(stub: TelegramStub, database) -> AsyncIterator[StartNotifier]:
    """Start senders in this process (each with its own pool, bot and LISTEN connection)."""
    running: list[tuple[Notifier, Game]] = []

    async def start(**options: Any) -> Notifier:
        game = await Game.connect(database.bot_url, min_size=1, max_size=2)
        values: dict[str, Any] = {"rate": 25.0, "lease_seconds": 30, "poll_seconds": 1.0}
        values.update(options)
        notifier = Notifier(game, notifier_bot(make_settings(stub)), dsn=database.bot_url, **values)
        notifier.start()
        running.append((notifier, game))
        return notifier

    yield start
    for notifier, game in running:
        await notifier.stop()
        await notifier.close()
        await game.close()


async def meet(h: Harness, player: Player, *more: str) -> list[int]:
    """The player starts the bot and adopts Sakura (and `more` templates): their waifu ids."""
    await h.send(player.message("/start"))
    await h.send(player.press("Sakura"))
    for code in more:
        await h.admin.fetchval("SELECT api.adopt_waifu($1, $2)", player.id, code)
    return [r["id"] for r in await h.admin.fetch("SELECT id FROM game.waifus WHERE owner_id = $1 ORDER BY id",
                                                 player.id)]


async def fill(admin: asyncpg.Connection, waifu_ids: list[int]) -> int:
    """One point short with a clock a minute old, then restore ticks (at the real time) until
    they found them all."""
    # Full right now: after the cursor (at most the last tick's time), so the tick finds
    # them without moving it back (ops.reset_tick would tell about earlier ones again).
    await admin.execute(
        "UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 99, "
        "'last_restore', extract(epoch FROM now()) - 60) WHERE id = ANY($1)", waifu_ids)
    # A tick stops short of a transaction still open elsewhere (a sender's claim, a pool's
    # call: what it commits could land behind the cursor), as pg_cron's next run would
    # catch up: tick again, briefly, instead of waiting a minute for it.
    found = 0
    for _ in range(100):
        found += await admin.fetchval("SELECT api.restore_energy()")
        if found >= len(waifu_ids):
            break
        await asyncio.sleep(0.05)
    return found


def rested(stub: TelegramStub, chat_id: int) -> list[dict[str, Any]]:
    """The notifications this chat received (as sent: a later edit does not hide one)."""
    return [c.response["result"] for c in stub.calls_of("sendMessage")
            if c.status == 200 and c.params.get("chat_id") == chat_id
            and any(r in c.response["result"]["text"] for r in RESTED)]


def sends_to(stub: TelegramStub, chat_id: int) -> list[Any]:
    return [c for c in stub.calls_of("sendMessage") if c.params.get("chat_id") == chat_id]


async def eventually(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait for a condition the stand-in does not see (the sender's marks, its counters)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def settle(stub: TelegramStub, seconds: float = 1.5) -> None:
    """Give a sender time to do something it should not (a poll period and more)."""
    await asyncio.sleep(seconds)


async def test_one_message_per_fill_with_her_buttons(harness: Harness, start_notifier: StartNotifier) -> None:
    h = harness
    ann = h.stub.user(2001, "Ann")
    sakura, yuki = await meet(h, ann, "yuki")
    await start_notifier()
    await fill(h.admin, [sakura, yuki])
    await h.stub.wait_for(lambda: rested(h.stub, ann.chat_id), timeout=10)
    [message] = rested(h.stub, ann.chat_id)
    # Both waifus filled by one tick: one message naming both.
    assert message["text"].startswith("🌸 Your companions are rested:")
    assert "Sakura ⚡ 100" in message["text"] and "Yuki ⚡ 100" in message["text"]
    assert [b["text"] for b in ann.buttons(message)] == ["🎉 Sakura", "📊 Sakura", "🎉 Yuki", "📊 Yuki",
                                                         "🔕 Stop these messages"]
    # Nothing more: no second message for the same fill, none for waifus already full.
    await h.admin.fetchval("SELECT api.restore_energy()")
    await settle(h.stub)
    assert len(rested(h.stub, ann.chat_id)) == 1
    assert await h.admin.fetchval("SELECT count(*) FROM game.notifications WHERE sent_at IS NULL") == 0

    # Her buttons work: the events of Yuki.
    await h.send(ann.press("🎉 Yuki", message=message))
    assert ann.last()["text"].startswith("Events for Yuki")

    # A second fill later is a second message; one waifu: her name in the first line.
    await fill(h.admin, [sakura])
    await h.stub.wait_for(lambda: len(rested(h.stub, ann.chat_id)) == 2, timeout=10)
    second = rested(h.stub, ann.chat_id)[-1]
    assert second["text"] == "🌸 Sakura is rested: ⚡ 100. She is waiting for you!"
    assert [b["text"] for b in ann.buttons(second)] == ["🎉 Events", "📊 Stats", "🔕 Stop these messages"]


async def test_the_stop_button_turns_them_off_and_none_come_after(harness: Harness,
                                                                  start_notifier: StartNotifier) -> None:
    h = harness
    bob = h.stub.user(2002, "Bob")
    [sakura] = await meet(h, bob)
    await start_notifier()
    await fill(h.admin, [sakura])
    await h.stub.wait_for(lambda: rested(h.stub, bob.chat_id), timeout=10)
    tap = bob.press("Stop these messages", message=rested(h.stub, bob.chat_id)[0])
    await h.send(tap)
    assert h.stub.answers(callback_id_of(tap))[0]["text"].startswith("Notifications off")
    assert await h.admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = $1", bob.id) is False

    await fill(h.admin, [sakura])
    await settle(h.stub)
    assert len(rested(h.stub, bob.chat_id)) == 1
    assert await h.admin.fetchval("SELECT count(*) FROM game.notifications WHERE telegram_id = $1", bob.id) == 1

    # /notify on brings them back.
    await h.send(bob.message("/notify on"))
    assert bob.last()["text"].startswith("🔔 Notifications are on")
    await fill(h.admin, [sakura])
    await h.stub.wait_for(lambda: len(rested(h.stub, bob.chat_id)) == 2, timeout=10)


async def test_a_player_who_blocked_the_bot_gets_one_attempt_then_nothing(
        harness: Harness, start_notifier: StartNotifier) -> None:
    h = harness
    cat = h.stub.user(2003, "Cat")
    [sakura] = await meet(h, cat)
    h.stub.block(cat.chat_id)
    before = len(sends_to(h.stub, cat.chat_id))  # the welcome
    notifier = await start_notifier()
    await fill(h.admin, [sakura])
    await h.stub.wait_for(lambda: len(sends_to(h.stub, cat.chat_id)) > before
                          and sends_to(h.stub, cat.chat_id)[-1].status, 10)
    assert sends_to(h.stub, cat.chat_id)[-1].status == 403
    for _ in range(50):
        if not await h.admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = $1", cat.id):
            break
        await asyncio.sleep(0.1)
    assert await h.admin.fetchval("SELECT outcome FROM game.notifications WHERE telegram_id = $1", cat.id) == "blocked"
    assert await h.admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = $1", cat.id) is False
    await fill(h.admin, [sakura])
    await settle(h.stub)
    assert len(sends_to(h.stub, cat.chat_id)) == before + 1 and notifier.stats.blocked == 1


async def test_429_retry_after_is_honoured(harness: Harness, start_notifier: StartNotifier) -> None:
    h = harness
    dan = h.stub.user(2004, "Dan")
    [sakura] = await meet(h, dan)
    h.stub.fail_next(1, method="sendMessage", retry_after=2)
    notifier = await start_notifier()
    await fill(h.admin, [sakura])
    await h.stub.wait_for(lambda: rested(h.stub, dan.chat_id), timeout=10)
    *_, first, second = sends_to(h.stub, dan.chat_id)  # after the welcome
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 2.0  # not before retry_after
    await eventually(lambda: notifier.stats.sent == 1)
    assert notifier.stats.rate_limited == 1


async def test_an_unknown_outcome_is_sent_again_and_a_refusal_ends_the_row(
        harness: Harness, start_notifier: StartNotifier) -> None:
    h = harness
    eve = h.stub.user(2005, "Eve")
    [sakura] = await meet(h, eve)
    # A player the stand-in never saw write: "chat not found" (400) ends the row, no retry.
    await h.admin.fetchval("SELECT api.register_player(2006, 'gil', 'Gil', 'en')")
    ghost = await h.admin.fetchval("SELECT api.adopt_waifu(2006, 'rin')")
    h.stub.fail_next(1, method="sendMessage", status=502)  # Telegram's gateway fails once
    notifier = await start_notifier()
    await fill(h.admin, [sakura, ghost])
    await h.stub.wait_for(lambda: rested(h.stub, eve.chat_id), timeout=15)
    await eventually(lambda: notifier.stats.sent == 1 and notifier.stats.failed == 1)
    assert notifier.stats.errors == 1  # the 502: sent again after NETWORK_RETRY_SECONDS
    outcomes = dict(await h.admin.fetch("SELECT telegram_id, outcome FROM game.notifications"))
    assert outcomes == {eve.id: "sent", 2006: "failed"}
    assert await h.admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = 2006") is True


async def test_flood_limits_every_message_once(harness: Harness, start_notifier: StartNotifier) -> None:
    """A sender configured faster than Telegram allows: 429s, each honoured, and still
    every player gets exactly one message."""
    h = harness
    players = [h.stub.user(2100 + n, f"P{n}") for n in range(15)]
    waifus = [(await meet(h, p))[0] for p in players]
    h.stub.sent_per_chat.clear()
    h.stub.limits = Limits(per_second=5, chat_burst=5)
    notifier = await start_notifier(rate=50.0)
    await fill(h.admin, waifus)
    await h.stub.wait_for(lambda: all(rested(h.stub, p.chat_id) for p in players), timeout=30)
    await settle(h.stub, 0.5)
    assert {p.chat_id: h.stub.sent_per_chat[p.chat_id] for p in players} == {p.chat_id: 1 for p in players}
    await eventually(lambda: notifier.stats.sent == 15)
    assert h.stub.rate_limited > 0 and notifier.stats.rate_limited == h.stub.rate_limited


# -- sender processes ----------------------------------------------------------------------------


class SenderProcess:
    """`python -m bot.notifier` against the stand-in and the test database."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, stub: TelegramStub, database_url: str, **env: str) -> SenderProcess:
        environment = {**os.environ, "BOT_TOKEN": stub.token, "TELEGRAM_API_URL": stub.url,
                       "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "NOTIFY_POLL_SECONDS": "0.5", **env}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.notifier", cwd=ROOT, env=environment,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def stop(self, sig: int = signal.SIGTERM) -> bytes:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        _, err = await asyncio.wait_for(self.proc.communicate(), 30)
        return err


async def listening(admin: asyncpg.Connection, count: int, timeout: float = 90.0) -> None:
    """Wait until `count` senders listen (their interpreter start-up takes seconds on a busy machine)."""
    deadline = time.monotonic() + timeout
    while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'") < count:
        assert time.monotonic() < deadline, "the senders did not start"
        await asyncio.sleep(0.2)


async def test_two_sender_processes_send_each_message_once(harness: Harness, database) -> None:
    h = harness
    h.stub.limits = None  # two senders at 25/s each: the count, not the flood limit, is tested here
    h.stub.send_delay = 0.02
    players = [h.stub.user(2200 + n, f"Q{n}") for n in range(40)]
    waifus = [(await meet(h, p))[0] for p in players]
    h.stub.sent_per_chat.clear()
    senders = [await SenderProcess.start(h.stub, database.bot_url, NOTIFY_BATCH_SIZE="5") for _ in range(2)]
    try:
        await listening(h.admin, 2)  # both up before the rows exist
        await fill(h.admin, waifus)
        await h.stub.wait_for(lambda: all(rested(h.stub, p.chat_id) for p in players), timeout=60)
        await settle(h.stub, 1.0)
    finally:
        errors = [await s.stop() for s in senders]
    assert {p.chat_id: h.stub.sent_per_chat[p.chat_id] for p in players} == {p.chat_id: 1 for p in players}
    workers = await h.admin.fetch("SELECT DISTINCT claimed_by FROM game.notifications")
    assert len(workers) == 2, (workers, errors)  # both took part
    assert await h.admin.fetchval("SELECT count(*) FROM game.notifications WHERE outcome = 'sent'") == 40


async def test_a_sender_killed_mid_batch_loses_nothing(harness: Harness, database,
                                                       start_notifier: StartNotifier) -> None:
    h = harness
    h.stub.limits = None
    h.stub.send_delay = 0.3  # a slow Telegram: the kill lands in the middle of the batch
    players = [h.stub.user(2300 + n, f"R{n}") for n in range(12)]
    waifus = [(await meet(h, p))[0] for p in players]
    h.stub.sent_per_chat.clear()
    sender = await SenderProcess.start(h.stub, database.bot_url, NOTIFY_LEASE_SECONDS="4", NOTIFY_RATE="10")
    await listening(h.admin, 1)
    await fill(h.admin, waifus)
    await h.stub.wait_for(lambda: sum(h.stub.sent_per_chat.values()) >= 3, timeout=30)
    await sender.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    delivered_before = sum(h.stub.sent_per_chat.values())
    in_flight = sum(1 for c in h.stub.calls_of("sendMessage") if c.status == 0)
    await asyncio.sleep(0.2)  # a commit the dead sender had already sent still lands
    marked = await h.admin.fetchval("SELECT count(*) FROM game.notifications WHERE outcome = 'sent'")
    assert await h.admin.fetchval("SELECT count(*) FROM game.notifications WHERE sent_at IS NULL") > 0

    # Another sender takes over once the dead one's lease is over.
    h.stub.send_delay = 0.0
    await start_notifier(lease_seconds=30)
    await h.stub.wait_for(lambda: all(rested(h.stub, p.chat_id) for p in players), timeout=30)
    waited = time.monotonic() - killed_at
    await settle(h.stub, 0.5)
    counts = [h.stub.sent_per_chat[p.chat_id] for p in players]
    assert all(c >= 1 for c in counts)
    # A duplicate needs a message Telegram took but the dead sender never marked: at most
    # the sends in flight at the kill (answered after it) and those answered before it but
    # not yet marked (more of them when the database is further away, as in a container).
    unmarked = delivered_before - marked
    assert sum(counts) - len(players) <= in_flight + unmarked, (counts, in_flight, delivered_before, marked)
    assert waited < 4 + 5  # the lease (4 s), then the next poll
    assert await h.admin.fetchval("SELECT count(*) FROM game.notifications WHERE sent_at IS NULL") == 0


async def test_the_bot_process_runs_the_sender(stub: TelegramStub, database, admin, tmp_path: Path) -> None:
    """`python -m bot` (webhook mode here) starts the sender beside the updates, and a
    fill after a restore tick reaches the player."""
    from tests.bot.test_process import WEBHOOK_URL, start_bot

    ivy = stub.user(2401, "Ivy")
    ivy.message("/start")  # the chat exists for the stand-in
    await admin.fetchval("SELECT api.register_player($1, 'ivy', 'Ivy', 'en')", ivy.id)
    waifu = await admin.fetchval("SELECT api.adopt_waifu($1, 'hana')", ivy.id)
    bot = await start_bot(stub, database, tmp_path, WEBHOOK_URL=WEBHOOK_URL)
    try:
        await fill(admin, [waifu])
        await stub.wait_for(lambda: rested(stub, ivy.chat_id), timeout=20)
        assert rested(stub, ivy.chat_id)[0]["text"].startswith("🌸 Hana is rested")
    finally:
        assert await bot.stop() == 0
    assert any(line.get("msg") == "notifier stopped" for line in bot.log_lines())
