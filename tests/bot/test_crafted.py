"""A Telegram client crafting button data: 60 adopt buttons for the same starter, each
with a new nonce (what gave one player 61 waifus before 0006), sent one by one and all at
once. One waifu per template; every other tap is a clean refusal, answered once."""

from __future__ import annotations

import asyncio

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
