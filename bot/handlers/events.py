"""Events: the open ones for a waifu (/events, the Events button), and taking part."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.game import Game
from bot.handlers.common import for_one_waifu, request_key
from bot.logs import UpdateLog
from bot.responder import Responder
from bot.texts import Html, Texts


async def _events_screen(game: Game, telegram_id: int, waifu_id: int,
                         texts: Texts) -> tuple[Html, InlineKeyboardMarkup]:
    stats, open_events = await asyncio.gather(game.waifu_stats(telegram_id, waifu_id),
                                              game.available_events(telegram_id, waifu_id))
    return (texts.events(stats, stats["name"], open_events),
            keyboards.events(texts, waifu_id, open_events, keyboards.new_nonce()))


async def events_command(message: Message, game: Game, texts: Texts, responder: Responder) -> None:
    async def screen(stats: dict[str, Any]) -> tuple[Html, InlineKeyboardMarkup]:
        return await _events_screen(game, stats["owner_id"], stats["waifu_id"], texts)

    await for_one_waifu(message, game, texts, responder, keyboards.Events, screen)


async def events_button(query: CallbackQuery, callback_data: keyboards.Events, game: Game, texts: Texts,
                        responder: Responder) -> None:
    await responder.show(*await _events_screen(game, query.from_user.id, callback_data.waifu_id, texts))
    if responder.unchanged:
        responder.toast = texts("refreshed_toast")


async def join_button(query: CallbackQuery, callback_data: keyboards.Join, game: Game, texts: Texts,
                      responder: Responder, update_log: UpdateLog) -> None:
    update_log.action = f"join:{callback_data.code}"
    key = request_key(query, "join", callback_data.waifu_id, callback_data.code, callback_data.nonce)
    result = await game.participate(query.from_user.id, callback_data.waifu_id, callback_data.code, key)
    if result.get("replayed"):
        responder.toast = texts("result_replayed_toast")
    else:
        responder.toast = texts("result_toast", xp=result["changes"]["xp"])
    # A replay (double tap, redelivered update) shows the recorded result again: if the
    # first reply was lost on the way, the player still gets to see it.
    await responder.show(texts.result(result), keyboards.after_result(texts, result, keyboards.new_nonce()))


def make_router() -> Router:
    router = Router(name="events")
    router.message.register(events_command, Command("events"))
    router.callback_query.register(events_button, keyboards.Events.filter())
    router.callback_query.register(join_button, keyboards.Join.filter())
    return router
