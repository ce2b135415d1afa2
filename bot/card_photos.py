"""The stat card as a photo: her portrait (bot/portraits.py, drawn by Pillow) with the
stats in the caption.

The picture carries nothing that changes (no name, no stats), so it is uploaded once per
(bot, template, language, rarity, design) and then sent by Telegram's file_id, which the
database keeps for every bot process (api.stat_card returns it with the stats,
api.remember_card_photo stores it). The caption is written from the stats of this moment
on every send and every Refresh: a cached image can never show stale numbers.

A file_id Telegram no longer accepts (400 "wrong file identifier": another bot's, or one it
dropped) is not an error for the player: the picture is uploaded again and the new file_id
replaces the old one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNotFound
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message

from bot import portraits
from bot.game import Game, GameError
from bot.texts import Texts, plain, visible_length

log = logging.getLogger("bot.card_photos")

CAPTION_LIMIT = 1024  # Telegram's, counted after entity parsing
# How Telegram words a file_id it will not send (stale, another bot's, malformed).
_STALE_FILE = ("wrong file identifier", "wrong remote file identifier", "file reference", "wrong padding")


def _stale_file(exc: TelegramBadRequest) -> bool:
    description = str(getattr(exc, "message", exc)).lower()
    return any(marker in description for marker in _STALE_FILE)


def rarity_label(texts: Texts, rarity: str) -> str:
    return plain(texts(f"rarity_{rarity}")) if rarity in portraits.GEMS else rarity


async def send_card(bot: Bot, game: Game, texts: Texts, chat_id: int, stats: dict[str, Any],
                    markup: InlineKeyboardMarkup | None) -> Message | None:
    """Send the card of `stats` (api.stat_card's answer) to `chat_id`: by the cached file_id
    when it is this picture's, else uploaded (and its file_id kept). None if the chat is
    gone or blocked the bot."""
    caption = texts.card(stats)
    code, rarity = str(stats["template_code"]), str(stats["rarity"])
    label = rarity_label(texts, rarity)
    design = portraits.card_design(code, rarity, label)
    try:
        if visible_length(caption) > CAPTION_LIMIT:  # never with today's texts; a long name must not lose the card
            return await bot.send_message(chat_id, caption, reply_markup=markup)
        cached = stats.get("photo")
        if cached and cached.get("design") == design:
            try:
                return await bot.send_photo(chat_id, cached["file_id"], caption=caption, reply_markup=markup)
            except TelegramBadRequest as exc:
                if not _stale_file(exc):
                    raise
                log.info("cached card photo refused (%s): uploading it again", exc)
        # Pillow takes tens of milliseconds: not on the event loop. Cached per process too.
        png = await asyncio.to_thread(portraits.card_picture, code, rarity, label)
        sent = await bot.send_photo(chat_id, BufferedInputFile(png, filename=f"{code}-{rarity}.png"),
                                    caption=caption, reply_markup=markup)
    except (TelegramForbiddenError, TelegramNotFound) as exc:
        log.warning("sendPhoto refused: %s", exc)
        return None
    if sent.photo:
        language = str(stats.get("language") or texts.language)
        try:
            await game.remember_card_photo(bot.id, code, language, rarity, design, sent.photo[-1].file_id)
        except GameError as exc:  # the card was shown; the next one is uploaded again
            log.warning("card photo not cached: %s", exc)
    return sent
