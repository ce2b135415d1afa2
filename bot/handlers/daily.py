"""The daily reward: /daily and the menu's button.

The database decides everything (the player's day, the streak, the reward, a second claim
refused with WF008 and when the next one is ready); a refusal reaches the errors router,
which words it from its detail. A command's request key is its message (a redelivered
update claims once); a button's is its drawn nonce (a double tap claims once).
"""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.game import Game, WaifuNotFound
from bot.handlers.common import request_key
from bot.logs import UpdateLog
from bot.responder import Responder
from bot.texts import Html, Texts


def daily_screen(texts: Texts, result: dict[str, Any]) -> tuple[Html, InlineKeyboardMarkup]:
    reward = result["reward"]
    lines: list[str] = [
        texts("daily_title", streak=result["streak"]),
        texts("daily_reward", energy=reward["energy"], xp=reward["xp"], mood=reward["mood"],
              loyalty=reward["loyalty"]),
        "",
    ]
    lines += [texts("daily_line", name=w["name"], energy=w["energy"], max_energy=w["max_energy"], level=w["level"])
              for w in result["waifus"]]
    lines += ["", texts("daily_next", wait=texts.until(result["next_at"], result["claimed_at"]))]
    return texts.lines(lines), keyboards.after_daily(texts)


async def _claim(game: Game, telegram_id: int, key: str, texts: Texts,
                 responder: Responder) -> dict[str, Any] | None:
    try:
        return await game.claim_daily(telegram_id, key)
    except WaifuNotFound:
        # WF004 here means: no waifu at all (not "not yours").
        await responder.refuse(texts("daily_no_waifu"))
        return None


async def daily_command(message: Message, game: Game, texts: Texts, responder: Responder,
                        update_log: UpdateLog) -> None:
    if message.from_user is None:
        return
    update_log.action = "daily"
    key = f"tg:daily:{message.chat.id}:{message.message_id}"
    result = await _claim(game, message.from_user.id, key, texts, responder)
    if result is not None:
        await responder.send(*daily_screen(texts, result))


async def daily_button(query: CallbackQuery, callback_data: keyboards.Daily, game: Game, texts: Texts,
                       responder: Responder, update_log: UpdateLog) -> None:
    update_log.action = "daily"
    key = request_key(query, "daily", callback_data.nonce)
    result = await _claim(game, query.from_user.id, key, texts, responder)
    if result is None:
        return
    reward = result["reward"]
    responder.toast = (texts("daily_replayed_toast") if result.get("replayed")
                       else texts("daily_toast", energy=reward["energy"], xp=reward["xp"]))
    await responder.show(*daily_screen(texts, result))


def make_router() -> Router:
    router = Router(name="daily")
    router.message.register(daily_command, Command("daily"))
    router.callback_query.register(daily_button, keyboards.Daily.filter())
    return router
