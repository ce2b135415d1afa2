"""The main menu (/menu) and help (/help)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User

from bot import keyboards
from bot.config import Settings
from bot.game import Game
from bot.handlers.common import display_name
from bot.responder import Responder
from bot.texts import Texts


async def _menu_screen(user: User, game: Game, settings: Settings, texts: Texts,
                       responder: Responder) -> tuple[str, InlineKeyboardMarkup]:
    # Both at once: the daily reward's button shows when it is ready (player_settings).
    answers: list[Any] = await asyncio.gather(game.player_profile(user.id), game.player_settings(user.id),
                                              return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    profile, player = answers
    texts.use(profile.get("language"))
    webapp = settings.webapp_url if responder.private else None
    return (texts.menu(display_name(user), profile["waifus"]),
            keyboards.main_menu(texts, profile["waifus"], webapp, player))


async def menu_command(message: Message, game: Game, settings: Settings, texts: Texts, responder: Responder) -> None:
    if message.from_user is None:
        return
    await responder.send(*await _menu_screen(message.from_user, game, settings, texts, responder))


async def menu_button(query: CallbackQuery, game: Game, settings: Settings, texts: Texts,
                      responder: Responder) -> None:
    await responder.show(*await _menu_screen(query.from_user, game, settings, texts, responder))


async def help_command(message: Message, texts: Texts, responder: Responder) -> None:
    await responder.send(texts.help(), keyboards.help_menu(texts))


async def help_button(query: CallbackQuery, texts: Texts, responder: Responder) -> None:
    await responder.show(texts.help(), keyboards.help_menu(texts))


def make_router() -> Router:
    router = Router(name="menu")
    router.message.register(menu_command, Command("menu"))
    router.message.register(help_command, Command("help"))
    router.callback_query.register(menu_button, keyboards.Nav.filter(F.to == "menu"))
    router.callback_query.register(help_button, keyboards.Nav.filter(F.to == "help"))
    return router
