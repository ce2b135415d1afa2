"""/start: register the player; a newcomer picks a starter waifu, a returning one gets the menu."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, Message

from bot import keyboards
from bot.config import Settings
from bot.game import Game
from bot.handlers.common import display_name, request_key
from bot.logs import UpdateLog
from bot.responder import Responder
from bot.texts import Html, Texts


async def start(message: Message, game: Game, settings: Settings, texts: Texts, responder: Responder) -> None:
    user = message.from_user
    if user is None:  # a channel speaking in a group: nobody to register
        return
    profile = await game.register_player(user.id, user.username, user.first_name, user.language_code)
    texts.use(profile.get("language"))
    name = display_name(user)
    if profile["waifus"]:
        webapp = settings.webapp_url if responder.private else None
        player = await game.player_settings(user.id)  # the daily reward's button
        await responder.send(texts.menu(name, profile["waifus"]),
                             keyboards.main_menu(texts, profile["waifus"], webapp, player))
        return
    templates = await game.waifu_templates(texts.language)
    markup = keyboards.starters(texts, templates, keyboards.new_nonce()) if templates else None
    await responder.send(texts.welcome_new(name, templates), markup)


async def adopt(query: CallbackQuery, callback_data: keyboards.Adopt, game: Game, settings: Settings,
                texts: Texts, responder: Responder, update_log: UpdateLog) -> None:
    update_log.action = "adopt"
    # One key per drawn list (not per button): a double tap adopts once, and a second,
    # different pick from the same list is refused by the database (WF007).
    key = request_key(query, "adopt", callback_data.nonce)
    waifu_id = await game.adopt_waifu(query.from_user.id, callback_data.code, key)
    profile = await game.player_profile(query.from_user.id)
    texts.use(profile.get("language"))
    waifus = profile["waifus"]
    adopted = next((w for w in waifus if w["waifu_id"] == waifu_id), None)
    waifu_name = adopted["name"] if adopted else callback_data.code
    text = Html(texts("adopted", waifu=waifu_name) + "\n\n" + texts.menu(display_name(query.from_user), waifus))
    webapp = settings.webapp_url if responder.private else None
    responder.toast = texts("adopted_toast", waifu=waifu_name)
    player = await game.player_settings(query.from_user.id)  # the daily reward's button
    await responder.show(text, keyboards.main_menu(texts, waifus, webapp, player))


def make_router() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandStart())
    router.callback_query.register(adopt, keyboards.Adopt.filter())
    return router
