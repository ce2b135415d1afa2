"""The bot-facing api functions besides the rules: players, templates, adoption, profiles."""

from tests.core.conftest import T0, adopt, at, participate, refused, register, snapshot, stats


async def test_register_player_is_an_idempotent_upsert(admin, bot_conn):
    first = await bot_conn.fetchval("SELECT api.register_player(42, 'ann', 'Ann', 'en')")
    assert {k: first[k] for k in ("telegram_id", "username", "first_name", "language_code", "waifus")} == {
        "telegram_id": 42, "username": "ann", "first_name": "Ann", "language_code": "en", "waifus": []}
    assert first == await bot_conn.fetchval("SELECT api.player_profile(42)")
    row = await admin.fetchrow("SELECT * FROM game.players")

    again = await bot_conn.fetchval("SELECT api.register_player(42, 'ann', 'Ann', 'en')")
    assert again == first
    assert await admin.fetchrow("SELECT * FROM game.players") == row  # not even updated_at moved

    renamed = await bot_conn.fetchval("SELECT api.register_player(42, NULL, 'Anna', 'de')")
    assert (renamed["username"], renamed["first_name"], renamed["language_code"]) == (None, "Anna", "de")
    assert renamed["registered_at"] == first["registered_at"]
    rows = await admin.fetch("SELECT * FROM game.players")
    assert len(rows) == 1 and rows[0]["first_name"] == "Anna" and rows[0]["updated_at"] >= row["updated_at"]


async def test_register_player_keeps_the_waifus(admin, bot_conn):
    await register(bot_conn, 5)
    wid = await adopt(bot_conn, 5, "yuki")
    profile = await register(bot_conn, 5, username="other")
    assert [w["waifu_id"] for w in profile["waifus"]] == [wid]


async def test_waifu_templates_lists_the_starter_catalogue(bot_conn):
    templates = await bot_conn.fetchval("SELECT api.waifu_templates()")
    assert [t["code"] for t in templates] == ["akane", "hana", "rin", "sakura", "yuki"]  # ordered by name
    assert all(set(t) == {"code", "name", "description", "rarity"} and t["name"] and t["description"]
               for t in templates)


async def test_adopt_builds_a_collection_of_one_waifu_per_template(admin, bot_conn):
    await register(bot_conn, 1)
    a, b = await adopt(bot_conn, 1, "rin"), await adopt(bot_conn, 1, "yuki")
    assert a != b
    assert await admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 1") == 2
    # the short positional form of the contract
    c = await bot_conn.fetchval("SELECT api.adopt_waifu(1, 'hana')")
    assert (await stats(bot_conn, c, T0))["name"] == "Hana"
    # a template already owned: WF008 with the numbers, nothing adopted
    detail = await refused(admin, "WF008", adopt(bot_conn, 1, "rin"))
    assert detail == {"template_code": "rin", "waifu_id": a, "limit": 1}
    await refused(admin, "WF008", adopt(bot_conn, 1, "rin", "a-new-key"))


async def test_adopt_with_request_key_adopts_once(admin, bot_conn):
    await register(bot_conn, 1)
    await register(bot_conn, 2)
    a = await adopt(bot_conn, 1, "rin", "adopt-1")
    before = await snapshot(admin)
    assert await adopt(bot_conn, 1, "rin", "adopt-1") == a
    assert await snapshot(admin) == before
    # keys belong to a player: another player's identical key is a different action
    b = await adopt(bot_conn, 2, "rin", "adopt-1")
    assert b != a
    c = await adopt(bot_conn, 1, "yuki", "adopt-2")
    assert c not in (a, b)
    assert await admin.fetchval("SELECT count(*) FROM game.waifus") == 3


async def test_player_profile_lists_every_waifu_with_effective_stats(admin, bot_conn):
    await register(bot_conn, 1)
    await register(bot_conn, 2)
    a, b = await adopt(bot_conn, 1, "akane"), await adopt(bot_conn, 1, "yuki")
    await adopt(bot_conn, 2, "rin")
    await participate(bot_conn, 1, b, "training", "k", T0)
    now = at(minutes=7, seconds=7)
    profile = await bot_conn.fetchval("SELECT api.player_profile(1, $1)", now)
    assert profile["waifus"] == [await stats(bot_conn, a, now), await stats(bot_conn, b, now)]
    assert profile["waifus"][1]["energy"] == 77
