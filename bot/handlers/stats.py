"""The stat card (/profile, the Stats button, Refresh): effective values at this moment."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot import keyboards
from bot.game import Game
from bot.handlers.common import Responder
from bot.texts import Texts


async def profile_command(message: Message, game: Game, texts: Texts, responder: Responder) -> None:
    if message.from_user is None:
        return
    profile = await game.player_profile(message.from_user.id)
    waifus = profile["waifus"]
    if not waifus:
        await responder.send(texts("menu_no_waifu", name=message.from_user.first_name))
    elif len(waifus) == 1:
        await responder.send(texts.card(waifus[0]), keyboards.card(texts, waifus[0]["waifu_id"]))
    else:
        await responder.send(texts("pick_waifu"), keyboards.waifu_picker(texts, waifus, keyboards.Card))


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
