"""The api contract through the PL/Proxy database: routing, errors, catalogue, outages."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from bot.game import Game, GameUnavailable, WaifuNotFound
from bot.ratelimit import SharedLimits
from db import partitions
from db.localdb import BOT_ROLE, with_user

MASK = (1 << partitions.HASH_BITS) - 1


async def partition_of(conn: asyncpg.Connection, telegram_id: int, count: int = 2) -> int:
    """The partition the proxy routes `telegram_id` to (`conn`: a partition)."""
    return (await conn.fetchval("SELECT partition.player_hash($1)", telegram_id)) & (count - 1)


async def players_on(parts: list[asyncpg.Connection], want: int, how_many: int, start: int = 1) -> list[int]:
    """`how_many` telegram ids (from `start`) that hash to partition `want`."""
    out, tid = [], start
    while len(out) < how_many:
        if (await parts[0].fetchval("SELECT partition.player_hash($1)", tid)) & 1 == want:
            out.append(tid)
        tid += 1
    return out


async def register(conn: asyncpg.Connection, tid: int) -> None:
    await conn.fetchval("SELECT api.register_player($1, $2, 'F', 'en')", tid, f"u{tid}")


async def adopt(conn: asyncpg.Connection, tid: int) -> int:
    code = (await conn.fetchval("SELECT api.waifu_templates()"))[0]["code"]
    return await conn.fetchval("SELECT api.adopt_waifu($1, $2, $3)", tid, code, f"adopt-{tid}")


async def test_players_spread_and_a_players_rows_stay_on_its_partition(proxy_bot, parts):
    for tid in range(1, 41):
        await register(proxy_bot, tid)
        waifu = await adopt(proxy_bot, tid)
        result = await proxy_bot.fetchval("SELECT api.participate_in_event($1, $2, 'walk', $3)", tid, waifu, f"p{tid}")
        assert result["waifu_id"] == waifu
    seen: dict[int, set[int]] = {}
    for k, part in enumerate(parts):
        players = {r["telegram_id"] for r in await part.fetch("SELECT telegram_id FROM game.players")}
        assert players, f"partition {k} got no player"
        assert [await partition_of(part, t) for t in players] == [k] * len(players)
        waifus = await part.fetch("SELECT id, owner_id FROM game.waifus")
        assert {w["owner_id"] for w in waifus} == players
        # A waifu id carries its owner's hash bits.
        for w in waifus:
            assert w["id"] & MASK == (await part.fetchval("SELECT partition.player_hash($1)", w["owner_id"])) & MASK
        ledger = {r["telegram_id"] for r in await part.fetch("SELECT telegram_id FROM game.participations")}
        assert ledger == players
        seen[k] = players
    assert seen[0] | seen[1] == set(range(1, 41)) and not seen[0] & seen[1]


async def test_a_waifu_id_of_another_partition_is_wf004(proxy_admin, proxy_bot, parts):
    [a] = await players_on(parts, 0, 1)
    [b] = await players_on(parts, 1, 1)
    for tid in (a, b):
        await register(proxy_bot, tid)
    wa, wb = await adopt(proxy_bot, a), await adopt(proxy_bot, b)
    assert wa != wb
    for sql, args in [("SELECT api.player_waifu_stats($1, $2)", (a, wb)),
                      ("SELECT api.player_available_events($1, $2)", (a, wb)),
                      ("SELECT api.participate_in_event($1, $2, 'walk', 'k1')", (a, wb))]:
        with pytest.raises(asyncpg.PostgresError) as info:
            await proxy_bot.fetchval(sql, *args)
        assert info.value.sqlstate == "WF004"
        assert json.loads(info.value.detail) == {"waifu_id": wb}
    # Owner-blind reads route by the id alone and find her on her partition.
    assert (await proxy_admin.fetchval("SELECT api.waifu_stats($1)", wb))["owner_id"] == b
    assert (await parts[1].fetchval("SELECT count(*) FROM game.participations")) == 0


async def test_refusals_keep_sqlstate_message_detail_and_hint(proxy_bot, parts):
    [tid] = await players_on(parts, 1, 1)
    errors = []
    for conn in (parts[1], proxy_bot):  # direct to the owning partition, then through the proxy
        with pytest.raises(asyncpg.PostgresError) as info:
            await conn.fetchval("SELECT api.player_profile($1)", tid)
        errors.append((info.value.sqlstate, info.value.args[0], info.value.detail, info.value.hint))
    assert errors[0] == errors[1]
    assert errors[1][0] == "WF005" and json.loads(errors[1][2]) == {"telegram_id": tid}


async def test_the_bot_cannot_pass_a_clock_through_the_proxy(proxy_bot, parts):
    [tid] = await players_on(parts, 0, 1)
    await register(proxy_bot, tid)
    with pytest.raises(asyncpg.PostgresError) as info:
        await proxy_bot.fetchval("SELECT api.player_profile($1, now() - interval '1 day')", tid)
    assert info.value.sqlstate == "WF006"
    assert json.loads(info.value.detail)["argument"] == "now"


async def test_the_proxy_surface_has_the_partitions_signatures(proxy_admin, parts):
    query = """SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
                      pg_get_function_result(p.oid) AS result
               FROM pg_proc AS p WHERE p.pronamespace = 'api'::regnamespace ORDER BY 1, p.pronargs DESC"""
    remote = {r["proname"]: (r["args"], r["result"]) for r in await parts[0].fetch(query)}
    local: dict[str, tuple[str, str]] = {}
    for r in await proxy_admin.fetch(query):
        local.setdefault(r["proname"], (r["args"], r["result"]))  # the overload with every argument
    assert local == remote


async def test_restore_energy_ticks_every_partition_and_sums(proxy_admin, proxy_bot, parts):
    tids = await players_on(parts, 0, 2) + await players_on(parts, 1, 2)
    for tid in tids:
        await register(proxy_bot, tid)
        w = await adopt(proxy_bot, tid)
        await proxy_bot.fetchval("SELECT api.participate_in_event($1, $2, 'walk', 'k')", tid, w)
    later = await proxy_admin.fetchval("SELECT now() + interval '10 minutes'")
    assert await proxy_admin.fetchval("SELECT api.restore_energy($1)", later) == 4
    assert await proxy_admin.fetchval("SELECT api.restore_energy($1)", later) == 0


async def test_catalogue_changes_reach_every_partition(proxy_admin, parts):
    event = await proxy_admin.fetchval("SELECT ops.create_event('picnic', 'Picnic', 15, 25, 5, 2, '1 hour')")
    assert event["code"] == "picnic"
    for part in parts:
        assert await part.fetchval("SELECT energy_cost FROM game.events WHERE code = 'picnic'") == 15
    rows = await proxy_admin.fetch("SELECT * FROM ops.partitions ORDER BY partition")
    assert [r["reachable"] for r in rows] == [True, True]
    assert all(r["catalogue_same_everywhere"] for r in rows)
    await proxy_admin.fetchval("SELECT ops.close_event('picnic')")
    for part in parts:
        assert await part.fetchval("SELECT ends_at IS NOT NULL FROM game.events WHERE code = 'picnic'")
    # Drift (a partition changed behind the proxy's back) shows in ops.partitions.
    await parts[1].execute("UPDATE game.events SET energy_cost = energy_cost + 1 WHERE code = 'picnic'")
    rows = await proxy_admin.fetch("SELECT * FROM ops.partitions ORDER BY partition")
    assert not any(r["catalogue_same_everywhere"] for r in rows)
    # A refusal refuses on every partition alike: nothing half-applied.
    with pytest.raises(asyncpg.PostgresError) as info:
        await proxy_admin.fetchval("SELECT ops.create_event('Bad Code', 'x', 1, 1, 1, 1, '0')")
    assert info.value.sqlstate == "WF006"
    for part in parts:
        assert await part.fetchval("SELECT count(*) FROM game.events WHERE code = 'Bad Code'") == 0


async def test_ops_views_aggregate_the_partitions(proxy_admin, proxy_bot, parts):
    tids = await players_on(parts, 0, 1) + await players_on(parts, 1, 2)
    for tid in tids:
        await register(proxy_bot, tid)
    rows = await proxy_admin.fetch("SELECT partition_no, players FROM ops.overview ORDER BY partition_no")
    assert [(r["partition_no"], r["players"]) for r in rows] == [(0, 1), (1, 2)]
    assert await proxy_admin.fetchval("SELECT count(*) FROM game.players") == 3
    # Catalogue tables show one partition's rows (the same everywhere).
    assert await proxy_admin.fetchval("SELECT count(*) FROM game.events") == \
        await parts[0].fetchval("SELECT count(*) FROM game.events")
    cron = await proxy_admin.fetch("SELECT partition, cron_health FROM ops.partitions ORDER BY partition")
    assert all("restore-energy" in json.loads(r["cron_health"]) if isinstance(r["cron_health"], str)
               else "restore-energy" in r["cron_health"] for r in cron)


async def test_a_partition_that_is_down_fails_only_its_players(pset, proxy_admin, proxy_bot, parts):
    [a, a2] = await players_on(parts, 0, 2)
    [b] = await players_on(parts, 1, 1)
    for tid in (a, b):
        await register(proxy_bot, tid)
        await adopt(proxy_bot, tid)
    # Both players' waifus rested, so both have a "she is rested" waiting.
    await proxy_admin.execute("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 99, "
                              "'last_restore', extract(epoch FROM now()) - 61)")
    await proxy_admin.fetchval("SELECT ops.reset_tick(now() - interval '1 hour')")
    assert await proxy_admin.fetchval("SELECT api.restore_energy()") == 2
    cluster1 = pset.clusters()[1]
    game = await Game.connect(with_user(pset.proxy_url, BOT_ROLE), min_size=1, max_size=2)
    try:
        await parts[1].close()
        cluster1.stop()
        try:
            # A player of the live partition plays on, from /start (the catalogue, which
            # any partition answers) to an event, and is admitted and limited as always.
            for _ in range(10):  # the catalogue's first pick is random: every time
                assert [t["code"] for t in await game.waifu_templates()]
            await game.register_player(a2, "a2", "A", "en")
            waifu = await game.adopt_waifu(a2, (await game.waifu_templates())[0]["code"])
            assert (await game.participate(a2, waifu, "walk", "down-1"))["waifu_id"] == waifu
            assert (await game.player_profile(a))["telegram_id"] == a
            assert (await game.admit_update(1, 77, a, a))["admit"] is True  # a private chat: the player's partition
            assert await game.forget_update(1, 77) is True
            # A limit's key lives on one partition: one of the down partition is not checked
            # (SharedLimits lets the request go on), one of the live partition is.
            limits = SharedLimits(game)
            for key in ("1.2.3.4", "5.6.7.8", "9.9.9.9", "a2"):
                assert await limits.wait("web_address", key) == 0.0
            # The notifier claims what the live partition has, and marks it sent.
            claimed = await game.claim_notifications("w-down", 10, 60)
            assert [c["telegram_id"] for c in claimed] == [a]
            assert await game.finish_notifications("w-down", [c["id"] for c in claimed], "sent") == 1
            # The down partition's players get "try again in a moment".
            with pytest.raises(GameUnavailable):
                await game.player_profile(b)
            with pytest.raises(GameUnavailable):
                await game.participate(b, 1 << 16 | 1, "walk", "k")
            with pytest.raises(GameUnavailable):
                await game.admit_update(1, 78, b, b)
            assert (await game.player_profile(a))["telegram_id"] == a
            down = await proxy_admin.fetch("SELECT partition, reachable FROM ops.partitions ORDER BY partition")
            assert [(r["partition"], r["reachable"]) for r in down] == [(0, True), (1, False)]
        finally:
            await asyncio.to_thread(cluster1.start)
        # Back: b's message waited for the partition and is claimed now.
        claimed = await game.claim_notifications("w-back", 10, 60)
        assert [c["telegram_id"] for c in claimed] == [b]
        # Back: the proxy reconnects on the next call.
        assert (await game.player_profile(b))["telegram_id"] == b
        with pytest.raises(WaifuNotFound):
            await game.waifu_stats(b, 12345 << 16)
    finally:
        await game.close()


def test_migrate_again_is_a_no_op_for_the_partitions(pset):
    assert partitions.apply(pset.proxy_url) == [[], []]  # partitions read back from the proxy
    assert partitions.partition_urls(pset.proxy_url) == pset.partition_urls


async def test_a_superusers_update_of_a_game_view_lands_on_the_owning_partition(proxy_admin, proxy_bot, parts):
    [b] = await players_on(parts, 1, 1)
    await register(proxy_bot, b)
    w = await adopt(proxy_bot, b)
    status = await proxy_admin.execute(
        "UPDATE game.waifus SET dynamic = dynamic || '{\"mood\": 7}' WHERE id = $1", w)
    assert status == "UPDATE 1"
    assert await parts[1].fetchval("SELECT (dynamic ->> 'mood')::int FROM game.waifus WHERE id = $1", w) == 7
    assert await parts[0].fetchval("SELECT count(*) FROM game.waifus") == 0


async def test_the_partitions_notify_reaches_a_listener_on_the_proxy(pset, proxy_admin, parts):
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(pset.proxy_url)
    try:
        await listener.add_listener(partitions.NOTIFY_CHANNEL, lambda *args: heard.put_nowait(args[3]))
        await asyncio.sleep(1)  # the relay may still be connecting
        while not heard.empty():
            heard.get_nowait()
        await parts[1].execute(f"NOTIFY {partitions.NOTIFY_CHANNEL}, 'from-partition-1'")
        assert await asyncio.wait_for(heard.get(), 10) == "from-partition-1"
    finally:
        await listener.close()


async def test_a_claim_on_all_partitions_runs_once_and_gathers_both(proxy_admin, proxy_bot, parts):
    tids = await players_on(parts, 0, 1) + await players_on(parts, 1, 1)
    waifus = []
    for tid in tids:
        await register(proxy_bot, tid)
        waifus.append(await adopt(proxy_bot, tid))
    await proxy_admin.execute(
        "UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 99, "
        "'last_restore', extract(epoch FROM now()) - 61) WHERE id = ANY($1)", waifus)
    await proxy_admin.fetchval("SELECT ops.reset_tick(now() - interval '1 hour')")  # behind the tick's back
    assert await proxy_admin.fetchval("SELECT api.restore_energy()") == 2
    claimed = await proxy_bot.fetchval("SELECT api.claim_notifications('w1', 10, 60)")
    assert sorted(c["telegram_id"] for c in claimed) == sorted(tids)
    ids = [c["id"] for c in claimed]
    assert len(set(ids)) == 2  # ids carry the player's hash: no collision across partitions
    assert await proxy_bot.fetchval("SELECT api.claim_notifications('w2', 10, 60)") == []
    assert await proxy_bot.fetchval("SELECT api.finish_notifications('w1', $1, 'sent')", ids) == 2


async def test_group_languages_and_card_photos_through_the_proxy(proxy_bot, parts):
    """0014: a group's language is set on its admin's partition and read from every one;
    a card photo's file_id is cached on every partition and read with the player's stats."""
    admins = await players_on(parts, 0, 1) + await players_on(parts, 1, 1)
    for tid, chat in zip(admins, (-1001, -1002), strict=True):
        await register(proxy_bot, tid)
        await proxy_bot.fetchval("SELECT api.register_group_member($1, $2, 'G')", chat, tid)
        await proxy_bot.fetchval("SELECT api.set_group_language($1, $2, 'ru', true)", chat, tid)
    assert sorted((await proxy_bot.fetchval("SELECT api.group_languages($1)", [-1001, -1002, -1003])),
                  key=lambda r: r["chat_id"]) == [{"chat_id": -1002, "language": "ru"},
                                                  {"chat_id": -1001, "language": "ru"}]
    stored = await proxy_bot.fetchval("SELECT api.remember_card_photo(7, 'sakura', 'en', 'common', "
                                      "'0123abcd', 'AgACAgIAAxk_proxy_test_file_id')")
    assert stored["file_id"] == "AgACAgIAAxk_proxy_test_file_id"
    assert [await p.fetchval("SELECT count(*) FROM game.card_photos") for p in parts] == [1, 1]
    waifu = await proxy_bot.fetchval("SELECT api.adopt_waifu($1, 'sakura', 'proxy-card')", admins[1])
    card = await proxy_bot.fetchval("SELECT api.stat_card($1, $2, 7)", admins[1], waifu)
    assert card["photo"] == {"file_id": "AgACAgIAAxk_proxy_test_file_id", "design": "0123abcd"}


async def test_a_rate_limit_lease_is_taken_on_the_keys_partition_only(proxy_admin, proxy_bot):
    await proxy_admin.fetchval("SELECT ops.set_rate_limit('web_address', 0.001, 40)")
    rows = await proxy_bot.fetch("SELECT * FROM api.rate_limit_lease('web_address', '192.0.2.7', 10)")
    assert [tuple(r) for r in rows] == [(10, 0.0)]  # one partition's answer, not one per partition
    # The same key's budget, wherever the next call comes from: 40 in all, 10 at a time.
    granted = [(await proxy_bot.fetchrow("SELECT * FROM api.rate_limit_lease('web_address', '192.0.2.7', 10)"))[0]
               for _ in range(4)]
    assert granted == [10, 10, 10, 0]
