"""Issue 19 in a private chat (and wherever the commands are sent): the collection
(/waifus: adopt another, pick the one for events), the shop (/shop), the inventory
(/inventory: give a gift to one's own companion). Every rule is the database's; a
refusal reaches the errors router, worded from its code and detail."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards, keyboards_game
from bot.game import Game
from bot.handlers.common import request_key
from bot.logs import UpdateLog
from bot.responder import Responder
from bot.texts import Html, Texts, signed


def rarity(texts: Texts, value: str) -> Html:
    return texts(f"rarity_{value}") if value in ("common", "rare", "epic") else Html(value)


async def collection_screen(game: Game, texts: Texts, telegram_id: int) -> tuple[Html, InlineKeyboardMarkup]:
    c = await game.player_waifus(telegram_id)
    lines: list[str] = [texts("collection_title", owned=c["owned"], max=c["max"]), ""]
    lines += [texts("collection_line", mark="⭐" if w["active"] else "•", name=w["name"],
                    rarity=rarity(texts, w["rarity"]), level=w["level"]) for w in c["waifus"]]
    if c["owned"] < c["max"]:
        missing = [tpl for tpl in c["templates"] if tpl["waifu_id"] is None]
        if missing:
            lines.append("")
        lines += [texts("collection_adopt_line", name=tpl["name"], rarity=rarity(texts, tpl["rarity"]))
                  for tpl in missing]
    else:
        lines += ["", texts("collection_full")]
    if c["waifus"]:
        lines += ["", texts("collection_hint")]
    return texts.lines(lines), keyboards_game.collection(texts, c, keyboards.new_nonce())


def effects(texts: Texts, item: dict[str, Any]) -> str:
    parts = [texts(f"effect_{k}", delta=signed(item[k])) for k in ("mood", "loyalty", "energy") if item[k]]
    if item.get("cooldown_seconds"):
        parts.append(texts("effect_cooldown", period=texts.period(item["cooldown_seconds"])))
    return " · ".join(parts)


async def shop_screen(game: Game, texts: Texts, telegram_id: int) -> tuple[Html, InlineKeyboardMarkup]:
    s = await game.shop(telegram_id)
    lines: list[str] = [texts("shop_title", coins=s["coins"]), ""]
    lines += [texts("shop_line", name=i["name"], price=i["price"], effects=Html(effects(texts, i)))
              for i in s["items"]] or [texts("shop_empty")]
    return texts.lines(lines), keyboards_game.shop(texts, s["items"], keyboards.new_nonce())


async def inventory_screen(game: Game, texts: Texts, telegram_id: int) -> tuple[Html, InlineKeyboardMarkup]:
    inv = await game.inventory(telegram_id)
    c = await game.player_waifus(telegram_id)
    active = next((w for w in c["waifus"] if w["active"]), None)
    lines: list[str] = [texts("inventory_title", coins=inv["coins"]), ""]
    lines += [texts("inventory_line", name=i["name"], quantity=i["quantity"]) for i in inv["items"]] or [
        texts("inventory_empty")]
    if inv["items"] and active is not None:
        lines += ["", texts("inventory_gift_hint", name=active["name"])]
    return texts.lines(lines), keyboards_game.inventory(texts, inv["items"], active, keyboards.new_nonce())


async def waifus_command(message: Message, game: Game, texts: Texts, responder: Responder) -> None:
    if message.from_user is not None:
        await responder.send(*await collection_screen(game, texts, message.from_user.id))


async def shop_command(message: Message, game: Game, texts: Texts, responder: Responder) -> None:
    if message.from_user is not None:
        await responder.send(*await shop_screen(game, texts, message.from_user.id))


async def inventory_command(message: Message, game: Game, texts: Texts, responder: Responder) -> None:
    if message.from_user is not None:
        await responder.send(*await inventory_screen(game, texts, message.from_user.id))


async def navigate(query: CallbackQuery, callback_data: keyboards_game.GameNav, game: Game, texts: Texts,
                   responder: Responder) -> None:
    screens = {"collection": collection_screen, "shop": shop_screen, "inventory": inventory_screen}
    await responder.show(*await screens[callback_data.to](game, texts, query.from_user.id))


async def pick(query: CallbackQuery, callback_data: keyboards_game.Pick, game: Game, texts: Texts,
               responder: Responder, update_log: UpdateLog) -> None:
    update_log.action = "pick_waifu"
    picked = await game.set_active_waifu(query.from_user.id, callback_data.waifu_id)
    responder.toast = texts("picked_toast", name=picked["name"])
    await responder.show(*await collection_screen(game, texts, query.from_user.id))


async def buy(query: CallbackQuery, callback_data: keyboards_game.Buy, game: Game, texts: Texts,
              responder: Responder, update_log: UpdateLog) -> None:
    update_log.action = "buy"
    # The drawn shop's nonce and the item: a double tap buys once, another item is another key.
    key = request_key(query, "buy", callback_data.nonce, callback_data.code)
    bought = await game.buy_item(query.from_user.id, callback_data.code, key)
    responder.toast = (texts("bought_replayed_toast") if bought["replayed"]
                       else texts("bought_toast", name=bought["item"]["name"], coins=bought["coins"]))
    await responder.show(*await shop_screen(game, texts, query.from_user.id))


def gift_text(texts: Texts, result: dict[str, Any], giver: str | None = None) -> Html:
    c = result["changes"]
    if giver is not None:
        return texts("gift_given_other", giver=giver, name=result["name"], item=result["item"]["name"],
                     mood=signed(c["mood"]), loyalty=signed(c["loyalty"]))
    return texts("gift_given", name=result["name"], item=result["item"]["name"], mood=signed(c["mood"]),
                 loyalty=signed(c["loyalty"]), energy=signed(c["energy"]))


async def give(query: CallbackQuery, callback_data: keyboards_game.Give, game: Game, texts: Texts,
               responder: Responder, update_log: UpdateLog) -> None:
    update_log.action = "gift"
    key = request_key(query, "gift", callback_data.nonce, callback_data.code)
    result = await game.give_gift(query.from_user.id, callback_data.waifu_id, callback_data.code, key)
    responder.toast = (texts("gift_replayed_toast") if result["replayed"]
                       else texts("gift_toast", name=result["name"]))
    text, markup = await inventory_screen(game, texts, query.from_user.id)
    await responder.show(Html(gift_text(texts, result) + "\n\n" + text), markup)


def make_router() -> Router:
    router = Router(name="collection")
    router.message.register(waifus_command, Command("waifus"))
    router.message.register(shop_command, Command("shop"))
    router.message.register(inventory_command, Command("inventory"))
    router.callback_query.register(navigate, keyboards_game.GameNav.filter(F.to.in_({"collection", "shop",
                                                                                     "inventory"})))
    router.callback_query.register(pick, keyboards_game.Pick.filter())
    router.callback_query.register(buy, keyboards_game.Buy.filter())
    router.callback_query.register(give, keyboards_game.Give.filter())
    return router
