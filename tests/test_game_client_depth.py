"""bot.game's methods for issue 19 (0013) as the bot role: every new call answers, and every
new SQLSTATE maps to its domain error."""

import pytest

from bot import game as g

GROUP = -1001


@pytest.fixture
async def client(database, admin):
    c = await g.Game.connect(database.bot_url, min_size=1, max_size=2)
    yield c
    await c.close()


async def test_the_collection_the_shop_and_gifts(client, admin):
    await client.register_player(1, None, "Ann", "en")
    first = await client.adopt_waifu(1, "sakura")
    second = await client.adopt_waifu(1, "akane")
    assert (await client.set_active_waifu(1, second))["active_waifu_id"] == second
    collection = await client.player_waifus(1)
    assert collection["owned"] == 2 and collection["active_waifu_id"] == second
    assert (await client.shop(1))["coins"] == 0
    with pytest.raises(g.NotEnoughCoins) as short:
        await client.buy_item(1, "flowers", "b1")
    assert short.value.detail == {"coins_needed": 20, "coins": 0, "item_code": "flowers", "quantity": 1}
    with pytest.raises(g.ItemNotFound):
        await client.buy_item(1, "caviar", "b1")
    await admin.execute("SELECT ops.adjust_coins(1, 40, 'test')")
    bought = await client.buy_item(1, "flowers", "b1", 2)
    assert bought["coins"] == 0 and bought["owned"] == 2
    given = await client.give_gift(1, first, "flowers", "g1")
    assert given["changes"]["mood"] == 8 and given["left"] == 1
    with pytest.raises(g.OnCooldown):
        await client.give_gift(1, first, "flowers", "g2")
    with pytest.raises(g.NotInInventory):
        await client.give_gift(1, first, "teddy", "g3")
    assert [(i["code"], i["quantity"]) for i in (await client.inventory(1))["items"]] == [("flowers", 1)]
    board = await client.leaderboard(1, "week")
    assert board["me"]["xp"] == 0


async def test_groups_and_their_events(client, admin):
    await client.register_player(1, None, "Ann", "en")
    await client.register_player(2, None, "Bob", "en")
    await client.adopt_waifu(1, "yuki")
    assert (await client.register_group_member(GROUP, 1, "Friends"))["members"] == 1
    with pytest.raises(g.NotGroupAdmin):
        await client.set_group_events(GROUP, 1, True, False)
    with pytest.raises(g.NotGroupMember):
        await client.set_group_events(GROUP, 2, True, True)
    assert (await client.set_group_events(GROUP, 1, True, True))["events_on"] is True
    await admin.execute("UPDATE game.groups SET next_event_at = now() - interval '1 second'")
    assert await admin.fetchval("SELECT game.group_events_job()") == {"paid": 0, "opened": 1}
    event_id = await admin.fetchval("SELECT id FROM game.group_events")
    joined = await client.join_group_event(1, event_id)
    assert joined["participants"] == 1 and joined["replayed"] is False
    with pytest.raises(g.GroupEventNotOpen):
        await client.join_group_event(1, event_id + 1)
    messages = await client.claim_group_messages("w", 10, 30)
    assert [m["kind"] for m in messages] == ["group_event_open"]
    assert await client.finish_group_messages("w", [m["id"] for m in messages], "sent") == 1
    assert (await client.leaderboard(1, "all", GROUP))["me"]["rank"] == 1
