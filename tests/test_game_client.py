"""bot.game: the SQLSTATE mapping and the calls, against the real database as the bot role."""

import pytest

from bot import game as g


@pytest.fixture
async def client(database, admin):
    c = await g.Game.connect(database.bot_url, min_size=1, max_size=2)
    yield c
    await c.close()


async def test_refusals_map_to_domain_errors_with_detail(client):
    with pytest.raises(g.PlayerNotRegistered):
        await client.player_profile(99)
    await client.register_player(99, None, "Ann", None)
    wid = await client.adopt_waifu(99, "yuki")
    with pytest.raises(g.InvalidArgument) as bad:
        await client.adopt_waifu(99, "nobody")
    assert bad.value.detail["argument"] == "template_code"
    with pytest.raises(g.WaifuNotFound):
        await client.waifu_stats(99, wid + 1000)
    for i in range(10):
        await client.participate(99, wid, "walk", f"k{i}")
    with pytest.raises(g.NotEnoughEnergy) as refused:
        await client.participate(99, wid, "walk", "k-last")
    assert refused.value.detail["energy_needed"] == 10 and refused.value.detail["energy"] == 0
    assert refused.value.http_status == 409


async def test_unreachable_database_is_unavailable():
    with pytest.raises(g.GameUnavailable):
        await g.Game.connect("postgresql://nobody@127.0.0.1:1/none", min_size=1, max_size=1)
