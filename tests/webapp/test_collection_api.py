"""The Mini App's collection, shop and leaderboard API (issue 19) against the real database:
thin callers of api.player_waifus / set_active_waifu / adopt_waifu / shop / inventory /
buy_item / give_gift / leaderboard. Each test that can plays the attacker: crafted ids and
codes, another player's waifu, a replayed Idempotency-Key with another body, bad auth."""

from __future__ import annotations

import asyncio

import pytest

from tests.webapp.conftest import new_player
from tests.webapp.initdata import auth_header, init_data
from tests.webapp.test_api import assert_no_store, error_of

ANN, BOB = 1101, 1102


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def waifu_count(admin, owner: int) -> int:
    return await admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = $1", owner)


async def coins(admin, telegram_id: int) -> int:
    return await admin.fetchval("SELECT coalesce((SELECT coins FROM game.wallets WHERE telegram_id = $1), 0)",
                                telegram_id)


async def snapshot(admin) -> list:
    """Everything an action of these routes could change."""
    return [await admin.fetch(f"SELECT * FROM game.{table} ORDER BY 1, 2")
            for table in ("waifus", "players", "wallets", "inventory", "purchases", "gifts", "coin_ledger")]


# -- the collection ------------------------------------------------------------------------


async def test_the_collection_lists_owned_and_adoptable_and_an_adoption_applies_once(client, game, admin):
    sakura = await new_player(game, ANN)
    resp = await client.get("/api/waifus", headers=auth_header(ANN))
    assert resp.status == 200
    assert_no_store(resp)
    c = await resp.json()
    assert (c["owned"], c["max"], c["active_waifu_id"]) == (1, 5, sakura)
    [w] = c["waifus"]
    assert (w["waifu_id"], w["name"], w["rarity"], w["active"], w["energy"]) == (sakura, "Sakura", "common", True, 100)
    templates = {t["code"]: t for t in c["templates"]}
    assert set(templates) == {"sakura", "hana", "yuki", "rin", "akane"}
    assert templates["sakura"]["waifu_id"] == sakura and templates["yuki"]["waifu_id"] is None
    assert templates["akane"]["rarity"] == "epic"

    first = await client.post("/api/templates/yuki/adopt", headers={**auth_header(ANN), **key("adopt-yuki-1")})
    assert first.status == 200
    assert_no_store(first)
    yuki = (await first.json())["waifu_id"]
    assert await first.json() == {"waifu_id": yuki, "template_code": "yuki"}
    # A retry of the same request (a lost answer, a double tap) adopts once.
    again = await client.post("/api/templates/yuki/adopt", headers={**auth_header(ANN), **key("adopt-yuki-1")})
    assert (again.status, (await again.json())["waifu_id"]) == (200, yuki)
    assert await waifu_count(admin, ANN) == 2
    assert await admin.fetchval("SELECT adopt_key FROM game.waifus WHERE id = $1", yuki) == "web:adopt:adopt-yuki-1"

    c = await (await client.get("/api/waifus", headers=auth_header(ANN))).json()
    assert c["owned"] == 2 and [w["waifu_id"] for w in c["waifus"]] == [sakura, yuki]
    assert {t["code"]: t["waifu_id"] for t in c["templates"]}["yuki"] == yuki


async def test_a_replayed_key_for_another_template_and_a_second_copy_are_refused(client, game, admin):
    await new_player(game, ANN)
    assert (await client.post("/api/templates/yuki/adopt",
                              headers={**auth_header(ANN), **key("adopt-key-01")})).status == 200
    before = await snapshot(admin)
    # The same key with another body (another template): refused, nothing adopted.
    resp = await client.post("/api/templates/hana/adopt", headers={**auth_header(ANN), **key("adopt-key-01")})
    assert resp.status == 409
    assert (await error_of(resp))["code"] == "choice_already_made"
    # A template already owned, with a fresh key: refused.
    resp = await client.post("/api/templates/yuki/adopt", headers={**auth_header(ANN), **key("adopt-key-02")})
    assert resp.status == 409
    err = await error_of(resp)
    assert err["code"] == "limit_reached" and err["message"].startswith("She is already yours")
    assert await snapshot(admin) == before


async def test_the_collection_limit(client, game, admin):
    await new_player(game, ANN)
    await admin.execute("SELECT ops.set_economy(waifus_per_player => 2)")
    assert (await client.post("/api/templates/rin/adopt", headers={**auth_header(ANN), **key("adopt-rin-1")})).status \
        == 200
    resp = await client.post("/api/templates/akane/adopt", headers={**auth_header(ANN), **key("adopt-akane-1")})
    assert resp.status == 409
    err = await error_of(resp)
    assert err["code"] == "limit_reached" and err["detail"]["max"] == 2
    assert err["message"] == "Your collection is full (2 companions)."
    assert await waifu_count(admin, ANN) == 2
    c = await (await client.get("/api/waifus", headers=auth_header(ANN))).json()
    assert (c["owned"], c["max"]) == (2, 2)


@pytest.mark.parametrize("code, status, error", [
    ("nobody", 400, "invalid_argument"),        # well formed, unknown: the database says so
    ("Yuki", 400, "invalid_argument"),          # refused before any call from here on
    ("yuki%00", 400, "invalid_argument"),
    ("y" * 33, 400, "invalid_argument"),
    ("%D1%8E%D0%BA%D0%B8", 400, "invalid_argument"),
    ("yuki'--", 400, "invalid_argument"),
])
async def test_bad_template_codes_are_4xx_and_adopt_nothing(client, game, admin, code, status, error):
    await new_player(game, ANN)
    before = await snapshot(admin)
    resp = await client.post(f"/api/templates/{code}/adopt", headers={**auth_header(ANN), **key("adopt-bad-01")})
    assert resp.status == status
    assert (await error_of(resp))["code"] == error
    assert await snapshot(admin) == before


async def test_picking_the_active_waifu_only_among_ones_own(client, game, admin):
    sakura = await new_player(game, ANN)
    yuki = await game.adopt_waifu(ANN, "yuki")
    bobs = await new_player(game, BOB, "Bob", "hana")
    resp = await client.post(f"/api/waifus/{yuki}/active", headers=auth_header(ANN))
    assert resp.status == 200
    assert_no_store(resp)
    assert await resp.json() == {"telegram_id": ANN, "active_waifu_id": yuki, "name": "Yuki"}
    c = await (await client.get("/api/waifus", headers=auth_header(ANN))).json()
    assert c["active_waifu_id"] == yuki
    assert {w["waifu_id"]: w["active"] for w in c["waifus"]} == {sakura: False, yuki: True}
    # Twice is the same state (idempotent by value).
    assert (await client.post(f"/api/waifus/{yuki}/active", headers=auth_header(ANN))).status == 200

    # The attacker: Bob's waifu, and ids that are no waifu at all.
    before = await snapshot(admin)
    resp = await client.post(f"/api/waifus/{bobs}/active", headers=auth_header(ANN))
    assert resp.status == 404
    assert (await error_of(resp))["code"] == "waifu_not_found"
    for bad in ("0", "-1", "1e3", "9" * 30, "%20", "abc", str(2**63)):
        resp = await client.post(f"/api/waifus/{bad}/active", headers=auth_header(ANN))
        assert resp.status == 404, bad
        assert (await error_of(resp))["code"] == "waifu_not_found"
    assert await snapshot(admin) == before
    assert await admin.fetchval("SELECT active_waifu_id FROM game.players WHERE telegram_id = $1", BOB) is None


# -- the shop, the inventory, gifts ------------------------------------------------------------


async def test_shop_buy_once_per_key_inventory_and_a_gift_to_her(client, game, admin):
    sakura = await new_player(game, ANN)
    await admin.execute("SELECT ops.adjust_coins($1, 50, 'test')", ANN)
    shop = await (await client.get("/api/shop", headers=auth_header(ANN))).json()
    assert shop["coins"] == 50
    items = {i["code"]: i for i in shop["items"]}
    assert (items["flowers"]["price"], items["flowers"]["mood"], items["flowers"]["loyalty"]) == (20, 8, 2)
    assert [i["price"] for i in shop["items"]] == sorted(i["price"] for i in shop["items"])

    headers = {**auth_header(ANN), **key("buy-flowers-1")}
    first = await client.post("/api/shop/flowers/buy", headers=headers)
    assert first.status == 200
    assert_no_store(first)
    bought = await first.json()
    assert (bought["coins"], bought["owned"], bought["replayed"], bought["item"]["name"]) == (30, 1, False, "Flowers")
    again = await client.post("/api/shop/flowers/buy", headers=headers)
    assert (await again.json())["replayed"] is True
    assert await coins(admin, ANN) == 30
    # The same key with another body (another item): refused, nothing spent.
    resp = await client.post("/api/shop/chocolate/buy", headers=headers)
    assert resp.status == 409
    assert (await error_of(resp))["code"] == "request_key_conflict"
    assert await coins(admin, ANN) == 30
    # Coins short: a clear refusal with the numbers.
    resp = await client.post("/api/shop/necklace/buy", headers={**auth_header(ANN), **key("buy-necklace")})
    assert resp.status == 409
    err = await error_of(resp)
    assert err["code"] == "not_enough_coins"
    assert err["message"] == "Not enough coins: this costs 200 🪙, you have 30."
    assert await coins(admin, ANN) == 30
    # The ledger agrees with the wallet.
    assert await admin.fetchval("SELECT sum(delta) FROM game.coin_ledger WHERE telegram_id = $1", ANN) == 30

    inventory = await (await client.get("/api/inventory", headers=auth_header(ANN))).json()
    assert (inventory["coins"], [(i["code"], i["quantity"]) for i in inventory["items"]]) == (30, [("flowers", 1)])

    await admin.execute("UPDATE game.waifus SET dynamic = dynamic || '{\"mood\": 50, \"loyalty\": 50}' WHERE id = $1",
                        sakura)
    gift_headers = {**auth_header(ANN), **key("gift-flowers-1")}
    resp = await client.post(f"/api/waifus/{sakura}/gifts/flowers", headers=gift_headers)
    assert resp.status == 200
    given = await resp.json()
    assert (given["waifu_id"], given["mood"], given["loyalty"], given["replayed"]) == (sakura, 58, 52, False)
    assert given["changes"]["mood"] == 8
    assert (await (await client.post(f"/api/waifus/{sakura}/gifts/flowers", headers=gift_headers)).json())[
        "replayed"] is True
    assert (await (await client.get("/api/inventory", headers=auth_header(ANN))).json())["items"] == []
    # The gift's key replayed for another item: refused, nothing changed.
    before = await snapshot(admin)
    resp = await client.post(f"/api/waifus/{sakura}/gifts/chocolate", headers=gift_headers)
    assert resp.status == 409
    assert (await error_of(resp))["code"] == "request_key_conflict"
    assert await snapshot(admin) == before
    # Again to her at once: the item's cooldown; to another of hers: none left. Both refused.
    resp = await client.post(f"/api/waifus/{sakura}/gifts/flowers", headers={**auth_header(ANN), **key("gift-2x-0001")})
    assert resp.status == 409
    assert (await error_of(resp))["code"] == "on_cooldown"
    yuki = await game.adopt_waifu(ANN, "yuki")
    resp = await client.post(f"/api/waifus/{yuki}/gifts/flowers", headers={**auth_header(ANN), **key("gift-2x-0002")})
    assert resp.status == 409
    assert (await error_of(resp))["code"] == "not_in_inventory"


async def test_concurrent_retries_of_one_purchase_and_one_adoption_apply_once(client, game, admin):
    await new_player(game, ANN)
    await admin.execute("SELECT ops.adjust_coins($1, 100, 'test')", ANN)
    headers = {**auth_header(ANN), **key("same-buy-key")}
    answers = await asyncio.gather(*(client.post("/api/shop/teddy/buy", headers=headers) for _ in range(4)))
    bodies = [await a.json() for a in answers]
    assert [a.status for a in answers] == [200] * 4
    assert sorted(b["replayed"] for b in bodies) == [False, True, True, True]
    assert await coins(admin, ANN) == 40
    assert await admin.fetchval("SELECT quantity FROM game.inventory WHERE telegram_id = $1", ANN) == 1
    headers = {**auth_header(ANN), **key("same-adopt-key")}
    answers = await asyncio.gather(*(client.post("/api/templates/rin/adopt", headers=headers) for _ in range(4)))
    assert [a.status for a in answers] == [200] * 4
    assert len({(await a.json())["waifu_id"] for a in answers}) == 1
    assert await waifu_count(admin, ANN) == 2


async def test_a_gift_to_another_players_waifu_is_404_outside_a_group(client, game, admin):
    await new_player(game, ANN)
    bobs = await new_player(game, BOB, "Bob", "hana")
    await admin.execute("SELECT ops.adjust_coins($1, 50, 'test')", ANN)
    assert (await client.post("/api/shop/flowers/buy", headers={**auth_header(ANN), **key("buy-1-flowers")})).status \
        == 200
    before = await snapshot(admin)
    resp = await client.post(f"/api/waifus/{bobs}/gifts/flowers", headers={**auth_header(ANN), **key("gift-to-bob")})
    assert resp.status == 404
    assert (await error_of(resp))["code"] == "waifu_not_found"
    assert await snapshot(admin) == before


@pytest.mark.parametrize("code", ["unicorn", "Flowers", "flowers%00", "f" * 33, "flowers;drop", "%F0%9F%8C%B9"])
async def test_bad_item_codes_are_404_and_buy_nothing(client, game, admin, code):
    wid = await new_player(game, ANN)
    await admin.execute("SELECT ops.adjust_coins($1, 50, 'test')", ANN)
    before = await snapshot(admin)
    for path in (f"/api/shop/{code}/buy", f"/api/waifus/{wid}/gifts/{code}"):
        resp = await client.post(path, headers={**auth_header(ANN), **key("bad-item-01")})
        assert resp.status == 404, path
        assert (await error_of(resp))["code"] == "item_not_found"
    assert await snapshot(admin) == before


async def test_an_item_off_sale_cannot_be_bought(client, game, admin):
    await new_player(game, ANN)
    await admin.execute("SELECT ops.adjust_coins($1, 500, 'test')", ANN)
    await admin.execute("UPDATE game.items SET on_sale = false WHERE code = 'teddy'")
    shop = await (await client.get("/api/shop", headers=auth_header(ANN))).json()
    assert "teddy" not in {i["code"] for i in shop["items"]}
    resp = await client.post("/api/shop/teddy/buy", headers={**auth_header(ANN), **key("buy-teddy-1")})
    assert resp.status == 404
    assert await coins(admin, ANN) == 500


@pytest.mark.parametrize("path", ["/api/shop/flowers/buy", "/api/templates/yuki/adopt"])
@pytest.mark.parametrize("bad_key", [None, "", "short", "x" * 65, "has space!", "ключ-ключ-ключ"])
async def test_posts_need_a_well_formed_idempotency_key(client, game, admin, path, bad_key):
    await new_player(game, ANN)
    await admin.execute("SELECT ops.adjust_coins($1, 50, 'test')", ANN)
    before = await snapshot(admin)
    headers = auth_header(ANN)
    if bad_key is not None:
        headers["Idempotency-Key"] = bad_key
    resp = await client.post(path, headers=headers)
    assert resp.status == 400
    err = await error_of(resp)
    assert err["code"] == "invalid_argument" and err["detail"] == {"argument": "Idempotency-Key"}
    assert await snapshot(admin) == before


# -- the leaderboards ----------------------------------------------------------------------------


async def give_xp(admin, telegram_id: int, total: int, week: int) -> None:
    """The leaderboards' counters as events would have left them (game.wallets)."""
    await admin.execute(
        """INSERT INTO game.wallets (telegram_id, xp_total, xp_week, week_start)
           VALUES ($1, $2, $3, game.ledger_week(now()))
           ON CONFLICT (telegram_id) DO UPDATE SET xp_total = $2, xp_week = $3, week_start = game.ledger_week(now())""",
        telegram_id, total, week)


async def test_the_leaderboards_show_the_top_and_the_own_rank_outside_it(client, game, admin):
    for n in range(12):
        await new_player(game, 7000 + n, f"P{n}")
        await give_xp(admin, 7000 + n, 1000 + 100 * n, 500 - 10 * n)
    await new_player(game, ANN)
    await give_xp(admin, ANN, 50, 600)

    resp = await client.get("/api/top", params={"board": "all"}, headers=auth_header(ANN))
    assert resp.status == 200
    assert_no_store(resp)
    board = await resp.json()
    assert board["board"] == "all"
    assert [(r["rank"], r["name"], r["xp"], r["me"]) for r in board["top"][:2]] == [
        (1, "P11", 2100, False), (2, "P10", 2000, False)]
    assert len(board["top"]) == 10
    # Other players by name and place only: no Telegram ids.
    assert all(set(r) == {"rank", "name", "xp", "me"} for r in board["top"])
    assert board["me"]["rank"] == 13 and board["me"]["xp"] == 50 and board["me"]["in_top"] is False

    week = await (await client.get("/api/top", params={"board": "week"}, headers=auth_header(ANN))).json()
    assert week["top"][0] == {"rank": 1, "name": "Ann", "xp": 600, "me": True}
    assert week["me"]["rank"] == 1 and week["me"]["in_top"] is True
    assert week["week_start"] is not None
    # The default board is this week's.
    assert (await (await client.get("/api/top", headers=auth_header(ANN))).json())["board"] == "week"


@pytest.mark.parametrize("board", ["weekly", "ALL", "", "all'--", "x" * 500, "week&board=all"])
async def test_bad_board_names_are_400_with_no_game_call(client, game, board):
    await new_player(game, ANN)
    calls = game.calls
    resp = await client.get("/api/top", params={"board": board}, headers=auth_header(ANN))
    assert resp.status == 400
    err = await error_of(resp)
    assert err["code"] == "invalid_argument" and err["detail"]["argument"] == "board"
    assert game.calls == calls


# -- authentication and players unknown -----------------------------------------------------------

ROUTES = [("GET", "/api/waifus"), ("POST", "/api/waifus/1/active"), ("POST", "/api/templates/yuki/adopt"),
          ("GET", "/api/shop"), ("POST", "/api/shop/flowers/buy"), ("GET", "/api/inventory"),
          ("POST", "/api/waifus/1/gifts/flowers"), ("GET", "/api/top?board=all")]


@pytest.mark.parametrize("method, path", ROUTES)
async def test_every_new_route_refuses_missing_or_forged_init_data_before_the_game(client, game, admin, method,
                                                                                  path):
    await new_player(game, ANN)
    before = await snapshot(admin)
    calls = game.calls
    signed = init_data(ANN)
    for header in (None, "tma " + signed[:-4] + "0000", "tma " + init_data(ANN, token="654321:another-bot")):
        headers = {"Idempotency-Key": "forged-key-1"}
        if header is not None:
            headers["Authorization"] = header
        resp = await client.request(method, path, headers=headers)
        assert resp.status == 401, (path, header)
        assert (await error_of(resp))["code"].startswith("auth_")
    assert game.calls == calls
    assert await snapshot(admin) == before


@pytest.mark.parametrize("method, path", ROUTES)
async def test_a_signed_user_who_never_started_the_bot_is_403(client, game, method, path):
    resp = await client.request(method, path, headers={**auth_header(4343), "Idempotency-Key": "stranger-01"})
    assert resp.status in (403, 404), path  # 404: the waifu id 1 is nobody's of theirs
    assert (await error_of(resp))["code"] in ("player_not_registered", "waifu_not_found")


async def test_actions_are_rate_limited_per_player(client, game, admin):
    from tests.webapp.conftest import set_limit

    await new_player(game, ANN)
    await admin.execute("SELECT ops.adjust_coins($1, 1000, 'test')", ANN)
    await set_limit(admin, "web_action", 0.001, 2)
    statuses = [(await client.post("/api/shop/chocolate/buy",
                                   headers={**auth_header(ANN), **key(f"buy-choc-{n:04}")})).status
                for n in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert await coins(admin, ANN) == 1000 - 2 * 15
