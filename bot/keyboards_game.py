"""Inline keyboards of issue 19 (collection, shop, inventory, leaderboards, group events):
one CallbackData factory per kind of button, in the style of bot/keyboards.py.

Field constraints make forged or garbled callback data not match at all (the fallback
answers "stale button"); an action's request key is made from the drawn nonce, so a
double tap on one drawn button acts once.
"""

from __future__ import annotations

from typing import Any, Literal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from pydantic import Field

from bot.keyboards import BIGINT_MAX, CODE_PATTERN, MAX_EVENT_BUTTONS, NONCE_PATTERN, Adopt, Card, Nav, _button, _markup
from bot.texts import Texts


class GameNav(CallbackData, prefix="gn"):
    to: Literal["collection", "shop", "inventory"]


class Pick(CallbackData, prefix="wp"):
    """Choose the waifu that takes part in events."""

    waifu_id: int = Field(ge=1, le=BIGINT_MAX)


class Buy(CallbackData, prefix="b"):
    code: str = Field(pattern=CODE_PATTERN)
    nonce: str = Field(pattern=NONCE_PATTERN)


class Give(CallbackData, prefix="g"):
    """Give an item from the inventory to one's own waifu."""

    code: str = Field(pattern=CODE_PATTERN)
    waifu_id: int = Field(ge=1, le=BIGINT_MAX)
    nonce: str = Field(pattern=NONCE_PATTERN)


class Top(CallbackData, prefix="tp"):
    board: Literal["all", "week"]


class GroupJoin(CallbackData, prefix="gj"):
    event_id: int = Field(ge=1, le=BIGINT_MAX)


def collection(t: Texts, c: dict[str, Any], nonce: str) -> InlineKeyboardMarkup:
    """A row per owned waifu (her stat card; pick her unless she is the one already), a button per
    template not adopted yet (when there is room), the menu."""
    owned = [[_button(t("btn_card_of", name=w["name"]), Card(waifu_id=w["waifu_id"])),
              *([] if w["active"] else [_button(t("btn_pick", name=w["name"]), Pick(waifu_id=w["waifu_id"]))])]
             for w in c["waifus"][:MAX_EVENT_BUTTONS]]
    adopt = [_button(t("btn_adopt", name=tpl["name"]), Adopt(code=tpl["code"], nonce=nonce))
             for tpl in c["templates"][:MAX_EVENT_BUTTONS] if tpl["waifu_id"] is None] if c["owned"] < c["max"] else []
    return _markup(*owned,
                   *(adopt[i:i + 2] for i in range(0, len(adopt), 2)),
                   [_button(t("btn_shop"), GameNav(to="shop")), _button(t("btn_inventory"), GameNav(to="inventory"))],
                   [_button(t("btn_menu"), Nav(to="menu"))])


def shop(t: Texts, items: list[dict[str, Any]], nonce: str) -> InlineKeyboardMarkup:
    rows = [[_button(t("btn_buy", price=i["price"], name=i["name"]), Buy(code=i["code"], nonce=nonce))]
            for i in items[:MAX_EVENT_BUTTONS]]
    return _markup(*rows, [_button(t("btn_inventory"), GameNav(to="inventory")),
                           _button(t("btn_menu"), Nav(to="menu"))])


def inventory(t: Texts, items: list[dict[str, Any]], waifu: dict[str, Any] | None,
              nonce: str) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    if waifu is not None:
        rows = [[_button(t("btn_give", item=i["name"], name=waifu["name"]),
                         Give(code=i["code"], waifu_id=waifu["waifu_id"], nonce=nonce))]
                for i in items[:MAX_EVENT_BUTTONS]]
    return _markup(*rows, [_button(t("btn_shop"), GameNav(to="shop")), _button(t("btn_collection"),
                                                                               GameNav(to="collection"))],
                   [_button(t("btn_menu"), Nav(to="menu"))])


def top(t: Texts, board: str) -> InlineKeyboardMarkup:
    other: Literal["all", "week"] = "all" if board == "week" else "week"
    return _markup([_button(t("btn_top_all" if other == "all" else "btn_top_week"), Top(board=other))])


def group_event(t: Texts, event_id: int) -> InlineKeyboardMarkup:
    return _markup([_button(t("btn_group_join"), GroupJoin(event_id=event_id))])
