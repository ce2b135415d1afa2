"""The translation catalogues (aiogram's I18n over bot/locales) and the middleware that
gives an update aiogram's i18n context in its player's language.

bot/texts.py translates by the language its `Texts` object speaks (explicitly, so the
notifier can speak to many players from one task); PlayerLocale sets the same language
as aiogram's current locale for the update, so `aiogram.utils.i18n.gettext` and lazy
texts agree with `texts`. The catalogues are compiled (.mo, committed beside their .po:
`make compile-messages`), so an installed bot needs no build step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"

I18N = I18n(path=LOCALES, default_locale="en", domain=DOMAIN)


class PlayerLocale(I18nMiddleware):
    """The update's locale: the language UpdateContext chose for its `texts` (the
    database's answer for a registered player, else Telegram's language_code). Register it
    after UpdateContext; `Texts.use` moves the locale when a handler learns better."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        texts = data.get("texts")
        language = getattr(texts, "language", None)
        return language if isinstance(language, str) else self.i18n.default_locale
