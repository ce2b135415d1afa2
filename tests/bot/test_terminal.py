"""The terminal chat (bot/dev/terminal.py) shows the player what Telegram would, and never
the Bot API's refusals (the bot handles those itself)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg2

from bot.dev.clock import DevClock
from bot.dev.terminal import Style, TerminalChat
from bot.notifier import Notifier, notifier_bot
from tests.bot.conftest import Harness


async def test_refresh_of_an_unchanged_card_shows_a_toast_not_a_refusal(harness: Harness) -> None:
    h = harness
    cleo = h.stub.user(2103, "Cleo")
    chat = TerminalChat(h.stub, cleo, h.send, Style(False))
    assert "Welcome, Cleo!" in await chat.say("/start")
    number = next(n for n, b in enumerate(chat.buttons, 1) if b["text"].endswith("Sakura"))
    await chat.say(str(number))
    card = await chat.say("/profile")
    assert "[photo 400x544]" in card and "Sakura · level 1" in card
    refresh = next(n for n, b in enumerate(chat.buttons, 1) if "Refresh" in b["text"])
    # The card is full and unchanged: Telegram refuses the edit ("message is not modified").
    shown = await chat.say(str(refresh))
    refused = [c for c in h.stub.calls if c.method.lower() == "editmessagecaption" and c.status == 400]
    assert refused, "the stand-in should have refused the identical edit"
    assert "Bot API" not in shown and "refused" not in shown
    assert shown.strip() == "💬 Up to date"


async def test_she_is_rested_arrives_in_the_terminal(harness: Harness, database) -> None:
    """The sender runs beside the chat; the dev clock makes energy time pass (as a
    superuser, as the tests do), and pg_cron's tick - run here as pg_cron runs it -
    fills her and queues the message, which the terminal prints when it arrives."""
    h = harness
    dana = h.stub.user(2104, "Dana")
    chat = TerminalChat(h.stub, dana, h.send, Style(False))
    await chat.say("/start")
    await chat.say(str(next(n for n, b in enumerate(chat.buttons, 1) if b["text"].endswith("Sakura"))))
    wid = await h.admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = 2104")
    await h.admin.execute("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 40, "
                          "'last_restore', extract(epoch FROM now())) WHERE id = $1", wid)
    notifier = Notifier(h.game, notifier_bot(h.settings), poll_seconds=0.2, lease_seconds=30)
    notifier.start()
    clock = DevClock(database.admin_url, 2104)
    try:
        assert await clock.advance(600) == 0  # ten minutes of energy time: +10, not full yet
        energy = (await h.game.player_profile(2104))["waifus"][0]["energy"]
        assert energy == 50
        assert await clock.rest() == 1
        assert (await h.game.player_profile(2104))["waifus"][0]["energy"] == 100  # as of now, before any tick
        full_at = await h.admin.fetchval("SELECT full_at - extract(epoch FROM now()) FROM game.waifus WHERE id = $1",
                                         wid)
        assert -5 < full_at <= 0  # moved to the moment she is full, not past it: the tick's cursor sees her
        await asyncio.sleep(0.5)
        assert chat.flush() == ""  # the clock notifies nobody: the tick does
        await clock.tick()
        arrived = ""
        for _ in range(50):
            await asyncio.sleep(0.2)
            arrived += chat.flush()
            if arrived:
                break
        assert "🌸 Sakura is rested: ⚡ 100. She is waiting for you!" in arrived
        assert "[1] " in arrived  # its buttons are numbered, pressable like any message's
        assert await clock.rest() == 0  # full: nothing left to move
    finally:
        await clock.close()
        await notifier.stop()
        await notifier.bot.session.close()


def test_make_play_prints_she_is_rested(database, tmp_path: Path) -> None:
    """`make play` as a player runs it, input piped: `:rest` and `:tick` bring the message."""
    with psycopg2.connect(database.admin_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT api.register_player(2105, NULL, 'Eve', 'en')")
        cur.execute("SELECT api.adopt_waifu(2105, 'sakura')")
        cur.execute("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 10, "
                    "'last_restore', extract(epoch FROM now())) WHERE owner_id = 2105")
    conn.close()
    env = {**os.environ, "DATABASE_URL": database.bot_url, "NOTIFY_POLL_SECONDS": "1", "NO_COLOR": "1"}
    env.pop("MIGRATION_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot.dev.terminal", "--user-id", "2105", "--name", "Eve", "--admin-url",
         database.admin_url, "--linger", "5"],
        input="/profile\n:rest\n:tick\n", capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
        check=False)
    assert result.returncode == 0, result.stderr
    assert "⚡ Energy ▰▱▱▱▱▱▱▱▱▱ 10/100" in result.stdout, result.stdout
    assert "1 waifu(s) now full" in result.stdout
    assert "🔔 (a message arrived)\n🌸 Sakura is rested: ⚡ 100. She is waiting for you!" in result.stdout
    # A second session on the same database is answered (its update ids are new ones);
    # without a superuser URL the operator commands say what they need, and change nothing.
    result = subprocess.run([sys.executable, "-m", "bot.dev.terminal", "--user-id", "2105", "--linger", "0"],
                            input="/profile\n:rest\n", capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env=env, check=False)
    assert "Sakura · level 1" in result.stdout, result.stdout
    assert "(:rest needs a superuser URL: --admin-url or MIGRATION_DATABASE_URL)" in result.stdout, result
