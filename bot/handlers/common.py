"""Helpers the handlers share (the `Responder` itself lives in bot/responder.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.game import Game
from bot.responder import Responder
from bot.texts import Texts


def request_key(query: CallbackQuery, kind: str, *parts: Any) -> str:
    """The database request key of a drawn button: its message and nonce scope it, so
    the same drawn button always gives the same key and two drawn buttons never share one."""
    message_id = query.message.message_id if query.message is not None else 0
    return ":".join(["tg", kind, str(message_id), *map(str, parts)])


async def for_one_waifu(message: Message, game: Game, texts: Texts, responder: Responder,
                        target: type[keyboards.Card] | type[keyboards.Events],
                        screen: Callable[[dict[str, Any]], Awaitable[tuple[str, InlineKeyboardMarkup]]]) -> None:
    """A command about "your waifu": a hint without one, its screen with one, a picker with several."""
    if message.from_user is None:
        return
    profile = await game.player_profile(message.from_user.id)
    texts.use(profile.get("language"))
    waifus = profile["waifus"]
    if not waifus:
        await responder.send(texts("menu_no_waifu", name=message.from_user.first_name))
    elif len(waifus) == 1:
        await responder.send(*await screen(waifus[0]))
    else:
        await responder.send(texts("pick_waifu"), keyboards.waifu_picker(texts, waifus, target))


def display_name(user: Any) -> str:
    if user is None:
        return ""
    return user.first_name or user.username or str(user.id)
