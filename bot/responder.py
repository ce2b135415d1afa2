"""How the bot talks back to an update: one `Responder` per update, made by the
middleware (bot/middlewares.py) and used by the handlers and the error handlers.

It answers a callback query exactly once (the middleware answers on success if the
handler did not, the error handlers answer refusals; in webhook mode the answer rides in
the webhook's HTTP response when it can: bot/webhook.py), shows a screen by editing the
button's message (or sending a new one when that message cannot be edited), and
treats Telegram's "message is not modified" as success: the screen is already right.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNotFound
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, Update

from bot.texts import Texts

if TYPE_CHECKING:
    from bot.webhook import WebhookReply

log = logging.getLogger("bot.responder")

# Telegram signals these only in the description; there is no separate error code.
_NOT_MODIFIED = "message is not modified"
_CANNOT_EDIT = ("message to edit not found", "message can't be edited", "message is too old",
                "there is no text in the message to edit", "message_id_invalid")


def _description(exc: Exception) -> str:
    return str(getattr(exc, "message", exc)).lower()


class Responder:
    def __init__(self, bot: Bot, update: Update, texts: Texts, reply: WebhookReply | None = None) -> None:
        self.bot = bot
        self.reply = reply
        self.texts = texts
        self.callback: CallbackQuery | None = update.callback_query
        self.message: Message | None = update.message
        self.answered = False
        # What the automatic answer says (a short toast); handlers may set it.
        self.toast: str | None = None
        # True when a screen was already showing exactly this ("message is not modified").
        self.unchanged = False

    @property
    def chat_id(self) -> int | None:
        if self.message is not None:
            return self.message.chat.id
        if self.callback is not None:
            if self.callback.message is not None:
                return self.callback.message.chat.id
            return self.callback.from_user.id
        return None

    @property
    def private(self) -> bool:
        if self.message is not None:
            return self.message.chat.type == "private"
        if self.callback is not None and self.callback.message is not None:
            return self.callback.message.chat.type == "private"
        return self.callback is not None

    async def answer(self, text: str | None = None, *, alert: bool = False) -> None:
        """Answer the callback query, once; later calls do nothing. Never raises for
        Telegram refusing it (query too old, already answered): the action stands."""
        if self.callback is None or self.answered:
            return
        self.answered = True
        text = text if text is not None else self.toast
        method = AnswerCallbackQuery(callback_query_id=self.callback.id,
                                     text=self.texts.alert(text) if text else None, show_alert=alert or None)
        if self.reply is not None and self.reply.offer(method):
            return  # Telegram carries it out from the webhook's response
        try:
            await self.bot(method)
        except TelegramBadRequest as exc:
            log.warning("answerCallbackQuery refused: %s", exc)

    async def send(self, text: str, markup: InlineKeyboardMarkup | None = None) -> Message | None:
        chat_id = self.chat_id
        if chat_id is None:
            return None
        try:
            return await self.bot.send_message(chat_id, text, reply_markup=markup)
        except (TelegramForbiddenError, TelegramNotFound) as exc:
            # The player blocked the bot or the chat is gone: nothing to show it to.
            log.warning("sendMessage refused: %s", exc)
            return None

    async def show(self, text: str, markup: InlineKeyboardMarkup | None = None) -> Any:
        """A screen: edits the pressed button's message, or sends a new message. When the
        handler already chose its toast, the button is answered at the same time (one
        round trip to Telegram instead of two before the player's spinner stops)."""
        if self.callback is not None and not self.answered and self.toast is not None:
            shown, _ = await asyncio.gather(self._show(text, markup), self.answer())
            return shown
        return await self._show(text, markup)

    async def _show(self, text: str, markup: InlineKeyboardMarkup | None) -> Any:
        target = self.callback.message if self.callback is not None else None
        if target is None or not isinstance(target, Message):
            return await self.send(text, markup)
        try:
            return await self.bot.edit_message_text(text=text, chat_id=target.chat.id,
                                                    message_id=target.message_id, reply_markup=markup)
        except TelegramBadRequest as exc:
            description = _description(exc)
            if _NOT_MODIFIED in description:
                self.unchanged = True
                return None
            if any(marker in description for marker in _CANNOT_EDIT):
                return await self.send(text, markup)
            raise

    async def refuse(self, text: str) -> None:
        """A refusal: an alert on the button, or a reply to the command."""
        if self.callback is not None:
            await self.answer(text, alert=True)
        else:
            await self.send(text)
