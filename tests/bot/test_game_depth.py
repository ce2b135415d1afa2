"""Issue 19 end to end through the Telegram stand-in: the real dispatcher and handlers,
the database as the bot's role. Adopt a second waifu, earn coins, buy and give a gift,
/top in a group with two members, join a group event (crafted buttons: tests/bot/test_crafted.py)."""

from __future__ import annotations

from bot import group_sender
from bot.dev.local_botapi import Player, callback_id_of
from bot.texts import COMMANDS, Texts
from tests.bot.conftest import Harness

T = Texts("en")
GROUP = -100500


def labels(player: Player) -> list[str]:
    return [b["text"] for b in player.buttons(player.last())]


async def coins(h: Harness, telegram_id: int) -> int:
    return await h.admin.fetchval("SELECT coalesce((SELECT coins FROM game.wallets WHERE telegram_id = $1), 0)",
                                  telegram_id)


async def start(h: Harness, player: Player, starter: str = "Sakura") -> None:
    await h.send(player.message("/start"))
    await h.send(player.press(starter))


def in_group(h: Harness, player: Player) -> Player:
    return h.stub.user(player.id, player.user["first_name"], chat_type="supergroup", chat_id=GROUP)


async def test_a_second_waifu_coins_a_purchase_and_a_gift(harness: Harness) -> None:
    h = harness
    ann = h.stub.user(5001, "Ann")
    await start(h, ann)

    # The collection: Sakura is the one for events; another joins from /waifus.
    await h.send(ann.message("/waifus"))
    text = ann.last()["text"]
    assert text.startswith("Your collection: 1 of 5") and "⭐ Sakura · common · level 1" in text
    assert "➕ Akane · epic" in text
    await h.send(ann.press("➕ Yuki"))
    assert await h.admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 5001") == 2
    await h.send(ann.message("/waifus"))
    assert "Your collection: 2 of 5" in ann.last()["text"]
    pick = ann.press("⭐ Yuki")
    await h.send(pick)
    assert h.stub.answers(callback_id_of(pick))[0]["text"] == "Yuki will take part now"
    assert "⭐ Yuki · rare" in ann.last()["text"]

    # Coins: the daily reward and an event pay them.
    await h.send(ann.message("/daily"))
    assert await coins(h, 5001) == 10
    sakura = await h.admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = 5001 AND template_code = 'sakura'")
    for _ in range(3):
        await h.send(ann.message("/events"))
        if "Which companion?" in ann.last()["text"]:
            await h.send(ann.press("Sakura"))
        await h.send(ann.press("Walk in the park"))
    assert await coins(h, 5001) == 16
    assert await h.admin.fetchval("SELECT count(*) FROM game.participations WHERE waifu_id = $1", sakura) == 3

    # The shop: chocolate for 15; a double tap on the drawn button buys once.
    await h.send(ann.message("/shop"))
    assert ann.last()["text"].startswith("🛍 Shop · you have 16 🪙")
    shop = ann.last()
    first = ann.press("Chocolate", message=shop)
    await h.send(first)
    await h.send(ann.press("Chocolate", message=shop))
    assert h.stub.answers(callback_id_of(first))[0]["text"] == "Bought: Chocolate. 1 🪙 left"
    assert await coins(h, 5001) == 1
    assert await h.admin.fetchval("SELECT quantity FROM game.inventory WHERE telegram_id = 5001") == 1
    short = ann.press("Flowers")
    await h.send(short)
    answer = h.stub.answers(callback_id_of(short))[0]
    assert answer["show_alert"] is True and answer["text"] == "Not enough coins: this costs 20 🪙, you have 1."

    # The inventory: give it to Yuki (the one picked).
    await h.send(ann.message("/inventory"))
    assert "Chocolate × 1" in ann.last()["text"]
    give = ann.press("🎁 Chocolate → Yuki")
    await h.send(give)
    assert h.stub.answers(callback_id_of(give))[0]["text"] == "Yuki loved it!"
    assert ann.last()["text"].startswith("🎁 Yuki got Chocolate: mood +4 · loyalty +1")
    assert await h.admin.fetchval("SELECT count(*) FROM game.gifts WHERE giver_id = 5001") == 1
    assert await h.admin.fetchval("SELECT quantity FROM game.inventory WHERE telegram_id = 5001") == 0


async def test_top_in_a_group_with_two_members_and_a_gift_between_them(harness: Harness) -> None:
    h = harness
    ann, bob = h.stub.user(5011, "Ann"), h.stub.user(5012, "Bob")
    await start(h, ann)
    await start(h, bob, "Yuki")
    await h.send(ann.message("/events"))
    await h.send(ann.press("Walk in the park"))
    ann_g, bob_g = in_group(h, ann), in_group(h, bob)
    await h.send(ann_g.message("/top"))
    await h.send(bob_g.message("/top all"))
    text = bob_g.last()["text"]
    assert text.startswith("🏆 Top of this group · all time")
    assert "1. Ann: 15 XP" in text and "You: place 2 with 0 XP" in text
    await h.send(bob_g.press("This week"))
    assert bob_g.last()["text"].startswith("🏆 Top of this group · this week")
    # privately: the global board
    await h.send(bob.message("/top"))
    assert bob.last()["text"].startswith("🏆 Top players · this week")

    # A gift to another member's companion: a reply to their message in the group.
    await h.admin.execute("SELECT ops.adjust_coins(5011, 20, 'test')")
    await h.send(ann.message("/shop"))
    await h.send(ann.press("Flowers"))
    bob_said = bob_g.message("hello")
    update = ann_g.message("/gift flowers")
    update["message"]["reply_to_message"] = bob_said["message"] | {"message_id": 1}
    await h.send(update)
    assert ann_g.last()["text"] == "🎁 Ann gave Yuki Flowers: mood +8 · loyalty +2"
    assert await h.admin.fetchval("SELECT standing FROM game.wallets WHERE telegram_id = 5011") == 2


async def test_group_events_opt_in_by_an_admin_join_and_result(harness: Harness) -> None:
    h = harness
    ann, bob = h.stub.user(5021, "Ann"), h.stub.user(5022, "Bob")
    await start(h, ann)
    await start(h, bob, "Yuki")
    ann_g, bob_g = in_group(h, ann), in_group(h, bob)
    await h.send(bob_g.message("/group_events on"))
    assert bob_g.last()["text"] == T("err_not_group_admin")
    h.stub.admins.add((GROUP, 5021))
    await h.send(ann_g.message("/group_events on"))
    assert ann_g.last()["text"].startswith("🎉 Group events are on")

    await h.admin.execute("UPDATE game.groups SET next_event_at = now() - interval '1 second'")
    assert await h.admin.fetchval("SELECT game.group_events_job()") == {"paid": 0, "opened": 1}
    assert await group_sender.send_group_messages(h.bot, h.game, "test") == 1
    posted = ann_g.last()
    assert posted["text"].startswith("🎉 Group event! Join within 10 min: 100 🪙")
    join = bob_g.press("Join", message=posted)
    await h.send(join)
    assert h.stub.answers(callback_id_of(join))[0]["text"] == "You're in! Participants: 1"
    again = bob_g.press("Join", message=posted)
    await h.send(again)
    assert h.stub.answers(callback_id_of(again))[0]["text"] == "You have already joined."

    # Its window closes (as ten minutes would), and the job pays it.
    await h.admin.execute("UPDATE game.group_events SET opened_at = now() - interval '10 minutes', closes_at = now()")
    assert await h.admin.fetchval("SELECT game.group_events_job()") == {"paid": 1, "opened": 0}
    assert await group_sender.send_group_messages(h.bot, h.game, "test") == 1
    assert ann_g.last()["text"] == "🎉 The group event is over! 1 took part:\n• Bob: +100 🪙"
    assert await coins(h, 5022) == 100


async def test_help_lists_every_command(harness: Harness) -> None:
    h = harness
    cat = h.stub.user(5031, "Cat")
    await h.send(cat.message("/help"))
    text = cat.last()["text"]
    assert text.startswith("How to play")
    for command in COMMANDS:
        assert f"/{command}: {T(f'cmd_{command}')}" in text


async def test_replies_in_a_group_stay_within_twenty_a_minute(harness: Harness) -> None:
    h = harness
    await h.admin.fetchval("SELECT ops.set_rate_limit('chat_user', 1000, 1000)")
    await h.admin.fetchval("SELECT ops.set_rate_limit('group_chat', 1000, 1000)")
    ann = h.stub.user(5051, "Ann")
    await start(h, ann)
    ann_g = in_group(h, ann)
    for _ in range(30):
        await h.send(ann_g.message("/top"))
    # the shared bucket group_send: a burst of 5, then one every 4 s
    assert len(h.stub.bot_messages(GROUP)) == 5
