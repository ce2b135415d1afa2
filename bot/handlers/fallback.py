"""Whatever no other handler took: stale or unknown buttons, and chatter in private chats."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.responder import Responder
from bot.texts import Texts


async def stale_button(query: CallbackQuery, texts: Texts, responder: Responder) -> None:
    await responder.answer(texts("stale_button"), alert=True)


async def unknown_text(message: Message, texts: Texts, responder: Responder) -> None:
    await responder.send(texts("unknown_text"))


def make_router() -> Router:
    router = Router(name="fallback")
    router.callback_query.register(stale_button)
    router.message.register(unknown_text, F.chat.type == "private")
    return router
