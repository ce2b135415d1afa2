"""The notification outbox's API for the bot's sender (api.claim_notifications,
api.finish_notifications) and its purge job: leases, SKIP LOCKED between senders,
blocked players, and what the restore tick writes."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from tests.core.conftest import T0, adopt, at, refused, register, restore, set_stored


async def claim(conn: asyncpg.Connection, worker: str, now: datetime, batch: int = 100,
                lease: int = 30) -> list[dict[str, Any]]:
    return await conn.fetchval("SELECT api.claim_notifications($1, $2, $3, $4)", worker, batch, lease, now)


async def finish(conn: asyncpg.Connection, worker: str, ids: list[int], outcome: str, now: datetime,
                 retry_after: int | None = None) -> int:
    return await conn.fetchval("SELECT api.finish_notifications($1, $2, $3, $4, $5)",
                               worker, ids, outcome, retry_after, now)


async def rested_players(bot_conn: asyncpg.Connection, admin: asyncpg.Connection, count: int,
                         waifus_each: int = 1, first_id: int = 1) -> None:
    """`count` players whose waifus the tick at T0 fills (each one point short, clock a minute old)."""
    for telegram_id in range(first_id, first_id + count):
        await register(bot_conn, telegram_id)
        for _ in range(waifus_each):
            waifu = await adopt(bot_conn, telegram_id)
            await set_stored(admin, waifu, clock=at(minutes=-1), energy=99)


async def rows(admin: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in await admin.fetch(
        "SELECT id, telegram_id, attempts, claimed_by, sent_at, outcome, available_at FROM game.notifications "
        "ORDER BY id")]


async def test_one_row_per_player_per_fill_claimed_once_and_finished(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 2, waifus_each=2)
    # A waifu already full is not notified again; one still below the cap is not notified.
    await register(bot_conn, 3)
    await adopt(bot_conn, 3)
    await rested_players(bot_conn, admin, 1, first_id=4)
    await set_stored(admin, (await admin.fetchval("SELECT max(id) FROM game.waifus")), clock=at(minutes=-1),
                     energy=50)
    await restore(admin, T0)
    await restore(admin, T0)  # the same tick again changes nothing, notifies nobody again
    # The tick stages the four waifus that reached the cap; the sender's claim makes the rows.
    assert await admin.fetchval("SELECT sum(waifus) FROM game.rested_ranges") == 4
    assert await rows(admin) == []

    claimed = await claim(bot_conn, "w1", T0)
    assert [r["telegram_id"] for r in await rows(admin)] == [1, 2]
    assert await admin.fetchval("SELECT count(*) FROM game.rested_ranges") == 0
    assert [(c["telegram_id"], c["attempts"], c["kind"]) for c in claimed] == [(1, 1, "rested"), (2, 1, "rested")]
    assert [w["energy"] for w in claimed[0]["payload"]["waifus"]] == [100, 100]
    assert claimed[0]["language"] == "auto" and claimed[0]["language_code"] == "en"
    assert claimed[0]["lease_until"] == "2100-01-01T10:00:30+00:00"
    assert await claim(bot_conn, "w2", at(seconds=10)) == []  # leased

    assert await finish(bot_conn, "w1", [c["id"] for c in claimed], "sent", at(seconds=1)) == 2
    assert await finish(bot_conn, "w1", [c["id"] for c in claimed], "sent", at(seconds=2)) == 0  # once
    assert {(r["outcome"], r["sent_at"]) for r in await rows(admin)} == {("sent", at(seconds=1))}
    assert await claim(bot_conn, "w2", at(minutes=5)) == []


async def test_no_rows_for_players_who_turned_notifications_off(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 2)
    await bot_conn.fetchval("SELECT api.set_player_setting(2, 'notifications', 'off', $1)", T0)
    await restore(admin, T0)
    # What a claim does first when its outbox is short: rows from the tick's stage.
    assert await admin.fetchval("SELECT game.expand_rested($1, 10)", T0) == 1
    assert [r["telegram_id"] for r in await rows(admin)] == [1]
    # Turned off after the row was written: the row ends 'off' at the claim, unsent.
    await bot_conn.fetchval("SELECT api.set_player_setting(1, 'notifications', 'off', $1)", T0)
    assert await claim(bot_conn, "w1", T0) == []
    assert [(r["outcome"], r["attempts"]) for r in await rows(admin)] == [("off", 1)]


async def test_a_dead_senders_rows_are_claimed_again_after_the_lease(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 3)
    await restore(admin, T0)
    dead = await claim(bot_conn, "dead", T0, lease=30)
    assert len(dead) == 3
    assert await claim(bot_conn, "alive", at(seconds=29)) == []
    again = await claim(bot_conn, "alive", at(seconds=30))
    assert [r["id"] for r in again] == [r["id"] for r in dead] and {r["attempts"] for r in again} == {2}
    # The dead sender's late "give back" no longer applies (it does not hold them) ...
    assert await finish(bot_conn, "dead", [r["id"] for r in dead], "retry", at(seconds=31), retry_after=0) == 0
    # ... but a late "sent" does: whoever holds it, the message went out.
    assert await finish(bot_conn, "dead", [dead[0]["id"]], "sent", at(seconds=31)) == 1
    assert await finish(bot_conn, "alive", [r["id"] for r in again], "sent", at(seconds=32)) == 2
    assert sorted(r["outcome"] for r in await rows(admin)) == ["sent", "sent", "sent"]


async def test_retry_after_gives_the_row_back_for_later(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 1)
    await restore(admin, T0)
    [row] = await claim(bot_conn, "w1", T0)
    assert await finish(bot_conn, "w1", [row["id"]], "retry", at(seconds=1), retry_after=7) == 1
    assert await claim(bot_conn, "w2", at(seconds=7)) == []
    [again] = await claim(bot_conn, "w2", at(seconds=8))
    assert again["id"] == row["id"] and again["attempts"] == 2


async def test_blocked_turns_notifications_off_and_ends_the_players_rows(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 2)
    await restore(admin, T0)
    # A second fill of player 1 before the first went out.
    waifu = await admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = 1")
    await set_stored(admin, waifu, clock=at(minutes=1), energy=99)
    await restore(admin, at(minutes=2))
    first = await claim(bot_conn, "w1", at(minutes=2))
    assert [r["telegram_id"] for r in first] == [1, 2]
    # Her clock rewritten before any row was made: she is staged once (the second range), so
    # player 1 has one row; a second waifu's row would end blocked with it.
    assert await finish(bot_conn, "w1", [first[0]["id"]], "blocked", at(minutes=2, seconds=1)) == 1
    assert await admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = 1") is False
    assert [(r["telegram_id"], r["outcome"]) for r in await rows(admin)] == [(2, None), (1, "blocked")]
    await set_stored(admin, waifu, clock=at(minutes=3), energy=99)
    await restore(admin, at(minutes=4))  # off now: no row is made for them
    assert [r["telegram_id"] for r in await claim(bot_conn, "w1", at(minutes=4))] == [2]  # its lease ran out
    assert len(await rows(admin)) == 2


async def test_a_row_claimed_too_often_ends_failed(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 1)
    await restore(admin, T0)
    for n in range(10):
        assert len(await claim(bot_conn, "w", at(minutes=n), lease=1)) == 1
    assert await claim(bot_conn, "w", at(minutes=10), lease=1) == []
    assert [(r["outcome"], r["attempts"]) for r in await rows(admin)] == [("failed", 11)]


async def test_concurrent_senders_never_get_the_same_row(bot_conn, admin, database) -> None:
    await rested_players(bot_conn, admin, 40)
    await restore(admin, T0)
    # Senders racing for the stage: each range goes to one of them, no row is made twice.
    racers = [await asyncpg.connect(database.admin_url) for _ in range(4)]
    try:
        made = await asyncio.gather(*(c.fetchval("SELECT game.expand_rested($1, 7)", T0) for c in racers))
    finally:
        for c in racers:
            await c.close()
    assert sum(made) == 40 and await admin.fetchval("SELECT count(DISTINCT telegram_id) FROM game.notifications") == 40
    conns = [await asyncpg.connect(database.clock_bot_url) for _ in range(4)]
    try:
        batches = await asyncio.gather(*(c.fetchval("SELECT api.claim_notifications($1, 7, 30, $2)::text", f"w{i}", T0)
                                         for i, c in enumerate(conns)))
    finally:
        for c in conns:
            await c.close()
    import json

    ids = [r["id"] for b in batches for r in json.loads(b)]
    assert len(ids) == 28 and len(set(ids)) == 28
    holders = {r["claimed_by"] for r in await rows(admin) if r["claimed_by"]}
    assert holders == {"w0", "w1", "w2", "w3"}


@pytest.mark.parametrize(("args", "argument"), [
    ((None, 10, 30), "worker"), (("", 10, 30), "worker"), (("w", 0, 30), "batch_size"),
    (("w", 1001, 30), "batch_size"), (("w", None, 30), "batch_size"), (("w", 10, 0), "lease_seconds"),
    (("w", 10, 3601), "lease_seconds"),
])
async def test_claim_refusals(bot_conn, admin, args, argument) -> None:
    call = bot_conn.fetchval("SELECT api.claim_notifications($1, $2, $3, $4)", *args, T0)
    assert (await refused(admin, "WF006", call))["argument"] == argument


@pytest.mark.parametrize(("args", "argument"), [
    (("w", [1], "delivered", None), "outcome"), (("w", [1], None, None), "outcome"),
    (("w", [1], "retry", None), "retry_after_seconds"), (("w", [1], "retry", -1), "retry_after_seconds"),
    ((None, [1], "sent", None), "worker"), (("w", None, "sent", None), "ids"),
    (("w", list(range(1001)), "sent", None), "ids"),
])
async def test_finish_refusals(bot_conn, admin, args, argument) -> None:
    call = bot_conn.fetchval("SELECT api.finish_notifications($1, $2, $3, $4, $5)", *args, T0)
    assert (await refused(admin, "WF006", call))["argument"] == argument


async def test_the_bot_cannot_choose_the_clock_or_touch_the_table(real_bot_conn, admin) -> None:
    assert (await refused(admin, "WF006", claim(real_bot_conn, "w", T0)))["argument"] == "now"
    assert await real_bot_conn.fetchval("SELECT api.claim_notifications('w', 10, 30)") == []
    for sql in ("SELECT * FROM game.notifications", "DELETE FROM game.notifications",
                "SELECT game.purge_player_history()"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await real_bot_conn.execute(sql)


async def test_purge_removes_finished_rows_and_old_claims(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 2)
    await restore(admin, T0)
    [first, second] = await claim(bot_conn, "w", T0)
    await finish(bot_conn, "w", [first["id"]], "sent", T0)
    await bot_conn.fetchval("SELECT api.claim_daily(1, 'k', $1)", T0)
    # The purge goes by the server's clock only: the rows are dated back from it.
    # Retention: game.config.notification_retention (7 days by default); claims 90 days.
    purge = "SELECT game.purge_player_history()"
    await admin.execute("UPDATE game.notifications SET sent_at = now() - interval '7 days' + interval '1 hour' "
                        "WHERE sent_at IS NOT NULL")
    await admin.execute("UPDATE game.daily_claims SET claimed_at = now() - interval '89 days'")
    assert await admin.fetchval(purge) == {"notifications": 0, "daily_claims": 0, "request_keys": 0}
    await admin.execute("UPDATE game.notifications SET sent_at = now() - interval '7 days' - interval '1 hour' "
                        "WHERE sent_at IS NOT NULL")
    assert await admin.fetchval(purge) == {"notifications": 1, "daily_claims": 0, "request_keys": 0}
    assert [r["id"] for r in await rows(admin)] == [second["id"]]  # the unsent row stays
    await admin.execute("UPDATE game.daily_claims SET claimed_at = now() - interval '91 days'")
    assert await admin.fetchval(purge) == {"notifications": 0, "daily_claims": 1, "request_keys": 0}


async def test_the_purge_takes_no_clock_from_its_caller(admin) -> None:
    # A clock far ahead would delete every claim (and the recorded answer of a retried key).
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await admin.fetchval("SELECT game.purge_player_history($1)", at(hours=24 * 365 * 100))


async def test_the_purge_job_runs_as_waifu_cron(admin) -> None:
    job = await admin.fetchrow("SELECT schedule, command, username FROM cron.job "
                               "WHERE jobname = 'purge-player-history'")
    assert dict(job) == {"schedule": "23 * * * *", "command": "SELECT game.purge_player_history()",
                         "username": "waifu_cron"}
    # waifu_cron may run it (what pg_cron's worker does).
    await admin.execute("SET ROLE waifu_cron")
    try:
        assert await admin.fetchval("SELECT game.purge_player_history()") == {
            "notifications": 0, "daily_claims": 0, "request_keys": 0}
    finally:
        await admin.execute("RESET ROLE")


async def test_a_claim_takes_every_waiting_row_of_the_players_it_picks(bot_conn, admin) -> None:
    # Player 1: three fills before any message went out (the sender was down); player 2: one.
    await rested_players(bot_conn, admin, 1, waifus_each=3)
    await rested_players(bot_conn, admin, 1, first_id=2)
    ids = [r["id"] for r in await admin.fetch("SELECT id FROM game.waifus WHERE owner_id = 1 ORDER BY id")]
    for k, waifu in enumerate(ids):
        await set_stored(admin, waifu, clock=at(minutes=k), energy=99)
        await restore(admin, at(minutes=k + 1))
    await restore(admin, at(minutes=5))
    first = await claim(bot_conn, "w", at(minutes=6), batch=1)
    assert [r["telegram_id"] for r in first] == [1, 1, 1]  # one player: all of theirs, for one message
    assert [r["telegram_id"] for r in await claim(bot_conn, "w", at(minutes=6), batch=1)] == [2]


async def test_rows_not_sent_in_time_expire(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 2)
    await restore(admin, T0)
    # The sender was down for longer than game.config.notification_max_age (30 minutes).
    assert await claim(bot_conn, "w", at(minutes=31)) == []
    # Staged and never made into rows: the stage is dropped, no row is written for them.
    assert await rows(admin) == [] and await admin.fetchval("SELECT count(*) FROM game.rested_ranges") == 0
    await admin.fetchval("SELECT ops.set_config(notification_max_age => '2 hours')")
    await set_stored(admin, await admin.fetchval("SELECT min(id) FROM game.waifus"), clock=at(minutes=40), energy=99)
    await restore(admin, at(minutes=41))
    assert [r["telegram_id"] for r in await claim(bot_conn, "w", at(minutes=100))] == [1]


async def test_a_rested_message_names_only_the_waifus_still_rested(bot_conn, admin) -> None:
    await rested_players(bot_conn, admin, 2, waifus_each=2)
    await restore(admin, T0)
    spent = await admin.fetch("SELECT id FROM game.waifus WHERE owner_id = 1 ORDER BY id")
    # Player 1 played with one waifu before the message went out; player 2 with both.
    await bot_conn.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'a', $2)", spent[0]["id"], at(seconds=5))
    for k, w in enumerate(await admin.fetch("SELECT id FROM game.waifus WHERE owner_id = 2")):
        await bot_conn.fetchval("SELECT api.participate_in_event(2, $1, 'walk', $2, $3)", w["id"], f"b{k}",
                                at(seconds=5))
    [row] = await claim(bot_conn, "w", at(seconds=10))
    assert row["telegram_id"] == 1 and [w["waifu_id"] for w in row["payload"]["waifus"]] == [spent[1]["id"]]
    # Player 2's waifus left the stage when they spent (their full_at moved): no row at all.
    assert {(r["telegram_id"], r["outcome"]) for r in await rows(admin)} == {(1, None)}
