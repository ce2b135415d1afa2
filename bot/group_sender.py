"""Messages to group chats (game.group_messages, written by the group-events job): a group
event opening with its join button, and its result.

`send_group_messages` is one pass: claim (api.claim_group_messages takes one token of the
group's shared limit group_send per message, so no group gets more than Telegram's 20 a
minute whatever the number of processes), send, mark sent / retry / failed. `run` repeats
it until stopped. Each message is written in its group's language (api.group_languages,
asked once per batch; /group_language sets it), else in the bot's default.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNotFound, TelegramRetryAfter

from bot import keyboards_game
from bot.game import Game, GameError
from bot.texts import DEFAULT_LANGUAGE, Html, Texts

log = logging.getLogger("bot.group_sender")
LEASE_SECONDS = 30


def render(texts: Texts, message: dict[str, Any]) -> tuple[Html, Any]:
    payload = message["payload"]
    if message["kind"] == "group_event_open":
        wait = texts.until(payload.get("closes_at"), message.get("created_at"))
        return (texts("group_event_open", wait=wait, pool=payload.get("pool", 0)),
                keyboards_game.group_event(texts, int(payload["event_id"])))
    winners = payload.get("winners") or []
    if not winners:
        return texts("group_event_nobody"), None
    lines: list[str] = [texts("group_event_result", count=len(winners))]
    lines += [texts("group_event_result_line", name=w.get("name") or "?", coins=w.get("coins") or 0)
              for w in winners]
    return texts.lines(lines), None


async def send_group_messages(bot: Bot, game: Game, worker: str, batch_size: int = 20) -> int:
    """One pass; returns how many messages went out."""
    claimed = await game.claim_group_messages(worker, batch_size, LEASE_SECONDS)
    if not claimed:
        return 0
    languages = await game.group_languages(sorted({int(m["chat_id"]) for m in claimed}))
    sent = 0
    for message in claimed:
        text, markup = render(Texts(languages.get(int(message["chat_id"])) or DEFAULT_LANGUAGE), message)
        try:
            await bot.send_message(message["chat_id"], text, reply_markup=markup)
        except TelegramRetryAfter as exc:
            await game.finish_group_messages(worker, [message["id"]], "retry", min(3600, int(exc.retry_after)))
            continue
        except (TelegramForbiddenError, TelegramNotFound, TelegramBadRequest) as exc:
            log.warning("group message %s refused: %s", message["id"], exc)
            await game.finish_group_messages(worker, [message["id"]], "failed")
            continue
        await game.finish_group_messages(worker, [message["id"]], "sent")
        sent += 1
    return sent


async def run(bot: Bot, game: Game, stop: asyncio.Event, poll_seconds: float = 2.0) -> None:
    """Send group messages until `stop` is set (a claim every `poll_seconds` when idle)."""
    worker = f"group-{os.getpid()}"
    while not stop.is_set():
        try:
            sent = await send_group_messages(bot, game, worker)
        except GameError as exc:
            log.warning("group messages: %s", exc)
            sent = 0
        if sent == 0:
            try:
                await asyncio.wait_for(stop.wait(), poll_seconds)
            except TimeoutError:
                pass
