"""/daily, /settings, /notify and /timezone end to end: the real dispatcher and
handlers, the database as the bot's role, replies over HTTP to the strict stand-in."""

from __future__ import annotations

from bot.dev.local_botapi import Player, callback_id_of
from tests.bot.conftest import Harness


async def adopt(h: Harness, player: Player) -> None:
    await h.send(player.message("/start"))
    await h.send(player.press("Sakura"))


def labels(player: Player) -> list[str]:
    return [b["text"] for b in player.buttons(player.last())]


async def test_daily_twice(harness: Harness) -> None:
    h = harness
    ann = h.stub.user(3001, "Ann")
    await adopt(h, ann)
    await h.admin.execute("UPDATE game.waifus SET dynamic = dynamic || '{\"energy\": 30}' WHERE owner_id = 3001")

    await h.send(ann.message("/daily"))
    text = ann.last()["text"]
    assert text.startswith("🎁 Daily reward: day 1 of your streak!")
    assert "Each companion: +20 ⚡ · +10 XP · mood +2 · loyalty +1" in text
    assert "• Sakura: ⚡ 50/100 · level 1" in text
    assert "The next one is ready in" in text
    assert await h.admin.fetchval("SELECT (dynamic ->> 'energy')::int FROM game.waifus WHERE owner_id = 3001") == 50

    await h.send(ann.message("/daily"))
    assert ann.last()["text"].startswith("You already took today's reward. The next one is ready in")
    assert await h.admin.fetchval("SELECT (dynamic ->> 'energy')::int FROM game.waifus WHERE owner_id = 3001") == 50
    assert await h.admin.fetchval("SELECT count(*) FROM game.daily_claims WHERE telegram_id = 3001") == 1


async def test_a_redelivered_daily_command_claims_once(harness: Harness) -> None:
    h = harness
    bob = h.stub.user(3002, "Bob")
    await adopt(h, bob)
    update = bob.message("/daily")
    await h.send(update)
    # Telegram delivers the same update again to a restarted bot: the database knows it
    # was handled (api.admit_update), so no second answer.
    await h.fresh_dispatcher().feed_raw_update(h.bot, update)
    assert len([m for m in h.stub.bot_messages(bob.chat_id) if "Daily reward" in m["text"]]) == 1
    # Handled again after a failure (forgotten): the request key claims once, same answer.
    await h.game.forget_update(h.bot.id, update["update_id"])
    await h.fresh_dispatcher().feed_raw_update(h.bot, update)
    first, second = [m for m in h.stub.bot_messages(bob.chat_id) if "Daily reward" in m["text"]]
    assert first["text"] == second["text"]
    assert await h.admin.fetchval("SELECT daily_streak FROM game.players WHERE telegram_id = 3002") == 1


async def test_the_menu_shows_when_the_daily_reward_is_ready(harness: Harness) -> None:
    h = harness
    cat = h.stub.user(3003, "Cat")
    await adopt(h, cat)
    await h.send(cat.message("/menu"))
    assert labels(cat)[2:4] == ["🎁 Daily reward", "⚙️ Settings"]
    tap = cat.press("Daily reward")
    await h.send(tap)
    assert cat.last()["text"].startswith("🎁 Daily reward: day 1")
    assert h.stub.answers(callback_id_of(tap))[0]["text"] == "+20 ⚡ · +10 XP"
    # A double tap on the same drawn button: counted once.
    await h.send(cat.message("/menu"))
    menu = cat.last()
    wait_label = labels(cat)[2]
    assert wait_label.startswith("🎁 Daily in ")
    again = cat.press(wait_label, message=menu)
    await h.send(again)
    answer = h.stub.answers(callback_id_of(again))[0]
    assert answer["show_alert"] is True and answer["text"].startswith("You already took today's reward")


async def test_daily_without_a_companion(harness: Harness) -> None:
    h = harness
    dan = h.stub.user(3004, "Dan")
    await h.send(dan.message("/start"))
    await h.send(dan.message("/daily"))
    assert dan.last()["text"] == "There is nobody to reward yet. Send /start to meet a companion."


async def test_settings_screen_and_its_buttons(harness: Harness) -> None:
    h = harness
    eve = h.stub.user(3005, "Eve")
    await adopt(h, eve)
    await h.send(eve.message("/settings"))
    screen = eve.last()
    assert screen["text"].startswith("⚙️ Settings")
    assert "🔔 Notifications: on" in screen["text"] and "🕒 Timezone: UTC" in screen["text"]
    assert "🎁 Daily reward: ready! Streak: 0 days." in screen["text"]
    assert labels(eve) == ["🔕 Turn notifications off", "✅ Auto", "English", "Русский", "🎁 Daily reward",
                           "⬅️ Menu"]

    await h.send(eve.press("Turn notifications off"))
    assert "🔕 Notifications: off." in eve.last()["text"]
    assert await h.admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = 3005") is False
    assert labels(eve)[0] == "🔔 Turn notifications on"

    await h.send(eve.press("Русский"))
    assert await h.admin.fetchval("SELECT language FROM game.players WHERE telegram_id = 3005") == "ru"
    assert eve.last()["text"] != screen["text"] and "✅ Русский" in labels(eve)
    await h.send(eve.press("Как в Telegram"))  # the screen speaks Russian now
    assert await h.admin.fetchval("SELECT language FROM game.players WHERE telegram_id = 3005") == "auto"
    assert eve.last()["text"].startswith("⚙️ Settings")


async def test_notify_and_timezone_commands(harness: Harness) -> None:
    h = harness
    fay = h.stub.user(3006, "Fay")
    await adopt(h, fay)
    await h.send(fay.message("/notify off"))
    assert fay.last()["text"].startswith("🔕 Notifications are off")
    assert await h.admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = 3006") is False
    await h.send(fay.message("/notify"))
    assert fay.last()["text"] == "Send /notify on or /notify off."
    await h.send(fay.message("/notify on"))
    assert await h.admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = 3006") is True

    await h.send(fay.message("/timezone europe/moscow"))
    assert fay.last()["text"].startswith("🕒 Timezone: Europe/Moscow.")
    await h.send(fay.message("/timezone Mars/Olympus_Mons"))
    assert fay.last()["text"].startswith("I don't know the timezone “Mars/Olympus_Mons”")
    await h.send(fay.message("/timezone"))
    assert fay.last()["text"].startswith("Your timezone is Europe/Moscow.")
    assert await h.admin.fetchval("SELECT timezone FROM game.players WHERE telegram_id = 3006") == "Europe/Moscow"


async def test_settings_before_start(harness: Harness) -> None:
    h = harness
    gus = h.stub.user(3007, "Gus")
    await h.send(gus.message("/settings"))
    assert gus.last()["text"] == (await _texts_refusal("player_not_registered"))


async def _texts_refusal(code: str) -> str:
    from bot.texts import Texts, plain

    return plain(Texts("en").refusal(code, {}))
