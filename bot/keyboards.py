"""Inline keyboards: one CallbackData factory per kind of button.

Keyboards are built as rows of buttons directly: aiogram's InlineKeyboardBuilder
deep-copies its buttons on export, which cost ~8% of the bot's CPU under load.

Buttons that change something (adopt, take part) carry a nonce drawn each time the
keyboard is drawn: the request key sent to the database is made from it, so two taps on
the same drawn button act once and a freshly drawn button acts again. Field constraints
make garbage or forged callback data simply not match (it then gets the "stale button"
answer) instead of reaching the database.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from pydantic import Field

from bot.texts import BUTTON_LABEL_LIMIT, Texts, plain, shorten

BIGINT_MAX = 2**63 - 1
NONCE_PATTERN = r"^[A-Za-z0-9_-]{4,16}$"
CODE_PATTERN = r"^[a-z0-9_]{1,32}$"
# Telegram's cap on buttons in one inline keyboard is 100; keep well below it.
MAX_EVENT_BUTTONS = 20


def new_nonce() -> str:
    """48 random bits, 8 URL-safe characters: one per drawn keyboard."""
    return secrets.token_urlsafe(6)


class Nav(CallbackData, prefix="n"):
    to: Literal["menu", "help", "settings"]


class Card(CallbackData, prefix="c"):
    waifu_id: int = Field(ge=1, le=BIGINT_MAX)


class Events(CallbackData, prefix="e"):
    waifu_id: int = Field(ge=1, le=BIGINT_MAX)


class Join(CallbackData, prefix="j"):
    waifu_id: int = Field(ge=1, le=BIGINT_MAX)
    code: str = Field(pattern=CODE_PATTERN)
    nonce: str = Field(pattern=NONCE_PATTERN)


class Adopt(CallbackData, prefix="a"):
    code: str = Field(pattern=CODE_PATTERN)
    nonce: str = Field(pattern=NONCE_PATTERN)


class Daily(CallbackData, prefix="d"):
    """Claim the daily reward; the nonce scopes the request key to this drawn button."""

    nonce: str = Field(pattern=NONCE_PATTERN)


class Notify(CallbackData, prefix="nt"):
    """Notifications on/off; `src` "n" from a notification (a toast), "s" from /settings (the screen)."""

    on: bool
    src: Literal["n", "s"] = "s"


class Language(CallbackData, prefix="lg"):
    value: Literal["auto", "en", "ru"]


def _label(text: str) -> str:
    return shorten(plain(text), BUTTON_LABEL_LIMIT)


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=_label(text), callback_data=data.pack())


def _markup(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])


def starters(t: Texts, templates: list[dict[str, Any]], nonce: str) -> InlineKeyboardMarkup:
    """Two starters a row; one nonce for the whole list (one pick per list)."""
    buttons = [_button(t("starter_button", name=template["name"]), Adopt(code=template["code"], nonce=nonce))
               for template in templates[:MAX_EVENT_BUTTONS]]
    return _markup(*(buttons[i:i + 2] for i in range(0, len(buttons), 2)))


def main_menu(t: Texts, waifus: list[dict[str, Any]], webapp_url: str | None,
              settings: dict[str, Any] | None = None) -> InlineKeyboardMarkup:
    """One row per waifu (stats, events); the daily reward and settings (given the
    settings); the web app when configured (private chats); help."""
    several = len(waifus) > 1
    rows = [[_button(t("btn_card_of", name=w["name"]) if several else t("btn_card"), Card(waifu_id=w["waifu_id"])),
             _button(t("btn_events"), Events(waifu_id=w["waifu_id"]))]
            for w in waifus[:MAX_EVENT_BUTTONS]]
    if settings is not None:
        daily = [daily_button(t, settings["daily"], new_nonce(), settings.get("as_of"))] if waifus else []
        rows.append([*daily, _button(t("btn_settings"), Nav(to="settings"))])
    last = []
    if webapp_url:
        last.append(InlineKeyboardButton(text=_label(t("btn_webapp")), web_app=WebAppInfo(url=webapp_url)))
    last.append(_button(t("btn_help"), Nav(to="help")))
    return _markup(*rows, last)


def waifu_picker(t: Texts, waifus: list[dict[str, Any]], target: type[Card] | type[Events]) -> InlineKeyboardMarkup:
    rows = [[_button(w["name"], target(waifu_id=w["waifu_id"]))] for w in waifus[:MAX_EVENT_BUTTONS]]
    return _markup(*rows, [_button(t("btn_menu"), Nav(to="menu"))])


def card(t: Texts, waifu_id: int) -> InlineKeyboardMarkup:
    return _markup([_button(t("btn_refresh"), Card(waifu_id=waifu_id)),
                    _button(t("btn_events"), Events(waifu_id=waifu_id))],
                   [_button(t("btn_menu"), Nav(to="menu"))])


def events(t: Texts, waifu_id: int, open_events: list[dict[str, Any]], nonce: str) -> InlineKeyboardMarkup:
    """A button per open event, all with this drawing's nonce."""
    rows = [[InlineKeyboardButton(text=t.event_button(e),
                                  callback_data=Join(waifu_id=waifu_id, code=e["code"], nonce=nonce).pack())]
            for e in open_events[:MAX_EVENT_BUTTONS]]
    return _markup(*rows,
                   [_button(t("btn_refresh"), Events(waifu_id=waifu_id)),
                    _button(t("btn_card"), Card(waifu_id=waifu_id))],
                   [_button(t("btn_menu"), Nav(to="menu"))])


def after_result(t: Texts, result: dict[str, Any], nonce: str) -> InlineKeyboardMarkup:
    """Again (a freshly drawn button), the events list, the menu."""
    waifu_id = result["waifu_id"]
    return _markup([_button(t("btn_again", title=result["event_title"]),
                            Join(waifu_id=waifu_id, code=result["event_code"], nonce=nonce))],
                   [_button(t("btn_events"), Events(waifu_id=waifu_id)), _button(t("btn_menu"), Nav(to="menu"))])


def help_menu(t: Texts) -> InlineKeyboardMarkup:
    return _markup([_button(t("btn_menu"), Nav(to="menu"))])


# -- settings, daily reward, notifications (H5) ----------------------------------------------


def daily_button(t: Texts, daily: dict[str, Any], nonce: str, now: str | None = None) -> InlineKeyboardButton:
    """The daily reward, or when it is ready again (a tap then explains)."""
    if daily.get("available"):
        return _button(t("btn_daily_ready"), Daily(nonce=nonce))
    return _button(t("btn_daily_wait", wait=t.until(daily.get("available_at"), now)), Daily(nonce=nonce))


def rested(t: Texts, waifus: list[dict[str, Any]]) -> InlineKeyboardMarkup:
    """A notification's buttons: events and stats of each rested waifu, and one to stop these messages."""
    several = len(waifus) > 1
    rows = [[_button(t("btn_events_of", name=w["name"]) if several else t("btn_events"),
                     Events(waifu_id=w["waifu_id"])),
             _button(t("btn_card_of", name=w["name"]) if several else t("btn_card"), Card(waifu_id=w["waifu_id"]))]
            for w in waifus]
    return _markup(*rows, [_button(t("btn_notify_off"), Notify(on=False, src="n"))])


def settings(t: Texts, s: dict[str, Any], nonce: str) -> InlineKeyboardMarkup:
    """Notifications toggle, language choice, the daily reward, back to the menu."""
    toggle = (_button(t("btn_notify_off_settings"), Notify(on=False)) if s["notifications"]
              else _button(t("btn_notify_on"), Notify(on=True)))
    languages = [_button(t("lang_selected", language=t(f"lang_{code}")) if s["language"] == code else t(f"lang_{code}"),
                         Language(value=code)) for code in ("auto", "en", "ru")]
    return _markup([toggle], languages, [daily_button(t, s["daily"], nonce, s.get("as_of"))],
                   [_button(t("btn_menu"), Nav(to="menu"))])


def after_daily(t: Texts) -> InlineKeyboardMarkup:
    return _markup([_button(t("btn_menu"), Nav(to="menu"))])
