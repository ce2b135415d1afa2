"""Play in the terminal, without Telegram: `python -m bot.dev.terminal`.

The real dispatcher, handlers and database; Telegram is replaced by the local Bot API
stand-in the tests use (bot/dev/local_botapi.py). What you type becomes a Telegram update;
what the bot sends over HTTP to the stand-in is printed here, buttons numbered.

    /start, /menu, /profile, /events, /help, any text   sent as a message
    3                                                   press button 3 of the last message
    :quit (or Ctrl-D)                                   leave

DATABASE_URL (environment or .env) picks the database; without it the local one
(.localdb/dev) is started and migrated. BOT_TOKEN and TELEGRAM_API_URL are ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from typing import Any, TextIO

from bot.app import connect_game, create_bot, create_dispatcher
from bot.config import load_settings
from bot.dev.local_botapi import Player, TelegramStub


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text


def render_text(message: dict[str, Any], style: Style) -> str:
    """The message's text with bold/italic/code entities as terminal styles."""
    text: str = message.get("text", "")
    entities = message.get("entities") or []
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
        first = len(self.stub.calls)
        await self.feed(update)
        return "\n".join(self._show(call) for call in list(self.stub.calls)[first:] if self._show(call))

    def _show(self, call: Any) -> str:
        method = call.method.lower()
        if call.status != 200:
            # The bot's business (it logs and handles these, e.g. "message is not modified"
            # on Refresh), never shown to a player.
            return ""
        if method in ("sendmessage", "editmessagetext"):
            message = call.response["result"]
            self.message = message
            self.buttons = Player.buttons(message)
            head = self.style("2", "(edited)") + "\n" if method == "editmessagetext" else ""
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
    # Telegram is the stand-in: its token and URL replace whatever .env says.
    stub = TelegramStub()
    await stub.start()
    settings = load_settings(bot_token=stub.token, telegram_api_url=stub.url, webhook_url=None)
    interactive = sys.stdin.isatty()
    style = Style(sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    database_url = settings.database_url
    if not database_url:
        from db.migrate import ensure_local_database

        print("starting the local database (.localdb/dev)...", file=sys.stderr)
        database_url = ensure_local_database()

    game = await connect_game(database_url, settings, wait_seconds=10)
    bot = create_bot(settings)
    dp = create_dispatcher(game, settings)
    player = stub.user(args.user_id, args.name, username=args.username, language_code=args.language)
    chat = TerminalChat(stub, player, lambda update: dp.feed_raw_update(bot, update), style)

    print(style("1", f"Chatting as {args.name} (Telegram id {args.user_id}). "
                     "Type /start; a number presses a button; :quit leaves."))
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    _stdin_lines(asyncio.get_running_loop(), queue, sys.stdin)
    try:
        while True:
            if interactive:
                print(style("32", "you> "), end="", flush=True)
            line = await queue.get()
            if line is None or line.strip() in (":quit", ":q"):
                break
            if not interactive:
                print(style("32", "you> ") + line.rstrip())
            output = await chat.say(line)
            if output:
                print(output, flush=True)
    finally:
        await bot.session.close()
        await game.close()
        await stub.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.dev.terminal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user-id", type=int, default=1, help="your Telegram user id in the game (default 1)")
    parser.add_argument("--name", default="Player", help="your first name")
    parser.add_argument("--username", default=None)
    parser.add_argument("--language", default="en", help="your Telegram language code")
    args = parser.parse_args(argv)
    try:
        asyncio.run(play(args))
    except KeyboardInterrupt:
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
