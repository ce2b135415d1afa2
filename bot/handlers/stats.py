"""The stat card (/profile, the Stats button, Refresh): effective values at this moment."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.game import Game
from bot.handlers.common import for_one_waifu
from bot.responder import Responder
from bot.texts import Texts


async def profile_command(message: Message, game: Game, texts: Texts, responder: Responder) -> None:
    async def card(stats: dict[str, Any]) -> tuple[str, InlineKeyboardMarkup]:
        return texts.card(stats), keyboards.card(texts, stats["waifu_id"])

    await for_one_waifu(message, game, texts, responder, keyboards.Card, card)


async def card_button(query: CallbackQuery, callback_data: keyboards.Card, game: Game, texts: Texts,
                      responder: Responder) -> None:
    stats = await game.waifu_stats(query.from_user.id, callback_data.waifu_id)
    await responder.show(texts.card(stats), keyboards.card(texts, callback_data.waifu_id))
    if responder.unchanged:
        responder.toast = texts("refreshed_toast")


def make_router() -> Router:
    router = Router(name="stats")
    router.message.register(profile_command, Command("profile"))
    router.callback_query.register(card_button, keyboards.Card.filter())
    return router
