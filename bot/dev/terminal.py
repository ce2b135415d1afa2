"""Play in the terminal, without Telegram: `python -m bot.dev.terminal`.

The real dispatcher, handlers and database; Telegram is replaced by the local Bot API
stand-in the tests use (bot/dev/local_botapi.py). What you type becomes a Telegram update;
what the bot sends over HTTP to the stand-in is printed here, buttons numbered.

    /start, /menu, /profile, /events, /help, any text   sent as a message
    3                                                   press button 3 of the last message
    :rest                                               your waifus' energy fills now
    :tick                                               run the restore tick now (pg_cron's)
    :quit (or Ctrl-D)                                   leave

The notification sender (bot/notifier.py) runs here too: "she is rested" is printed when
pg_cron's restore tick (every minute) finds a waifu full. Energy takes 100 minutes from
empty to full; --fast-clock runs your waifus' energy time faster (60x: a minute a
second), `:rest` fills it at once, and the next tick (or `:tick`) sends the message
(bot/dev/clock.py says how, without a clock of Python's own).

DATABASE_URL (environment or .env) picks the database; without it the local one
(.localdb/dev) is started and migrated. BOT_TOKEN and TELEGRAM_API_URL are ignored.
--fast-clock, :rest and :tick need a superuser URL: the local database's, or --admin-url
(default $MIGRATION_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from typing import Any, TextIO

from bot.app import connect_game, create_bot, create_dispatcher
from bot.config import load_settings
from bot.dev.clock import DevClock
from bot.dev.local_botapi import Player, TelegramStub
from bot.notifier import Notifier


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text


def render_text(message: dict[str, Any], style: Style) -> str:
    """The message's text (a photo's caption) with bold/italic/code entities as terminal styles."""
    text: str = message.get("text", message.get("caption", ""))
    entities = message.get("entities") or message.get("caption_entities") or []
    if not style.enabled or not entities:
        return text
    codes = {"bold": "1", "italic": "3", "underline": "4", "strikethrough": "9", "code": "2", "pre": "2"}
    # Offsets are UTF-16 units: map them to string positions.
    units = []
    for i, ch in enumerate(text):
        units.extend([i] * (len(ch.encode("utf-16-le")) // 2))
    units.append(len(text))
    marks: dict[int, list[str]] = {}
    for e in entities:
        code = codes.get(e["type"])
        if code is None:
            continue
        start = units[min(e["offset"], len(units) - 1)]
        end = units[min(e["offset"] + e["length"], len(units) - 1)]
        marks.setdefault(start, []).append(f"\033[{code}m")
        marks.setdefault(end, []).append("\033[0m")
    out = []
    for i, ch in enumerate(text + " "):
        out.extend(marks.get(i, []))
        if i < len(text):
            out.append(ch)
    return "".join(out)


class TerminalChat:
    """One player chatting with the bot through the stand-in; `say` returns what to print."""

    def __init__(self, stub: TelegramStub, player: Player, feed: Any, style: Style) -> None:
        self.stub = stub
        self.player = player
        self.feed = feed
        self.style = style
        self.buttons: list[dict[str, Any]] = []
        self.message: dict[str, Any] | None = None
        self._next = len(stub.calls)  # the first call to the stand-in not shown yet

    async def say(self, line: str) -> str:
        line = line.strip()
        if not line:
            return ""
        if line.isdigit():
            return await self._press(int(line))
        return await self._deliver(self.player.message(line))

    async def _press(self, number: int) -> str:
        if not 1 <= number <= len(self.buttons) or self.message is None:
            return self.style("33", f"(no button {number} here)")
        button = self.buttons[number - 1]
        if "web_app" in button:
            return self.style("36", f"(in Telegram this opens the Mini App: {button['web_app']['url']})")
        if "url" in button:
            return self.style("36", f"(a link: {button['url']})")
        return await self._deliver(self.player.press(data=button["callback_data"], message=self.message))

    async def _deliver(self, update: dict[str, Any]) -> str:
        await self.feed(update)
        return self.flush()

    def flush(self) -> str:
        """What the bot sent since the last look: the answer to an update, or (between
        updates) what the notification sender sent on its own."""
        calls = list(self.stub.calls)[self._next:]
        self._next += len(calls)
        return "\n".join(shown for shown in map(self._show, calls) if shown)

    def _show(self, call: Any) -> str:
        method = call.method.lower()
        if call.status != 200:
            # The bot's business (it logs and handles these, e.g. "message is not modified"
            # on Refresh), never shown to a player.
            return ""
        if method in ("sendmessage", "editmessagetext", "sendphoto", "editmessagecaption"):
            message = call.response["result"]
            self.message = message
            self.buttons = Player.buttons(message)
            head = self.style("2", "(edited)") + "\n" if method.startswith("edit") else ""
            if "photo" in message and method == "sendphoto":  # a terminal cannot show it: say what it is
                size = message["photo"][-1]
                head += self.style("2", f"[photo {size['width']}x{size['height']}]") + "\n"
            lines = [head + render_text(message, self.style)]
            number = 0
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                labels = []
                for b in row:
                    number += 1
                    labels.append(f"[{number}] {b['text']}")
                lines.append(self.style("36", "   ".join(labels)))
            return "\n".join(lines) + "\n"
        if method == "answercallbackquery" and call.params.get("text"):
            kind = "⚠️ " if call.params.get("show_alert") else "💬 "
            return self.style("33", kind + call.params["text"])
        return ""


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None], stream: TextIO) -> None:
    # A daemon thread: a blocked read never keeps the process from exiting.
    def pump() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, daemon=True).start()


async def play(args: argparse.Namespace) -> None:
    # Telegram is the stand-in: its token and URL replace whatever .env says. Update ids
    # from the clock: the database admits an update id once (api.admit_update), and the
    # last session's ids must not make this one's look like redeliveries.
    stub = TelegramStub(first_update_id=time.time_ns() // 1_000_000)
    await stub.start()
    settings = load_settings(bot_token=stub.token, telegram_api_url=stub.url, webhook_url=None)
    interactive = sys.stdin.isatty()
    style = Style(sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    database_url = settings.database_url
    admin_url = args.admin_url
    if not database_url:
        from db import localdb
        from db.migrate import ensure_local_database

        print("starting the local database (.localdb/dev)...", file=sys.stderr)
        database_url = ensure_local_database()
        admin_url = admin_url or localdb.cluster("dev").url()

    game = await connect_game(database_url, settings, wait_seconds=10)
    bot = create_bot(settings)
    dp = create_dispatcher(game, settings)
    player = stub.user(args.user_id, args.name, username=args.username, language_code=args.language)
    chat = TerminalChat(stub, player, lambda update: dp.feed_raw_update(bot, update), style)
    # The sender, as the bot runs it: to the stand-in, woken by the tick's NOTIFY.
    notifier = await Notifier.connect(settings, database_url)
    notifier.start()
    clock = DevClock(admin_url, args.user_id) if admin_url else None
    prompt = style("32", "you> ")
    turn = asyncio.Lock()  # one of: the player's line, or printing what arrived meanwhile

    def show(text: str) -> None:
        print(text, flush=True)

    async def watch() -> None:
        while True:
            await asyncio.sleep(0.2)
            async with turn:
                arrived = chat.flush()
            if arrived:
                show(("\n" if interactive else "") + style("35", "🔔 (a message arrived)") + "\n" + arrived)
                if interactive:
                    print(prompt, end="", flush=True)

    async def run_clock(speed: float) -> None:
        assert clock is not None
        while True:
            await asyncio.sleep(1.0)
            await clock.advance(speed - 1)

    tasks = [asyncio.create_task(watch())]
    speed_note = ""
    if args.fast_clock and clock is not None:
        tasks.append(asyncio.create_task(run_clock(args.fast_clock)))
        speed_note = f" Energy time runs {args.fast_clock:g}x faster."
    elif args.fast_clock:
        show(style("33", "--fast-clock needs a superuser URL (--admin-url or MIGRATION_DATABASE_URL): "
                         "time runs as usual."))
    show(style("1", f"Chatting as {args.name} (Telegram id {args.user_id}). "
                    f"Type /start; a number presses a button; :rest fills energy; :quit leaves.{speed_note}"))
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    _stdin_lines(asyncio.get_running_loop(), queue, sys.stdin)
    try:
        while True:
            if interactive:
                print(prompt, end="", flush=True)
            line = await queue.get()
            if line is None or line.strip() in (":quit", ":q"):
                break
            if not interactive:
                show(prompt + line.rstrip())
            async with turn:
                output = await operator_command(line.strip(), clock, style) or await chat.say(line)
            if output:
                show(output)
        if not interactive:
            await asyncio.sleep(args.linger)  # piped input: what the sender still sends
            async with turn:
                if arrived := chat.flush():
                    show(style("35", "🔔 (a message arrived)") + "\n" + arrived)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await notifier.stop(grace=1.0)
        await notifier.close()
        if clock is not None:
            await clock.close()
        await bot.session.close()
        await game.close()
        await stub.stop()


async def operator_command(line: str, clock: DevClock | None, style: Style) -> str | None:
    """`:rest` and `:tick` (None: not an operator command, the line goes to the bot)."""
    if line not in (":rest", ":tick"):
        return None
    if clock is None:
        return style("33", f"({line} needs a superuser URL: --admin-url or MIGRATION_DATABASE_URL)")
    if line == ":rest":
        rested = await clock.rest()
        return style("36", f"({rested} waifu(s) now full: pg_cron's next tick, within a minute, sends "
                           "\"she is rested\"; :tick runs it now)")
    await clock.tick()
    return style("36", "(the restore tick ran)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.dev.terminal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user-id", type=int, default=1, help="your Telegram user id in the game (default 1)")
    parser.add_argument("--name", default="Player", help="your first name")
    parser.add_argument("--username", default=None)
    parser.add_argument("--language", default="en", help="your Telegram language code")
    parser.add_argument("--fast-clock", nargs="?", type=float, const=60.0, default=None, metavar="SPEED",
                        help="your waifus' energy time runs SPEED times faster (default 60: a minute a second)")
    parser.add_argument("--admin-url", default=os.environ.get("MIGRATION_DATABASE_URL"),
                        help="superuser URL for --fast-clock, :rest and :tick (default: $MIGRATION_DATABASE_URL; "
                             "the local database's when playing on it)")
    parser.add_argument("--linger", type=float, default=2.0, metavar="SECONDS",
                        help="with piped input: how long to wait for messages after the last line (default 2)")
    args = parser.parse_args(argv)
    if args.fast_clock is not None and not 1 <= args.fast_clock <= 3600:
        parser.error("--fast-clock: a speed from 1 to 3600")
    try:
        asyncio.run(play(args))
    except KeyboardInterrupt:
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
