"""A group's language (0014): taken from the admin who turns group events on, changed by an
admin with /group_language en|ru; the group's messages (events, results, confirmations)
are written in it through the gettext catalogues, replies to one member in theirs."""

from __future__ import annotations

from bot import group_sender
from bot.dev.local_botapi import Player, callback_id_of
from bot.texts import Texts, plain
from tests.bot.conftest import Harness

EN, RU = Texts("en"), Texts("ru")
GROUP = -100600


async def start(h: Harness, player: Player, starter: str) -> None:
    await h.send(player.message("/start"))
    await h.send(player.press(starter))


def in_group(h: Harness, player: Player) -> Player:
    return h.stub.user(player.id, player.user["first_name"], chat_type="supergroup", chat_id=GROUP,
                       language_code=player.user.get("language_code"))


async def open_event(h: Harness) -> dict:
    await h.admin.execute("UPDATE game.groups SET next_event_at = now() - interval '1 second'")
    assert (await h.admin.fetchval("SELECT game.group_events_job()"))["opened"] == 1
    assert await group_sender.send_group_messages(h.bot, h.game, "test") == 1
    return h.stub.bot_messages(GROUP)[-1]


async def close_event(h: Harness) -> dict:
    await h.admin.execute("UPDATE game.group_events SET opened_at = now() - interval '10 minutes', closes_at = now() "
                          "WHERE paid_at IS NULL")
    assert (await h.admin.fetchval("SELECT game.group_events_job()"))["paid"] == 1
    assert await group_sender.send_group_messages(h.bot, h.game, "test") == 1
    return h.stub.bot_messages(GROUP)[-1]


async def test_a_group_speaks_the_language_of_the_admin_who_turned_its_events_on(harness: Harness) -> None:
    h = harness
    olga, ann = h.stub.user(6001, "Ольга", language_code="ru"), h.stub.user(6002, "Ann", language_code="en")
    await start(h, olga, "Сакура")
    await start(h, ann, "Yuki")
    olga_g, ann_g = in_group(h, olga), in_group(h, ann)
    h.stub.admins.update({(GROUP, olga.id), (GROUP, ann.id)})
    await h.send(olga_g.message("/group_events on"))
    assert olga_g.last()["text"] == RU("group_events_on")
    assert await h.admin.fetchval("SELECT language FROM game.groups WHERE chat_id = $1", GROUP) == "ru"
    # Another admin turning them on again does not change the group's language.
    await h.send(ann_g.message("/group_events on"))
    assert ann_g.last()["text"] == RU("group_events_on")

    posted = await open_event(h)
    assert posted["text"].startswith("🎉 Групповое событие!")
    assert [b["text"] for b in Player.buttons(posted)] == [RU("btn_group_join")]
    join = ann_g.press(RU("btn_group_join"), message=posted)
    await h.send(join)
    # a toast is for one member: in her own language
    assert h.stub.answers(callback_id_of(join))[0]["text"] == EN("group_joined_toast", count=1)
    result = await close_event(h)
    assert result["text"] == plain("\n".join([RU("group_event_result", count=1),
                                              RU("group_event_result_line", name="Ann", coins=100)]))


async def test_an_admin_changes_the_language_with_group_language(harness: Harness) -> None:
    h = harness
    olga, ann = h.stub.user(6011, "Ольга", language_code="ru"), h.stub.user(6012, "Ann", language_code="en")
    await start(h, olga, "Сакура")
    await start(h, ann, "Yuki")
    olga_g, ann_g = in_group(h, olga), in_group(h, ann)
    h.stub.admins.add((GROUP, olga.id))
    await h.send(olga_g.message("/group_events on"))
    # without an argument: what it is and how to change it, in the group's language
    await h.send(ann_g.message("/group_language"))
    assert ann_g.last()["text"] == RU("group_language_usage", language="Русский")
    # only an admin may change it (the refusal is to one member: in her language)
    await h.send(ann_g.message("/group_language en"))
    assert ann_g.last()["text"] == EN("err_not_group_admin")
    assert await h.admin.fetchval("SELECT language FROM game.groups WHERE chat_id = $1", GROUP) == "ru"
    await h.send(olga_g.message("/group_language EN"))
    assert olga_g.last()["text"] == EN("group_language_set", language="English")
    assert await h.admin.fetchval("SELECT language FROM game.groups WHERE chat_id = $1", GROUP) == "en"
    posted = await open_event(h)
    assert posted["text"].startswith("🎉 Group event! Join within")
    await h.send(olga_g.message("/group_events off"))
    assert olga_g.last()["text"] == EN("group_events_off")
    # outside a group there is no group to set
    await h.send(ann.message("/group_language ru"))
    assert ann.last()["text"] == EN("group_only")


async def test_a_group_without_a_language_gets_the_default(harness: Harness) -> None:
    h = harness
    ann = h.stub.user(6021, "Ann", language_code="en")
    await start(h, ann, "Yuki")
    ann_g = in_group(h, ann)
    await h.send(ann_g.message("/top"))  # a member; the group has no language yet
    assert await h.admin.fetchval("SELECT language FROM game.groups WHERE chat_id = $1", GROUP) is None
    await h.send(ann_g.message("/group_language"))
    assert ann_g.last()["text"] == EN("group_language_usage", language="English")
