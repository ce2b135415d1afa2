"""The stat card (/profile, the Stats button, Refresh): a photo of her portrait with her
stats, effective at this moment, in the caption (bot/card_photos.py).

/profile and a Stats button under a text screen send the card as a new photo message (a
text message cannot become a photo); Refresh under the card edits its caption only. Its
other buttons (Events, Menu) work as everywhere: a text screen cannot replace a photo, so
the responder sends it as a new message.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot import card_photos, keyboards
from bot.game import Game
from bot.responder import Responder
from bot.texts import Texts

_NOT_MODIFIED = "message is not modified"
_CANNOT_EDIT = ("message to edit not found", "message can't be edited", "there is no caption in the message to edit")


async def show_card(bot: Bot, game: Game, texts: Texts, chat_id: int, telegram_id: int, waifu_id: int) -> None:
    stats = await game.stat_card(telegram_id, waifu_id, bot.id)
    texts.use(stats.get("language"))
    await card_photos.send_card(bot, game, texts, chat_id, stats, keyboards.card(texts, waifu_id))


async def profile_command(message: Message, bot: Bot, game: Game, texts: Texts, responder: Responder) -> None:
    """A hint without a waifu, her card with one, a picker with several."""
    if message.from_user is None:
        return
    profile = await game.player_profile(message.from_user.id)
    texts.use(profile.get("language"))
    waifus = profile["waifus"]
    if not waifus:
        await responder.send(texts("menu_no_waifu", name=message.from_user.first_name))
    elif len(waifus) == 1:
        await show_card(bot, game, texts, message.chat.id, message.from_user.id, waifus[0]["waifu_id"])
    else:
        await responder.send(texts("pick_waifu"), keyboards.waifu_picker(texts, waifus, keyboards.Card))


async def card_button(query: CallbackQuery, callback_data: keyboards.Card, bot: Bot, game: Game, texts: Texts,
                      responder: Responder) -> None:
    shown = query.message
    chat_id = shown.chat.id if shown is not None else query.from_user.id
    if not isinstance(shown, Message) or not shown.photo:
        await show_card(bot, game, texts, chat_id, query.from_user.id, callback_data.waifu_id)
        return
    # Refresh under the card: the same picture, the caption from the stats of now.
    stats = await game.stat_card(query.from_user.id, callback_data.waifu_id, bot.id)
    texts.use(stats.get("language"))
    try:
        await bot.edit_message_caption(chat_id=chat_id, message_id=shown.message_id, caption=texts.card(stats),
                                       reply_markup=keyboards.card(texts, callback_data.waifu_id))
    except TelegramBadRequest as exc:
        description = str(getattr(exc, "message", exc)).lower()
        if _NOT_MODIFIED in description:
            responder.toast = texts("refreshed_toast")
        elif any(marker in description for marker in _CANNOT_EDIT):
            await card_photos.send_card(bot, game, texts, chat_id, stats, keyboards.card(texts, callback_data.waifu_id))
        else:
            raise


def make_router() -> Router:
    router = Router(name="stats")
    router.message.register(profile_command, Command("profile"))
    router.callback_query.register(card_button, keyboards.Card.filter())
    return router
