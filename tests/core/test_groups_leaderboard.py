"""Issue 19, together: group chats (members, group events opened and paid by one pg_cron
job, messages to groups within Telegram's 20 a minute) and the leaderboards (weekly and
all-time XP, global and per group, the player's own rank)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from tests.core.conftest import T0, at, participate, player_with_waifu, refused, register

GROUP = -1001
# T0 is Friday 2100-01-01 10:00 UTC; its week started on Monday 2099-12-28.
WEEK_START = datetime(2099, 12, 28, tzinfo=T0.tzinfo)


async def member(conn: asyncpg.Connection, telegram_id: int, chat_id: int = GROUP,
                 now: datetime = T0) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.register_group_member($1, $2, 'Group', $3)", chat_id, telegram_id, now)


async def events_on(conn: asyncpg.Connection, telegram_id: int, enabled: bool = True, is_admin: bool = True,
                    now: datetime = T0) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.set_group_events($1, $2, $3, $4, $5)", GROUP, telegram_id, enabled,
                               is_admin, now)


async def step(admin: asyncpg.Connection, now: datetime) -> dict[str, int]:
    return dict(await admin.fetchrow("SELECT * FROM game.group_events_step($1)", now))


async def join(conn: asyncpg.Connection, telegram_id: int, event_id: int, now: datetime,
               waifu_id: int | None = None) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.join_group_event($1, $2, $3, $4)", telegram_id, event_id, waifu_id, now)


async def board(conn: asyncpg.Connection, telegram_id: int, which: str, chat_id: int | None = None,
                now: datetime = T0) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.leaderboard($1, $2, $3, $4)", telegram_id, which, chat_id, now)


# -- groups -----------------------------------------------------------------------------------------

async def test_members_register_by_using_the_bot_in_a_group(bot_conn, admin):
    await register(bot_conn, 1)
    await register(bot_conn, 2)
    first = await member(bot_conn, 1)
    assert first == {"chat_id": GROUP, "title": "Group", "events_on": False, "next_event_at": None, "members": 1}
    assert (await member(bot_conn, 2))["members"] == 2
    # seen again within the hour: nothing written
    before = await admin.fetchval("SELECT xmin::text FROM game.group_members WHERE telegram_id = 1")
    await member(bot_conn, 1, now=at(minutes=30))
    assert await admin.fetchval("SELECT xmin::text FROM game.group_members WHERE telegram_id = 1") == before
    await refused(admin, "WF005", member(bot_conn, 3))
    await refused(admin, "WF006", member(bot_conn, 1, chat_id=42))
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.register_group_member(-5, 1, $1, $2)", "x" * 129, T0))


async def test_only_an_admin_member_turns_group_events_on(bot_conn, admin):
    await register(bot_conn, 1)
    await register(bot_conn, 2)
    await member(bot_conn, 1)
    assert await refused(admin, "WF014", events_on(bot_conn, 1, is_admin=False)) == {
        "chat_id": GROUP, "telegram_id": 1}
    assert (await refused(admin, "WF012", events_on(bot_conn, 2)))["telegram_id"] == 2
    await refused(admin, "WF005", events_on(bot_conn, 3))
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.set_group_events($1, 1, NULL, true, $2)", GROUP, T0))
    on = await events_on(bot_conn, 1)
    assert on["events_on"] is True and datetime.fromisoformat(on["next_event_at"]) == at(minutes=1)
    # on again keeps the schedule; off clears it
    assert (await events_on(bot_conn, 1, now=at(minutes=5)))["next_event_at"] == on["next_event_at"]
    assert (await events_on(bot_conn, 1, enabled=False))["next_event_at"] is None


async def test_a_group_event_opens_members_join_once_and_share_the_pool(bot_conn, admin):
    await admin.execute("SELECT ops.set_economy(group_event_pool => 100, group_event_window => '10 minutes', "
                        "group_event_every => '4 hours')")
    waifus = {t: await player_with_waifu(bot_conn, t) for t in (1, 2, 3, 4)}
    for t in (1, 2, 3):
        await member(bot_conn, t)
    await events_on(bot_conn, 1)
    assert await step(admin, T0) == {"paid": 0, "opened": 0}  # not due yet
    assert await step(admin, at(minutes=1)) == {"paid": 0, "opened": 1}
    event = await admin.fetchrow("SELECT * FROM game.group_events")
    assert event["closes_at"] == at(minutes=11) and event["pool"] == 100
    opened = await admin.fetchrow("SELECT kind, payload FROM game.group_messages")
    assert opened["kind"] == "group_event_open" and opened["payload"]["event_id"] == event["id"]
    assert await step(admin, at(minutes=2)) == {"paid": 0, "opened": 0}  # one at a time

    j1 = await join(bot_conn, 1, event["id"], at(minutes=2))
    assert (j1["participants"], j1["waifu_id"], j1["replayed"]) == (1, waifus[1], False)
    assert (await join(bot_conn, 1, event["id"], at(minutes=3)))["replayed"] is True
    await join(bot_conn, 3, event["id"], at(minutes=4))
    await join(bot_conn, 2, event["id"], at(minutes=5), waifus[2])
    # refusals: not a member, another's waifu, unknown event, closed
    assert (await refused(admin, "WF012", join(bot_conn, 4, event["id"], at(minutes=5))))["telegram_id"] == 4
    await refused(admin, "WF013", join(bot_conn, 1, event["id"] + 100, at(minutes=5)))
    await refused(admin, "WF006", join(bot_conn, 1, 0, at(minutes=5)))
    await refused(admin, "WF005", join(bot_conn, 9, event["id"], at(minutes=5)))

    assert await step(admin, at(minutes=11)) == {"paid": 1, "opened": 0}
    shares = await admin.fetch("SELECT telegram_id, coins FROM game.group_event_participants ORDER BY joined_at")
    # 100 / 3 = 33, the first to join gets the remaining coin
    assert [tuple(r) for r in shares] == [(1, 34), (3, 33), (2, 33)]
    wallets = await admin.fetch("SELECT telegram_id, coins FROM game.wallets WHERE coins > 0 ORDER BY telegram_id")
    assert [tuple(r) for r in wallets] == [(1, 34), (2, 33), (3, 33)]
    assert await admin.fetchval("SELECT count(*) FROM game.coin_ledger WHERE reason = 'group_event'") == 3
    result = await admin.fetchval("SELECT payload FROM game.group_messages WHERE kind = 'group_event_result'")
    assert result["participants"] == 3 and result["winners"][0]["coins"] == 34
    # closed and paid: a late tap is refused, a joined player's tap still answers
    await member(bot_conn, 4, now=at(minutes=12))
    await refused(admin, "WF013", join(bot_conn, 4, event["id"], at(minutes=12)))
    assert (await join(bot_conn, 2, event["id"], at(minutes=12)))["coins"] == 33
    # paid once however often the job runs; the next opens 4 hours after the first was due
    assert await step(admin, at(minutes=12)) == {"paid": 0, "opened": 0}
    assert await step(admin, at(hours=4, minutes=1)) == {"paid": 0, "opened": 1}


async def test_the_group_events_job_is_one_pg_cron_job_for_every_group(admin):
    job = await admin.fetchrow("SELECT schedule, command, username FROM cron.job WHERE jobname = 'group-events'")
    assert tuple(job) == ("* * * * *", "SELECT game.group_events_job()", "waifu_cron")
    assert await admin.fetchval("SELECT game.group_events_job()") == {"paid": 0, "opened": 0}


async def test_group_messages_are_claimed_within_twenty_a_minute_per_group(bot_conn, admin):
    await register(bot_conn, 1)
    await member(bot_conn, 1)
    await member(bot_conn, 1, -1002)
    await admin.execute("""INSERT INTO game.group_messages (chat_id, kind, payload, created_at, available_at)
                           SELECT c, 'group_event_open', '{}', now(), now()
                           FROM unnest(ARRAY[-1001, -1002]) AS c, generate_series(1, 30)""")
    claimed = []
    for _ in range(10):
        claimed += await bot_conn.fetchval("SELECT api.claim_group_messages('w1', 100, 60)")
    per_chat = {c: sum(1 for m in claimed if m["chat_id"] == c) for c in (-1001, -1002)}
    # burst 5 now (and a token every 4 s after): far fewer than 20 within these milliseconds
    assert per_chat == {-1001: 5, -1002: 5}
    ids = [m["id"] for m in claimed]
    assert await bot_conn.fetchval("SELECT api.finish_group_messages('w2', $1, 'sent')", ids) == 0
    assert await bot_conn.fetchval("SELECT api.finish_group_messages('w1', $1, 'sent')", ids) == 10
    assert await admin.fetchval("SELECT count(*) FROM game.group_messages WHERE outcome = 'sent'") == 10
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.claim_group_messages('w', 0, 60)"))
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.finish_group_messages('w', $1, 'lost')", ids))


# -- leaderboards -----------------------------------------------------------------------------------

async def test_leaderboards_all_time_and_weekly_with_the_players_own_rank(bot_conn, admin):
    waifus = {t: await player_with_waifu(bot_conn, t) for t in range(1, 13)}
    # player t gains 15 * t XP this week (t walks), player 1 also 60 XP last week
    await participate(bot_conn, 1, waifus[1], "training", "old", T0 - timedelta(days=7))
    for t, wid in waifus.items():
        for k in range(t):
            await admin.execute("UPDATE game.waifus SET dynamic = dynamic || '{\"energy\": 100}' WHERE id = $1", wid)
            await participate(bot_conn, t, wid, "walk", f"w{k}", at(minutes=k))
    week = await board(bot_conn, 1, "week")
    assert datetime.fromisoformat(week["week_start"]) == WEEK_START
    assert [(r["rank"], r["telegram_id"], r["xp"]) for r in week["top"]] == [
        (i + 1, 12 - i, 15 * (12 - i)) for i in range(10)]
    assert week["top"][0]["name"] == "First"
    assert week["me"] == {"telegram_id": 1, "xp": 15, "rank": 12, "exact": True, "in_top": False}
    everything = await board(bot_conn, 1, "all")
    assert everything["me"]["xp"] == 75 and everything["me"]["rank"] == 8  # 75 beats players 1..5's 15..75? ties
    # the week resets on Monday 00:00 UTC
    monday = await board(bot_conn, 12, "week", now=datetime(2100, 1, 4, tzinfo=T0.tzinfo))
    assert monday["top"] == [] and monday["me"]["xp"] == 0
    await refused(admin, "WF006", board(bot_conn, 1, "month"))
    await refused(admin, "WF005", board(bot_conn, 99, "all"))


async def test_group_board_counts_its_members_only(bot_conn, admin):
    waifus = {t: await player_with_waifu(bot_conn, t) for t in (1, 2, 3)}
    await participate(bot_conn, 1, waifus[1], "walk", "a", T0)
    await participate(bot_conn, 2, waifus[2], "training", "b", T0)
    await participate(bot_conn, 3, waifus[3], "movie", "c", T0)
    await member(bot_conn, 1)
    await member(bot_conn, 2)
    group = await board(bot_conn, 1, "all", GROUP)
    assert [(r["rank"], r["telegram_id"]) for r in group["top"]] == [(1, 2), (2, 1)]
    assert group["me"]["rank"] == 2 and group["me"]["in_top"] is True
    assert (await refused(admin, "WF012", board(bot_conn, 3, "all", GROUP)))["telegram_id"] == 3
    await refused(admin, "WF006", board(bot_conn, 1, "all", 7))


async def test_rank_below_the_exact_limit_comes_from_the_steps(admin, bot_conn):
    await register(bot_conn, 1)
    # 10,500 players above player 1 on the all-time board: player 1000 + g holds place g
    await admin.execute(
        "INSERT INTO game.players (telegram_id, first_name) SELECT 1000 + g, 'P' FROM generate_series(1, 10500) AS g")
    await admin.execute("""
        INSERT INTO game.wallets (telegram_id, xp_total, week_start, xp_week)
        SELECT 1000 + g, 100000 - g, $1, 0 FROM generate_series(1, 10500) AS g""", WEEK_START)
    await admin.execute("SELECT ops.adjust_coins(1, 1, 'row')")
    await admin.execute("UPDATE game.wallets SET xp_total = 5 WHERE telegram_id = 1")
    assert await admin.fetchval("SELECT game.refresh_rank_steps()") == {"steps": 105}  # every 100th place
    me = (await board(bot_conn, 1, "all"))["me"]
    assert me["exact"] is False and me["rank"] == 10501  # everybody is above: the last step
    # 4,999 players above: from the steps, within 100 places
    await admin.execute("UPDATE game.wallets SET xp_total = 95000 WHERE telegram_id = 1")
    me = (await board(bot_conn, 1, "all"))["me"]
    assert me["exact"] is False and me["rank"] == 4901
    # 999 players above: counted exactly
    await admin.execute("UPDATE game.wallets SET xp_total = 99000 WHERE telegram_id = 1")
    me = (await board(bot_conn, 1, "all"))["me"]
    assert me == {"telegram_id": 1, "xp": 99000, "rank": 1000, "exact": True, "in_top": False}
