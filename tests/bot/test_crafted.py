"""A Telegram client crafting button data: 60 adopt buttons for the same starter, each
with a new nonce (what gave one player 61 waifus before 0006), sent one by one and all at
once. One waifu per template; every other tap is a clean refusal, answered once. And the
buttons of issue 19 (shop, gifts, picks, leaderboards, group events): forged data matches
no factory or is refused by the database, answered once, changing nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.dev.local_botapi import callback_id_of
from bot.texts import Texts
from tests.bot.conftest import Harness

T = Texts("en")


async def test_sixty_crafted_adopt_buttons_give_one_waifu_per_template(harness: Harness) -> None:
    h = harness
    # Every tap must reach the game here (the shared chat limit would drop most of a
    # flood: tests/bot/test_flood.py).
    await h.admin.fetchval("SELECT ops.set_rate_limit('chat_user', 1000, 1000)")
    eve = h.stub.user(1501, "Eve")
    await h.send(eve.message("/start"))
    first = eve.press(data="a:sakura:nonce0000")
    await h.send(first)
    assert await h.admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 1501") == 1

    sequential = [eve.press(data=f"a:sakura:seq{n:04d}") for n in range(30)]
    for tap in sequential:
        await h.send(tap)
    concurrent = [eve.press(data=f"a:sakura:par{n:04d}") for n in range(30)]
    await asyncio.gather(*(h.send(tap) for tap in concurrent))

    assert await h.admin.fetchval(
        "SELECT count(*) FROM game.waifus WHERE owner_id = 1501 AND template_code = 'sakura'") == 1
    for tap in sequential + concurrent:
        answers = h.stub.answers(callback_id_of(tap))
        assert answers == [{"callback_query_id": callback_id_of(tap), "text": T("err_already_adopted"),
                            "show_alert": True}], answers
    assert not any(T("err_unexpected") in (c.params.get("text") or "") for c in h.stub.calls)

    # The refusal is about this template only: a crafted button for another starter
    # still adopts her (a collection, one of each), once.
    yuki = [eve.press(data=f"a:yuki:yuki{n:04d}") for n in range(5)]
    for tap in yuki:
        await h.send(tap)
    assert await h.admin.fetchval(
        "SELECT count(*) FROM game.waifus WHERE owner_id = 1501 AND template_code = 'yuki'") == 1


async def test_crafted_buttons_of_the_shop_and_groups_are_refused_cleanly(harness: Harness) -> None:
    h = harness
    await h.admin.fetchval("SELECT ops.set_rate_limit('chat_user', 1000, 1000)")
    eve = h.stub.user(5041, "Eve")
    await h.send(eve.message("/start"))
    await h.send(eve.press("Sakura"))
    other = h.stub.user(5042, "Oz")
    await h.send(other.message("/start"))
    await h.send(other.press("Yuki"))
    oz_waifu = await h.admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = 5042")
    eve_waifu = await h.admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = 5041")
    before = await h.admin.fetchval("SELECT count(*) FROM game.coin_ledger")
    crafted: dict[str, Any] = {
        # malformed: the factories do not match, the fallback answers
        "b:FLOWERS:abcd1234": T("stale_button"), "b:flowers:x": T("stale_button"),
        "b:flowers:abcd1234:extra": T("stale_button"), "g:flowers:0:abcd1234": T("stale_button"),
        "wp:-1": T("stale_button"), "wp:99999999999999999999": T("stale_button"), "gj:0": T("stale_button"),
        "tp:month": T("stale_button"), "gn:admin": T("stale_button"),
        # well formed, refused by the database
        "b:caviar:abcd1234": T("err_item_not_found"),
        "b:teddy:abcd1234": "Not enough coins: this costs 60 🪙, you have 0.",
        f"g:flowers:{oz_waifu}:abcd1234": T("err_waifu_not_found"),
        "g:flowers:999999:abcd1234": T("err_waifu_not_found"),
        f"g:flowers:{eve_waifu}:abcd1234": T("err_not_in_inventory"),
        f"wp:{oz_waifu}": T("err_waifu_not_found"),
        "gj:12345": T("err_group_event_not_open"),
    }
    for data, expected in crafted.items():
        tap = eve.press(data=data)
        await h.send(tap)
        answers = h.stub.answers(callback_id_of(tap))
        assert [(a["text"], a.get("show_alert")) for a in answers] == [(expected, True)], data
    assert await h.admin.fetchval("SELECT count(*) FROM game.coin_ledger") == before
    assert await h.admin.fetchval("SELECT count(*) FROM game.gifts") == 0
    assert not any(T("err_unexpected") in (c.params.get("text") or "") for c in h.stub.calls)
