"""Issue 19, the player's side: the collection (limit, rarity, the waifu picked for events),
coins from events and the daily reward, the shop, the inventory and gifts. Every error
code, request keys, and coins always equal to the coin ledger."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.conftest import init_connection
from tests.core.conftest import T0, adopt, at, participate, player_with_waifu, refused, register, set_stored

GROUP = -1001


async def coins_match_ledger(admin: asyncpg.Connection) -> None:
    """Every wallet equals the sum of its coin ledger rows, and each row's balance follows
    from the one before."""
    off = await admin.fetch("""
        SELECT w.telegram_id, w.coins, coalesce(sum(l.delta), 0) AS ledger
        FROM game.wallets AS w LEFT JOIN game.coin_ledger AS l ON l.telegram_id = w.telegram_id
        GROUP BY w.telegram_id, w.coins HAVING w.coins <> coalesce(sum(l.delta), 0)""")
    assert [dict(r) for r in off] == []
    broken = await admin.fetchval("""
        SELECT count(*) FROM (
            SELECT l.balance, l.delta,
                   coalesce(lag(l.balance) OVER (PARTITION BY l.telegram_id ORDER BY l.id), 0) AS before
            FROM game.coin_ledger AS l) AS x
        WHERE x.balance <> x.before + x.delta""")
    assert broken == 0
    assert await admin.fetchval("SELECT wallets_off_ledger FROM ops.coins") == 0


async def coins(admin: asyncpg.Connection, telegram_id: int) -> int:
    return await admin.fetchval("SELECT coalesce((SELECT coins FROM game.wallets WHERE telegram_id = $1), 0)",
                                telegram_id)


async def grant(admin: asyncpg.Connection, telegram_id: int, amount: int) -> None:
    await admin.execute("SELECT ops.adjust_coins($1, $2, 'test')", telegram_id, amount)


async def buy(conn: asyncpg.Connection, telegram_id: int, item: str, key: str, quantity: int = 1,
              now: datetime = T0) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.buy_item($1, $2, $3, $4, $5)", telegram_id, item, key, quantity, now)


async def gift(conn: asyncpg.Connection, telegram_id: int, waifu_id: int, item: str | None, key: str,
               chat_id: int | None = None, now: datetime = T0) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.give_gift($1, $2, $3, $4, $5, $6)", telegram_id, waifu_id, item, key,
                               chat_id, now)


async def member(conn: asyncpg.Connection, telegram_id: int, chat_id: int = GROUP) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.register_group_member($1, $2, 'Group', $3)", chat_id, telegram_id, T0)


# -- the collection ---------------------------------------------------------------------------------

async def test_templates_have_a_rarity_and_a_player_collects_several(bot_conn, admin):
    templates = await bot_conn.fetchval("SELECT api.waifu_templates('ru')")
    assert {t["code"]: t["rarity"] for t in templates} == {
        "sakura": "common", "hana": "common", "yuki": "rare", "rin": "rare", "akane": "epic"}
    await register(bot_conn, 1)
    first = await adopt(bot_conn, 1, "sakura")
    second = await adopt(bot_conn, 1, "akane")
    collection = await bot_conn.fetchval("SELECT api.player_waifus(1, $1)", T0)
    assert collection["owned"] == 2 and collection["max"] == 5
    assert [(w["waifu_id"], w["rarity"], w["active"]) for w in collection["waifus"]] == [
        (first, "common", True), (second, "epic", False)]
    assert {t["code"]: t["waifu_id"] for t in collection["templates"]} == {
        "akane": second, "hana": None, "rin": None, "sakura": first, "yuki": None}
    picked = await bot_conn.fetchval("SELECT api.set_active_waifu(1, $1)", second)
    assert picked["active_waifu_id"] == second
    collection = await bot_conn.fetchval("SELECT api.player_waifus(1, $1)", T0)
    assert collection["active_waifu_id"] == second
    assert [w["active"] for w in collection["waifus"]] == [False, True]
    assert (await bot_conn.fetchval("SELECT api.player_profile(1, $1)", T0))["active_waifu_id"] == second


async def test_the_collection_limit_is_a_setting(bot_conn, admin):
    await admin.execute("SELECT ops.set_economy(waifus_per_player => 2)")
    await register(bot_conn, 1)
    await adopt(bot_conn, 1, "sakura")
    await adopt(bot_conn, 1, "yuki")
    detail = await refused(admin, "WF008", adopt(bot_conn, 1, "rin"))
    assert detail == {"limit": "waifus_per_player", "max": 2, "owned": 2, "template_code": "rin"}
    # the same template twice is still its own refusal
    detail = await refused(admin, "WF008", adopt(bot_conn, 1, "sakura"))
    assert detail["template_code"] == "sakura" and detail["limit"] == 1
    await refused(admin, "WF006", admin.fetchval("SELECT ops.set_economy(waifus_per_player => 0)"))
    await refused(admin, "WF006", admin.fetchval(
        "SELECT ops.set_economy(group_event_window => '5 hours', group_event_every => '4 hours')"))


async def test_set_active_waifu_refuses_another_players_waifu(bot_conn, admin):
    await player_with_waifu(bot_conn, 1)
    other = await player_with_waifu(bot_conn, 2)
    assert await refused(admin, "WF004", bot_conn.fetchval("SELECT api.set_active_waifu(1, $1)", other)) == {
        "waifu_id": other}
    await refused(admin, "WF005", bot_conn.fetchval("SELECT api.set_active_waifu(3, $1)", other))
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.set_active_waifu(1, NULL)"))
    await refused(admin, "WF005", bot_conn.fetchval("SELECT api.player_waifus(3, $1)", T0))


# -- coins ------------------------------------------------------------------------------------------

async def test_events_pay_coins_into_the_wallet_and_the_ledger_once(bot_conn, admin):
    wid = await player_with_waifu(bot_conn, 1)
    first = await participate(bot_conn, 1, wid, "walk", "w1", T0)
    assert first["changes"]["coins"] == 2 and first["coins"] == 2
    again = await participate(bot_conn, 1, wid, "walk", "w1", at(minutes=1))
    assert again["replayed"] is True and again["changes"]["coins"] == 2 and again["coins"] == 2
    await participate(bot_conn, 1, wid, "cafe", "c1", at(minutes=2))
    assert await coins(admin, 1) == 7
    rows = await admin.fetch("SELECT delta, balance, reason, ref FROM game.coin_ledger ORDER BY id")
    assert [tuple(r) for r in rows] == [(2, 2, "event", "w1"), (5, 7, "event", "c1")]
    await admin.execute("SELECT ops.set_event_coins('walk', 0)")
    assert (await participate(bot_conn, 1, wid, "walk", "w2", at(minutes=3)))["changes"]["coins"] == 0
    assert await admin.fetchval("SELECT count(*) FROM game.coin_ledger") == 2
    await refused(admin, "WF002", admin.fetchval("SELECT ops.set_event_coins('nope', 1)"))
    await refused(admin, "WF006", admin.fetchval("SELECT ops.set_event_coins('walk', -1)"))
    await coins_match_ledger(admin)


async def test_the_daily_reward_pays_coins_by_the_streak(bot_conn, admin):
    await player_with_waifu(bot_conn, 1)
    settings = await bot_conn.fetchval("SELECT api.player_settings(1, $1)", T0)
    assert settings["daily"]["next_reward"]["coins"] == 10
    day1 = await bot_conn.fetchval("SELECT api.claim_daily(1, 'd1', $1)", T0)
    assert day1["reward"]["coins"] == 10 and day1["coins"] == 10
    day2 = await bot_conn.fetchval("SELECT api.claim_daily(1, 'd2', $1)", T0 + timedelta(days=1))
    assert day2["reward"]["coins"] == 15 and day2["coins"] == 25
    replay = await bot_conn.fetchval("SELECT api.claim_daily(1, 'd2', $1)", T0 + timedelta(days=1, hours=1))
    assert replay["replayed"] is True and replay["coins"] == 25
    assert await coins(admin, 1) == 25
    assert await admin.fetchval("SELECT game.daily_coins(30)") == 40
    await coins_match_ledger(admin)


async def test_operators_adjust_coins_within_the_ledger(admin, ops_conn, bot_conn):
    await register(bot_conn, 1)
    assert (await ops_conn.fetchval("SELECT ops.adjust_coins(1, 50, 'refund')"))["coins"] == 50
    assert (await ops_conn.fetchval("SELECT ops.adjust_coins(1, -20, 'clawback')"))["coins"] == 30
    assert await refused(admin, "WF009", ops_conn.fetchval("SELECT ops.adjust_coins(1, -31, 'too much')")) == {
        "coins_needed": 31, "coins": 30}
    await refused(admin, "WF006", ops_conn.fetchval("SELECT ops.adjust_coins(1, 0, 'x')"))
    await refused(admin, "WF006", ops_conn.fetchval("SELECT ops.adjust_coins(1, 5, NULL)"))
    await refused(admin, "WF005", ops_conn.fetchval("SELECT ops.adjust_coins(9, 5, 'x')"))
    await coins_match_ledger(admin)


# -- the shop ---------------------------------------------------------------------------------------

async def test_shop_lists_items_in_the_players_language(bot_conn, admin):
    await register(bot_conn, 1)
    await bot_conn.execute("SELECT api.set_player_setting(1, 'language', 'ru', $1)", T0)
    shop = await bot_conn.fetchval("SELECT api.shop(1)")
    assert shop["coins"] == 0
    assert [(i["code"], i["price"]) for i in shop["items"]] == [
        ("chocolate", 15), ("flowers", 20), ("teddy", 60), ("necklace", 200)]
    assert shop["items"][1]["name"] == "Цветы" and shop["items"][1]["mood"] == 8
    assert shop["items"][1]["cooldown_seconds"] == 3600
    await refused(admin, "WF005", bot_conn.fetchval("SELECT api.shop(2)"))
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.shop(NULL)"))


async def test_operators_create_translate_and_stop_selling_items(admin, ops_conn, bot_conn):
    item = await ops_conn.fetchval("SELECT ops.create_item('cake', 'Cake', 30, 5, 1, 10, '2 hours', 'Sweet.')")
    assert (item["price"], item["energy_delta"], item["on_sale"]) == (30, 10, True)
    await ops_conn.execute("SELECT ops.set_item_translation('cake', 'ru', 'Торт')")
    await register(bot_conn, 1)
    await bot_conn.execute("SELECT api.set_player_setting(1, 'language', 'ru', $1)", T0)
    names = {i["code"]: i["name"] for i in (await bot_conn.fetchval("SELECT api.shop(1)"))["items"]}
    assert names["cake"] == "Торт"
    await ops_conn.execute("SELECT ops.stop_selling_item('cake')")
    assert "cake" not in {i["code"] for i in (await bot_conn.fetchval("SELECT api.shop(1)"))["items"]}
    assert await admin.fetchval("SELECT on_sale FROM ops.items WHERE code = 'cake'") is False
    for sql, code in [("SELECT ops.create_item('Bad Code', 'X', 1, 0, 0, 0, '0')", "WF006"),
                      ("SELECT ops.create_item('x', 'X', 0, 0, 0, 0, '0')", "WF006"),
                      ("SELECT ops.create_item('x', 'X', 1, 101, 0, 0, '0')", "WF006"),
                      ("SELECT ops.create_item('x', 'X', 1, 0, 0, -1, '0')", "WF006"),
                      ("SELECT ops.create_item('x', 'X', 1, 0, 0, 0, '-1 hour')", "WF006"),
                      ("SELECT ops.create_item('x', '', 1, 0, 0, 0, '0')", "WF006"),
                      ("SELECT ops.stop_selling_item('nope')", "WF010"),
                      ("SELECT ops.set_item_translation('nope', 'ru', 'X')", "WF010"),
                      ("SELECT ops.set_item_translation('cake', 'en', 'X')", "WF006")]:
        await refused(admin, code, ops_conn.fetchval(sql))


async def test_buy_takes_coins_once_per_request_key(bot_conn, admin):
    await register(bot_conn, 1)
    await grant(admin, 1, 100)
    bought = await buy(bot_conn, 1, "flowers", "b1", 2)
    assert (bought["coins_spent"], bought["coins"], bought["owned"], bought["replayed"]) == (40, 60, 2, False)
    again = await buy(bot_conn, 1, "flowers", "b1", 2, at(minutes=5))
    assert again == bought | {"replayed": True}
    assert await coins(admin, 1) == 60
    inventory = await bot_conn.fetchval("SELECT api.inventory(1)")
    assert inventory["coins"] == 60 and [(i["code"], i["quantity"]) for i in inventory["items"]] == [("flowers", 2)]
    # the same key for another purchase
    assert (await refused(admin, "WF007", buy(bot_conn, 1, "teddy", "b1")))["item_code"] == "flowers"
    await refused(admin, "WF007", buy(bot_conn, 1, "flowers", "b1", 1))
    await coins_match_ledger(admin)


async def test_buy_refusals(bot_conn, admin):
    await register(bot_conn, 1)
    await grant(admin, 1, 50)
    assert await refused(admin, "WF009", buy(bot_conn, 1, "teddy", "k")) == {
        "coins_needed": 60, "coins": 50, "item_code": "teddy", "quantity": 1}
    await refused(admin, "WF009", buy(bot_conn, 1, "flowers", "k", 3))
    assert await refused(admin, "WF010", buy(bot_conn, 1, "caviar", "k")) == {"item_code": "caviar"}
    await admin.execute("SELECT ops.stop_selling_item('flowers')")
    await refused(admin, "WF010", buy(bot_conn, 1, "flowers", "k"))
    await refused(admin, "WF005", buy(bot_conn, 2, "chocolate", "k"))
    for quantity in (0, 100, -1):
        await refused(admin, "WF006", buy(bot_conn, 1, "chocolate", "k", quantity))
    await refused(admin, "WF006", buy(bot_conn, 1, "chocolate", ""))
    await refused(admin, "WF006", buy(bot_conn, 1, "x" * 33, "k"))
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.buy_item(1, 'chocolate', NULL)"))


# -- gifts ------------------------------------------------------------------------------------------

async def test_a_gift_to_ones_own_waifu_applies_its_effect_once(bot_conn, admin):
    wid = await player_with_waifu(bot_conn, 1)
    await set_stored(admin, wid, clock=at(minutes=-10), energy=50, mood=95, loyalty=10)
    await grant(admin, 1, 100)
    await buy(bot_conn, 1, "chocolate", "b", 2)
    given = await gift(bot_conn, 1, wid, "chocolate", "g1")
    # 50 + 10 restored + 15; mood clamped; loyalty + 1
    assert (given["energy"], given["mood"], given["loyalty"]) == (75, 99, 11)
    assert given["changes"] == {"energy": 15, "mood": 4, "loyalty": 1}
    assert given["left"] == 1 and given["standing"] == 0 and given["replayed"] is False
    replay = await gift(bot_conn, 1, wid, "chocolate", "g1", now=at(minutes=1))
    assert replay == given | {"replayed": True}
    assert await admin.fetchval("SELECT quantity FROM game.inventory WHERE telegram_id = 1") == 1
    # on cooldown for her: 30 minutes
    detail = await refused(admin, "WF003", gift(bot_conn, 1, wid, "chocolate", "g2", now=at(minutes=10)))
    assert detail["item_code"] == "chocolate" and detail["remaining_seconds"] == 20 * 60
    assert (await gift(bot_conn, 1, wid, "chocolate", "g2", now=at(minutes=30)))["left"] == 0
    # none left
    assert (await refused(admin, "WF011", gift(bot_conn, 1, wid, "chocolate", "g3", now=at(hours=2))))[
        "quantity"] == 0
    await refused(admin, "WF007", gift(bot_conn, 1, wid, "flowers", "g1", now=at(hours=2)))
    await refused(admin, "WF010", gift(bot_conn, 1, wid, "caviar", "g4"))
    await coins_match_ledger(admin)


async def test_another_players_waifu_only_in_a_group_where_both_are_members(bot_conn, admin):
    await player_with_waifu(bot_conn, 1)
    theirs = await player_with_waifu(bot_conn, 2, "yuki")
    await set_stored(admin, theirs, clock=T0, loyalty=40, mood=40, xp=7)
    await register(bot_conn, 3)
    await grant(admin, 1, 100)
    await buy(bot_conn, 1, "flowers", "b", 3)
    # outside a group she is unknown
    assert await refused(admin, "WF004", gift(bot_conn, 1, theirs, "flowers", "g")) == {"waifu_id": theirs}
    await member(bot_conn, 1)
    # the owner is not a member of that group
    assert (await refused(admin, "WF012", gift(bot_conn, 1, theirs, "flowers", "g", GROUP)))["telegram_id"] == 2
    await member(bot_conn, 2)
    # a group the giver is not in
    await member(bot_conn, 2, -1002)
    assert (await refused(admin, "WF012", gift(bot_conn, 1, theirs, "flowers", "g", -1002)))["telegram_id"] == 1
    await refused(admin, "WF006", gift(bot_conn, 1, theirs, "flowers", "g", 5))
    wallet_before = await admin.fetchrow("SELECT coins, xp_total FROM game.wallets WHERE telegram_id = 2")

    given = await gift(bot_conn, 1, theirs, "flowers", "g", GROUP)
    assert given["owner_id"] == 2 and given["giver_id"] == 1 and given["chat_id"] == GROUP
    assert given["changes"] == {"energy": 0, "mood": 8, "loyalty": 2}
    assert given["standing"] == 2
    stats = await admin.fetchval("SELECT dynamic FROM game.waifus WHERE id = $1", theirs)
    assert (stats["mood"], stats["loyalty"], stats["xp"]) == (48, 42, 7)
    # the receiver gets nothing but the item's effect on her
    assert await admin.fetchrow("SELECT coins, xp_total FROM game.wallets WHERE telegram_id = 2") == wallet_before
    assert (await bot_conn.fetchval("SELECT api.inventory(1)"))["standing"] == 2
    # player 3 has no flowers
    await member(bot_conn, 3)
    await refused(admin, "WF011", gift(bot_conn, 3, theirs, "flowers", "g", GROUP, at(hours=2)))


async def test_gift_argument_refusals(bot_conn, admin):
    wid = await player_with_waifu(bot_conn, 1)
    await refused(admin, "WF005", gift(bot_conn, 9, wid, "flowers", "g"))
    await refused(admin, "WF004", gift(bot_conn, 1, wid + 100, "flowers", "g"))
    await refused(admin, "WF006", gift(bot_conn, 1, 0, "flowers", "g"))
    await refused(admin, "WF006", gift(bot_conn, 1, wid, "flowers", "a\x01b"))
    await refused(admin, "WF006", gift(bot_conn, 1, wid, None, "g"))


# -- concurrency ------------------------------------------------------------------------------------

@pytest.fixture
async def bot_pool(database, admin):
    pool = await asyncpg.create_pool(database.clock_bot_url, min_size=8, max_size=8, init=init_connection)
    yield pool
    await pool.close()


async def test_concurrent_buys_never_overspend(bot_pool, admin):
    await register(admin, 1)
    await grant(admin, 1, 100)  # five chocolates' worth and a bit: 6 * 15 = 90, the 7th is refused

    async def one(i: int) -> str:
        try:
            await bot_pool.fetchval("SELECT api.buy_item(1, 'chocolate', $1, 1, $2)", f"k{i % 10}", T0)
            return "ok"
        except asyncpg.PostgresError as exc:
            return exc.sqlstate or "?"

    outcomes = await asyncio.gather(*(one(i) for i in range(40)))
    # ten keys, each bought once at most; six purchases fit in 100 coins
    assert set(outcomes) <= {"ok", "WF009"}
    assert await admin.fetchval("SELECT count(*) FROM game.purchases") == 6
    assert await coins(admin, 1) == 10
    assert await admin.fetchval("SELECT quantity FROM game.inventory") == 6
    await coins_match_ledger(admin)


async def test_concurrent_gifts_apply_once_each_and_never_below_the_inventory(bot_pool, admin):
    wid = await player_with_waifu(admin, 1)
    await set_stored(admin, wid, clock=T0, mood=0, loyalty=0)
    await grant(admin, 1, 1000)
    await admin.execute("SELECT ops.create_item('pebble', 'Pebble', 1, 1, 1, 0, '0')")
    await admin.fetchval("SELECT api.buy_item(1, 'pebble', 'buy', 5, $1)", T0)

    async def one(i: int) -> str:
        try:
            await bot_pool.fetchval("SELECT api.give_gift(1, $1, 'pebble', $2, NULL, $3)", wid, f"g{i % 8}", T0)
            return "ok"
        except asyncpg.PostgresError as exc:
            return exc.sqlstate or "?"

    outcomes = await asyncio.gather(*(one(i) for i in range(32)))
    assert set(outcomes) <= {"ok", "WF011"}
    assert await admin.fetchval("SELECT count(*) FROM game.gifts") == 5
    assert await admin.fetchval("SELECT quantity FROM game.inventory") == 0
    stats = await admin.fetchval("SELECT dynamic FROM game.waifus WHERE id = $1", wid)
    assert (stats["mood"], stats["loyalty"]) == (5, 5)
