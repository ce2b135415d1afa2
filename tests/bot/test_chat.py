"""Scripted players, end to end: updates through the real dispatcher and handlers, the
real database as the bot's role, and every reply over HTTP to the strict Bot API stand-in."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from bot.dev.local_botapi import Player, callback_id_of
from bot.texts import COMMANDS, Texts
from tests.bot.conftest import WEBAPP_URL, Harness, make_settings

T = Texts("en")


async def adopt(h: Harness, player: Player, name: str = "Sakura") -> int:
    await h.send(player.message("/start"))
    await h.send(player.press(name))
    return await h.admin.fetchval("SELECT max(id) FROM game.waifus WHERE owner_id = $1", player.id)


async def ledger(h: Harness, player_id: int) -> int:
    return await h.admin.fetchval("SELECT count(*) FROM game.participations WHERE telegram_id = $1", player_id)


async def energy(h: Harness, waifu_id: int) -> int:
    return await h.admin.fetchval("SELECT (api.waifu_stats($1) ->> 'energy')::int", waifu_id)


def answered_once(h: Harness, update: dict) -> dict:
    answers = h.stub.answers(callback_id_of(update))
    assert len(answers) == 1, answers
    return answers[0]


async def test_newcomer_adopts_and_gets_the_menu(harness: Harness) -> None:
    h = harness
    ann = h.stub.user(1001, "Ann", username="ann")
    await h.send(ann.message("/start"))
    welcome = ann.last()
    assert welcome["text"].startswith("Welcome, Ann!")
    labels = [b["text"] for b in ann.buttons(welcome)]
    templates = await h.admin.fetch("SELECT name FROM game.waifu_templates ORDER BY name")
    assert labels == [f"💕 {t['name']}" for t in templates]
    player = await h.admin.fetchrow("SELECT username, first_name, language_code FROM game.players "
                                    "WHERE telegram_id = 1001")
    assert dict(player) == {"username": "ann", "first_name": "Ann", "language_code": "en"}

    tap = ann.press("Sakura")
    await h.send(tap)
    waifus = await h.admin.fetch("SELECT template_code FROM game.waifus WHERE owner_id = 1001")
    assert [w["template_code"] for w in waifus] == ["sakura"]
    menu = ann.last()
    assert menu["message_id"] == welcome["message_id"]  # the list became the menu
    assert "Sakura is now your companion" in menu["text"] and "What shall we do?" in menu["text"]
    buttons = ann.buttons(menu)
    assert [b["text"] for b in buttons] == ["📊 Stats", "🎉 Events", "🎁 Daily reward", "⚙️ Settings",
                                            "📱 Open the app", "❓ Help"]
    assert buttons[4]["web_app"] == {"url": WEBAPP_URL}
    assert answered_once(h, tap).get("text") == "Welcome home, Sakura!"

    # A returning player gets the menu, not the starters.
    await h.send(ann.message("/start"))
    assert ann.last()["text"] == "Hi, Ann! What shall we do?"
    assert await h.admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 1001") == 1


async def test_adoption_double_tap_adopts_once_and_one_pick_per_list(harness: Harness) -> None:
    h = harness
    bob = h.stub.user(1002, "Bob")
    await h.send(bob.message("/start"))
    offer = bob.last()
    taps = [bob.press("Yuki", message=offer), bob.press("Yuki", message=offer)]
    await asyncio.gather(*(h.send(t) for t in taps))
    assert await h.admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 1002") == 1
    for t in taps:
        answered_once(h, t)
    # Another pick from the same drawn list is refused, precisely.
    other = bob.press("Rin", message=offer)
    await h.send(other)
    assert answered_once(h, other) == {"callback_query_id": callback_id_of(other),
                                       "text": "You already chose from this list.", "show_alert": True}
    assert await h.admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 1002") == 1


async def test_stat_card_shows_effective_values(harness: Harness) -> None:
    h = harness
    cat = h.stub.user(1003, "Cat")
    waifu_id = await adopt(h, cat)
    # Stored energy 40 with its clock 150 s ago: effectively 42 now, the next +1 in 30 s.
    await h.admin.execute(
        "UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 40, 'xp', 450, 'mood', 73, "
        "'loyalty', 12, 'last_restore', extract(epoch FROM now()) - 150) WHERE id = $1", waifu_id)
    await h.send(cat.press("Stats"))
    assert cat.last()["photo"]  # the card is a photo of her portrait, the stats its caption
    card = cat.last()["caption"]
    assert "Sakura · level 3" in card  # 450 XP: level 3 spans 400..899
    assert "✨ XP ▰▱▱▱▱▱▱▱▱▱ 50/500" in card  # 10% of the way to level 4
    assert "⚡ Energy ▰▰▰▰▱▱▱▱▱▱ 42/100" in card
    assert "next +1 in 30 s · full in 57 min 30 s" in card  # 58 more intervals minus the 30 s already run
    assert "😊 Mood ▰▰▰▰▰▰▰▱▱▱ 73/100" in card and "💞 Loyalty ▰▱▱▱▱▱▱▱▱▱ 12/100" in card
    assert cat.last()["caption_entities"][0] == {"type": "bold", "offset": 0, "length": len("Sakura")}


async def test_refresh_of_an_unchanged_card_is_fine(harness: Harness) -> None:
    h = harness
    dan = h.stub.user(1004, "Dan")
    await adopt(h, dan)
    await h.send(dan.press("Stats"))
    before = dict(dan.last())
    refresh = dan.press("Refresh")
    await h.send(refresh)  # full energy: nothing on the card moves, Telegram says "not modified"
    assert h.stub.calls_of("editMessageCaption")[-1].status == 400
    assert answered_once(h, refresh).get("text") == "Up to date"
    assert dan.last()["caption"] == before["caption"]


async def test_take_part_until_energy_runs_out(harness: Harness) -> None:
    h = harness
    eve = h.stub.user(1005, "Eve")
    waifu_id = await adopt(h, eve, "Hana")
    await h.send(eve.press("Events"))
    events_text = eve.last()["text"]
    assert "Walk in the park: 10 ⚡ → +15 XP, mood +4, loyalty +1" in events_text
    tap = eve.press("Walk in the park")
    await h.send(tap)
    result = eve.last()["text"]
    assert result.startswith("✅ Hana: Walk in the park\n+15 XP · −10 ⚡ · mood +4 · loyalty +1")
    assert "⚡ Energy ▰▰▰▰▰▰▰▰▰▱ 90/100" in result
    assert answered_once(h, tap).get("text") == "+15 XP"
    for _ in range(9):
        await h.send(eve.press("Again"))
    assert await ledger(h, 1005) == 10
    assert await energy(h, waifu_id) == 0
    assert "0/100" in eve.last()["text"]

    refused = eve.press("Again")
    await h.send(refused)
    answer = answered_once(h, refused)
    assert answer["show_alert"] is True
    assert answer["text"].startswith("Not enough energy: this needs 10 ⚡, there is 0. Enough in ")
    assert answer["text"].endswith("10 min.") or answer["text"].endswith("9 min.")
    assert await ledger(h, 1005) == 10


async def test_level_up_is_announced(harness: Harness) -> None:
    h = harness
    fay = h.stub.user(1006, "Fay")
    waifu_id = await adopt(h, fay)
    await h.admin.execute("UPDATE game.waifus SET dynamic = dynamic || '{\"xp\": 90}' WHERE id = $1", waifu_id)
    await h.send(fay.press("Events"))
    await h.send(fay.press("Walk in the park"))
    assert "🎉 Level up! 1 → 2" in fay.last()["text"]


async def test_double_tap_on_the_same_drawn_button_applies_once(harness: Harness) -> None:
    h = harness
    gus = h.stub.user(1007, "Gus")
    waifu_id = await adopt(h, gus)
    await h.send(gus.press("Events"))
    drawn = gus.last()
    # Two callback queries (different ids) for one drawn button, at the same moment.
    taps = [gus.press("Walk in the park", message=drawn), gus.press("Walk in the park", message=drawn)]
    assert callback_id_of(taps[0]) != callback_id_of(taps[1])
    await asyncio.gather(*(h.send(t) for t in taps))
    assert await ledger(h, 1007) == 1
    assert await energy(h, waifu_id) == 90
    toasts = sorted(answered_once(h, t).get("text") for t in taps)
    assert toasts == ["+15 XP", "Already done: counted once."]
    # And a third tap on it later: still once.
    late = gus.press("Walk in the park", message=drawn)
    await h.send(late)
    assert await ledger(h, 1007) == 1
    # A freshly drawn button acts again.
    await h.send(gus.press("Again"))
    assert await ledger(h, 1007) == 2
    assert await energy(h, waifu_id) == 80


async def test_buttons_on_two_drawn_lists_never_share_a_key(harness: Harness) -> None:
    h = harness
    hal = h.stub.user(1008, "Hal")
    await adopt(h, hal)
    await h.send(hal.message("/events"))
    first = hal.last()
    await h.send(hal.message("/events"))
    second = hal.last()
    await h.send(hal.press("Walk in the park", message=first))
    await h.send(hal.press("Walk in the park", message=second))
    keys = await h.admin.fetch("SELECT request_key FROM game.participations WHERE telegram_id = 1008")
    assert len({k["request_key"] for k in keys}) == 2


async def test_redelivered_update_applies_once(harness: Harness) -> None:
    h = harness
    ivy = h.stub.user(1009, "Ivy")
    waifu_id = await adopt(h, ivy)
    await h.send(ivy.press("Events"))
    update = ivy.press("Walk in the park")
    await h.send(update)
    calls = len(h.stub.calls)
    await h.send(update)  # the same update id and callback id again
    assert len(h.stub.calls) == calls  # recognised: no second reply
    assert await ledger(h, 1009) == 1

    # After a restart (or in another process) the bot has forgotten it; the database has
    # not (api.admit_update): no second answer.
    restarted = h.fresh_dispatcher()
    await restarted.feed_raw_update(h.bot, update)
    assert len(h.stub.calls) == calls
    assert await ledger(h, 1009) == 1
    assert await energy(h, waifu_id) == 90
    state = h.stub.callbacks[callback_id_of(update)]
    assert len(state["answers"]) == 1 and not state.get("refused")
    assert ivy.last()["text"].startswith("✅ Sakura: Walk in the park")

    # Had the first handling failed, the update would be handled again (api.forget_update);
    # then the request key still applies it once, and Telegram's refusal of a second
    # answer to the same query is handled.
    await h.game.forget_update(h.bot.id, update["update_id"])
    await h.fresh_dispatcher().feed_raw_update(h.bot, update)
    assert await ledger(h, 1009) == 1
    state = h.stub.callbacks[callback_id_of(update)]
    assert len(state["answers"]) == 1 and len(state["refused"]) == 1


async def test_redelivered_message_update_registers_once(harness: Harness) -> None:
    h = harness
    jo = h.stub.user(1010, "Jo")
    update = jo.message("/start")
    await h.send(update)
    await h.fresh_dispatcher().feed_raw_update(h.bot, update)
    assert await h.admin.fetchval("SELECT count(*) FROM game.players WHERE telegram_id = 1010") == 1


async def test_cooldown_and_closed_event_refusals(harness: Harness) -> None:
    h = harness
    kim = h.stub.user(1011, "Kim")
    await adopt(h, kim)
    # A test's own event: the seed events are shared with other tests.
    await h.admin.execute("SELECT ops.create_event('fair', 'Fun fair', 5, 5, 1, 1, '0')")
    await h.send(kim.press("Events"))
    drawn = kim.last()
    await h.send(kim.press("Cafe date", message=drawn))
    again = kim.press("Again")
    await h.send(again)
    answer = answered_once(h, again)
    assert answer["show_alert"] is True
    # To the second under an hour, like energy: never "30 min" for 29 min 58 s.
    assert re.fullmatch(r"She needs a break from this one\. Ready again in (30 min|29 min [1-5]?[0-9] s)\.",
                        answer["text"]), answer["text"]
    await h.admin.execute("SELECT ops.close_event('fair')")
    closed = kim.press("Fun fair", message=drawn)
    await h.send(closed)
    assert answered_once(h, closed)["text"] == T("err_event_not_open")
    await h.send(kim.press("Events"))
    assert "Fun fair" not in kim.last()["text"]
    assert await ledger(h, 1011) == 1


async def test_stale_and_garbage_buttons_get_a_short_alert(harness: Harness) -> None:
    h = harness
    lou = h.stub.user(1012, "Lou")
    await adopt(h, lou)
    for data in ("x", "j:1:walk", "j:abc:walk:abcdefgh", "j:99999999:walk:abcdefgh", "j:0:walk:abcdefgh",
                 "j:99999999999999999999999:walk:abcdefgh", "j:1:WALK!:abcdefgh", "n:nowhere", "c:", "e:-5",
                 "a:nobody:abcdefgh"):
        tap = lou.press(data=data)
        await h.send(tap)
        answer = answered_once(h, tap)
        assert answer.get("show_alert") is True, data
        assert answer["text"] in (T("stale_button"), T("err_waifu_not_found"), T("err_invalid_argument")), data
    assert await ledger(h, 1012) == 0


async def test_a_player_cannot_touch_another_players_waifu(harness: Harness) -> None:
    h = harness
    ann, mal = h.stub.user(1013, "Ann"), h.stub.user(1014, "Mal")
    anns = await adopt(h, ann)
    await adopt(h, mal)
    await h.send(ann.press("Events"))
    nonce = ann.button(ann.last(), "Walk")["callback_data"].rsplit(":", 1)[1]
    before = await h.admin.fetchval("SELECT dynamic FROM game.waifus WHERE id = $1", anns)
    for data in (f"c:{anns}", f"e:{anns}", f"j:{anns}:walk:{nonce}"):
        tap = mal.press(data=data)
        await h.send(tap)
        assert answered_once(h, tap) == {"callback_query_id": callback_id_of(tap), "show_alert": True,
                                         "text": T("err_waifu_not_found")}
    assert await h.admin.fetchval("SELECT dynamic FROM game.waifus WHERE id = $1", anns) == before
    assert await h.admin.fetchval("SELECT count(*) FROM game.participations") == 0
    # Nothing about Ann's waifu reached Mal's chat.
    assert all("Sakura" not in m["text"] or m["text"].startswith("🎉") for m in h.stub.bot_messages(mal.chat_id))


async def test_commands_before_start_say_start_first(harness: Harness) -> None:
    h = harness
    ned = h.stub.user(1015, "Ned")
    for command in ("/menu", "/profile", "/events"):
        await h.send(ned.message(command))
        assert ned.last()["text"] == "We have not met yet! Send /start to the bot first."
    await h.send(ned.message("/help"))
    assert ned.last()["text"].startswith("How to play")


async def test_names_with_html_do_not_break_messages(harness: Harness) -> None:
    h = harness
    for i, name in enumerate(["<b>", "Tom & Jerry </i>", "&amp;lt;", "<a href='x'>me</a>", "🙂" * 20]):
        player = h.stub.user(1100 + i, name, username=None)
        await h.send(player.message("/start"))
        assert player.last()["text"].startswith(f"Welcome, {name}!"), name
        await h.send(player.press("Akane"))
        assert f"Hi, {name}! What shall we do?" in player.last()["text"]
    assert all(c.status == 200 for c in h.stub.calls)


async def test_long_event_titles_and_many_events_fit_telegrams_limits(harness: Harness) -> None:
    h = harness
    oz = h.stub.user(1016, "Oz")
    await adopt(h, oz)
    # Titles are at most 200 characters (ops.create_event): 35 such events overflow a message.
    await h.admin.execute("SELECT ops.create_event('epic', $1, 1, 1, 0, 0, '0')", "A very long <title> & " * 9)
    for n in range(30):
        await h.admin.execute("SELECT ops.create_event($1, $2, 2, 1, 0, 0, '0')", f"extra_{n:02}",
                              f"Extra {n} " + "&<>" * 60)
    await h.send(oz.press("Events"))
    message = oz.last()
    assert message["text"].count("\n") > 5 and "…and" in message["text"]
    assert len(message["text"]) <= 4096
    buttons = oz.buttons(message)
    assert len(buttons) <= 24 and all(len(b["callback_data"].encode()) <= 64 for b in buttons)
    await h.send(oz.press("A very long"))
    assert oz.last()["text"].startswith("✅ Sakura: A very long <title> &")
    assert all(c.status == 200 for c in h.stub.calls)


async def test_several_waifus_pick_which_one(harness: Harness) -> None:
    h = harness
    pia = h.stub.user(1017, "Pia")
    # Two starter lists drawn before adopting: one pick from each.
    await h.send(pia.message("/start"))
    first = pia.last()
    await h.send(pia.message("/start"))
    await h.send(pia.press("Yuki"))
    await h.send(pia.press("Sakura", message=first))
    assert await h.admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 1017") == 2
    await h.send(pia.message("/menu"))
    labels = [b["text"] for b in pia.buttons(pia.last())]
    assert labels[:4] == ["📊 Yuki", "🎉 Events", "📊 Sakura", "🎉 Events"]  # in adoption order
    for command in ("/profile", "/events"):
        await h.send(pia.message(command))
        assert pia.last()["text"] == "Which companion?"
        assert [b["text"] for b in pia.buttons(pia.last())] == ["Yuki", "Sakura", "⬅️ Menu"]
    await h.send(pia.press("Yuki"))
    assert pia.last()["text"].startswith("Events for Yuki")


async def test_web_app_button_only_in_private_chats_and_when_configured(harness: Harness, game) -> None:
    h = harness
    quinn = h.stub.user(1018, "Quinn")
    await adopt(h, quinn)
    in_group = h.stub.user(1018, "Quinn", chat_type="group", chat_id=-5001)
    await h.send(in_group.message("/menu"))
    assert all("web_app" not in b for b in in_group.buttons(in_group.last()))
    await h.send(in_group.message("just chatting"))  # group chatter is not answered
    assert len(h.stub.bot_messages(-5001)) == 1

    from bot.app import create_dispatcher

    without = create_dispatcher(game, make_settings(h.stub, webapp_url=None))
    await without.feed_raw_update(h.bot, quinn.message("/menu"))
    assert [b["text"] for b in quinn.buttons(quinn.last())] == ["📊 Stats", "🎉 Events", "🎁 Daily reward",
                                                                "⚙️ Settings", "❓ Help"]


async def test_start_up_sets_commands_and_the_menu_button(harness: Harness) -> None:
    h = harness
    await h.dp.emit_startup(bot=h.bot, **h.dp.workflow_data)
    commands = h.stub.commands[None]
    assert [c["command"] for c in commands] == list(COMMANDS)
    assert h.stub.menu_button == {"type": "web_app", "text": "Stats", "web_app": {"url": WEBAPP_URL}}
    assert h.stub.calls_of("deleteWebhook")  # polling: a webhook left over would block getUpdates


async def test_unknown_private_text_gets_a_hint(harness: Harness) -> None:
    h = harness
    rex = h.stub.user(1019, "Rex")
    await h.send(rex.message("hello there"))
    assert rex.last()["text"] == T("unknown_text")


async def test_429_waits_retry_after_and_retries(harness: Harness) -> None:
    h = harness
    sam = h.stub.user(1020, "Sam")
    await adopt(h, sam)
    h.stub.fail_next(2, method="sendPhoto", retry_after=1)
    h.stub.fail_next(1, method="answerCallbackQuery", retry_after=1)
    tap = sam.press("Stats")
    started = time.monotonic()
    await h.send(tap)
    assert time.monotonic() - started >= 3  # waited retry_after each time
    sends = [c.status for c in h.stub.calls_of("sendPhoto")]
    assert sends[-3:] == [429, 429, 200]
    assert sam.last()["caption"].startswith("Sakura · level 1")
    assert len(h.stub.answers(callback_id_of(tap))) == 1


async def test_database_lost_gives_a_friendly_text_and_comes_back(harness: Harness, database) -> None:
    from urllib.parse import urlsplit

    from bot.app import create_dispatcher
    from bot.game import Game
    from tests.bot.tcp_proxy import TcpProxy

    h = harness
    target = urlsplit(database.bot_url)
    proxy = TcpProxy(target.hostname, target.port or 5432)
    await proxy.start()
    game = await Game.connect(database.bot_url.replace(f":{target.port}/", f":{proxy.port}/"),
                              min_size=1, max_size=2)
    dp = create_dispatcher(game, h.settings)
    tom = h.stub.user(1021, "Tom")
    try:
        await dp.feed_raw_update(h.bot, tom.message("/start"))
        assert tom.last()["text"].startswith("Welcome, Tom")
        await dp.feed_raw_update(h.bot, tom.press("Sakura"))
        menu = tom.last()

        await proxy.stop()  # the database goes away
        await dp.feed_raw_update(h.bot, tom.message("/profile"))
        assert tom.last()["text"] == T("err_unavailable")
        tap = tom.press("Events", message=menu)
        await dp.feed_raw_update(h.bot, tap)
        assert answered_once(h, tap) == {"callback_query_id": callback_id_of(tap), "show_alert": True,
                                         "text": T("err_unavailable")}

        await proxy.start()  # and comes back: the next update works
        await dp.feed_raw_update(h.bot, tom.message("/profile"))
        assert tom.last()["caption"].startswith("Sakura · level 1")
    finally:
        await game.close()
        await proxy.stop()


@pytest.mark.parametrize("language_code", ["en", "en-GB", "xx", None])
async def test_any_language_code_gets_texts(harness: Harness, language_code) -> None:
    h = harness
    uma = h.stub.user(1022, "Uma", language_code=language_code)
    await h.send(uma.message("/help"))
    assert uma.last()["text"].startswith("How to play")
