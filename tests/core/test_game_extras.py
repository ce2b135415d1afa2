"""0014.game-extras: the stat card's photo cache (api.stat_card, api.remember_card_photo),
groups' language (api.set_group_language, api.group_languages), the stall rule of every
pg_cron job (ops.cron_jobs from game.cron_expectations) and the coin ledger's retention
(game.trim_coin_ledger folds old rows into one opening row per player)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.conftest import init_connection
from tests.core.conftest import T0, player_with_waifu, refused, register

BOT = 777000
FILE_ID = "AgACAgIAAxkDAAIBQ2Zz_test-file-id_0123456789"
DESIGN = "0123abcd"
GROUP = -1001


async def remember(conn: asyncpg.Connection, template: str = "sakura", language: str = "en", rarity: str = "common",
                   design: str = DESIGN, file_id: str = FILE_ID, bot_id: int = BOT) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.remember_card_photo($1, $2, $3, $4, $5, $6)",
                               bot_id, template, language, rarity, design, file_id)


async def card(conn: asyncpg.Connection, telegram_id: int, waifu_id: int, bot_id: int = BOT) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.stat_card($1, $2, $3, $4)", telegram_id, waifu_id, bot_id, T0)


# -- the stat card's photo -------------------------------------------------------------------------

async def test_stat_card_has_fresh_stats_the_rarity_and_the_cached_photo(bot_conn, admin):
    wid = await player_with_waifu(bot_conn, 1, "yuki")
    first = await card(bot_conn, 1, wid)
    stats = await bot_conn.fetchval("SELECT api.player_waifu_stats($1, $2, $3)", 1, wid, T0)
    assert {k: first[k] for k in stats} == stats  # the stats as the stats screen has them
    assert first["rarity"] == "rare" and first["language"] == "en" and first["photo"] is None
    stored = await remember(bot_conn, "yuki", "en", "rare")
    assert stored == {"bot_id": BOT, "template_code": "yuki", "language": "en", "rarity": "rare", "design": DESIGN,
                      "file_id": FILE_ID}
    assert (await card(bot_conn, 1, wid))["photo"] == {"file_id": FILE_ID, "design": DESIGN}
    # another bot's file_ids are no use to this one; another language is another picture
    assert (await card(bot_conn, 1, wid, bot_id=BOT + 1))["photo"] is None
    await bot_conn.execute("SELECT api.set_player_setting(1, 'language', 'ru', $1)", T0)
    assert (await card(bot_conn, 1, wid))["photo"] is None
    # a replaced file_id (Telegram refused the old one) is what the next card gets
    await remember(bot_conn, "yuki", "en", "rare", design="ffff0000", file_id="B" * 40)
    await bot_conn.execute("SELECT api.set_player_setting(1, 'language', 'en', $1)", T0)
    assert (await card(bot_conn, 1, wid))["photo"] == {"file_id": "B" * 40, "design": "ffff0000"}
    assert await admin.fetchval("SELECT count(*) FROM game.card_photos") == 1
    # the template's rarity changes: the cached picture (drawn with the old frame) is not offered
    await admin.execute("UPDATE game.waifu_templates SET rarity = 'epic' WHERE code = 'yuki'")
    assert (await card(bot_conn, 1, wid))["photo"] is None
    await refused(admin, "WF004", card(bot_conn, 1, wid + 1000))
    await refused(admin, "WF006", card(bot_conn, 1, wid, bot_id=0))


@pytest.mark.parametrize(("field", "value"), [
    ("template", "nobody"), ("template", ""), ("template", "x" * 40), ("language", "de"), ("language", "EN"),
    ("rarity", "epic"),  # sakura is common: a card for another rarity is refused
    ("design", "xyz12345"), ("design", "0123"), ("design", "a" * 65),
    ("file_id", "short"), ("file_id", "has space in it 0123456789"), ("file_id", "a" * 201),
    ("file_id", "'); DROP TABLE game.players; --"), ("file_id", "AgAC/with+slash=0123456789"),
    ("bot_id", 0), ("bot_id", -5),
])
async def test_the_bot_cannot_cache_a_bad_or_foreign_file_id(real_bot_conn, admin, field, value):
    args: dict[str, Any] = {field: value}
    detail = await refused(admin, "WF006", remember(real_bot_conn, **args))
    assert detail["argument"] == {"template": "template_code"}.get(field, field)


async def test_card_photos_of_at_most_eight_bots(real_bot_conn, admin, ops_conn):
    for bot in range(1, 9):
        await remember(real_bot_conn, bot_id=bot)
    detail = await refused(admin, "WF008", remember(real_bot_conn, bot_id=9))
    assert detail == {"limit": "card_photo_bots", "max": 8}
    await remember(real_bot_conn, "hana", bot_id=8)  # a cached bot may add more
    assert [r["bot_id"] for r in await ops_conn.fetch("SELECT bot_id FROM ops.card_photos")] == [
        1, 2, 3, 4, 5, 6, 7, 8, 8]
    assert await ops_conn.fetchval("SELECT ops.forget_card_photos(8)") == 2
    await remember(real_bot_conn, bot_id=9)
    assert await ops_conn.fetchval("SELECT ops.forget_card_photos()") == 8


async def test_the_bot_reads_nothing_but_its_functions_answers(real_bot_conn, admin):
    await remember(real_bot_conn)
    for sql in ("SELECT * FROM game.card_photos", "SELECT * FROM ops.card_photos",
                "SELECT * FROM game.cron_expectations", "SELECT ops.forget_card_photos()",
                "SELECT game.trim_coin_ledger()",
                "UPDATE game.card_photos SET file_id = 'x'", "SELECT ops.set_cron_expectation('x', '1 hour')"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await real_bot_conn.fetch(sql)
    # the refused writes changed nothing
    assert await admin.fetchval("SELECT count(*) FROM game.card_photos") == 1


# -- groups' language ---------------------------------------------------------------------------------

async def group_language(conn: asyncpg.Connection, telegram_id: int, language: str | None,
                         is_admin: bool = True) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.set_group_language($1, $2, $3, $4, $5)", GROUP, telegram_id, language,
                               is_admin, T0)


async def test_a_group_speaks_its_admins_language_until_an_admin_changes_it(bot_conn, admin):
    await bot_conn.fetchval("SELECT api.register_player(1, 'olga', 'Olga', 'ru-RU')")
    await register(bot_conn, 2)  # English
    for player in (1, 2):
        await bot_conn.fetchval("SELECT api.register_group_member($1, $2, 'G', $3)", GROUP, player, T0)
    assert await bot_conn.fetchval("SELECT api.group_languages($1)", [GROUP]) == []
    # the first admin to turn events on: the group takes her language
    assert await group_language(bot_conn, 1, None) == {"chat_id": GROUP, "language": "ru", "changed": True}
    # the next one does not override it
    assert await group_language(bot_conn, 2, None) == {"chat_id": GROUP, "language": "ru", "changed": False}
    # an explicit choice does
    assert await group_language(bot_conn, 2, "en") == {"chat_id": GROUP, "language": "en", "changed": True}
    assert await group_language(bot_conn, 2, "en") == {"chat_id": GROUP, "language": "en", "changed": False}
    assert await bot_conn.fetchval("SELECT api.group_languages($1)", [GROUP, -5, -6]) == [
        {"chat_id": GROUP, "language": "en"}]
    await refused(admin, "WF014", group_language(bot_conn, 1, "ru", is_admin=False))
    await refused(admin, "WF006", group_language(bot_conn, 1, "de"))
    await refused(admin, "WF005", group_language(bot_conn, 3, "ru"))
    await register(bot_conn, 3)
    await refused(admin, "WF012", group_language(bot_conn, 3, "ru"))
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.set_group_language(5, 1, 'ru', true)"))
    for bad in ([None], list(range(-200, -99))):
        await refused(admin, "WF006", bot_conn.fetchval("SELECT api.group_languages($1)", bad))
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.group_languages(NULL)"))


# -- the stall rule of every job -----------------------------------------------------------------------

RUN = ("INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, return_message, "
       "start_time, end_time) SELECT j.jobid, nextval('cron.runid_seq'), j.database, j.username, j.command, "
       "'succeeded', 'SELECT 1', $2, $2 FROM cron.job AS j WHERE j.jobname = $1 RETURNING runid")


@pytest.mark.parametrize(("job", "fresh", "late"), [
    ("group-events", timedelta(minutes=1), timedelta(minutes=4)),
    ("leaderboard-steps", timedelta(minutes=6), timedelta(minutes=16)),
    ("restore-energy", timedelta(minutes=2), timedelta(minutes=4)),
    ("coin-ledger-retention", timedelta(hours=1), timedelta(hours=4)),
])
async def test_each_job_is_stalled_after_about_three_missed_runs(admin, ops_conn, job, fresh, late):
    jobid, schedule = await admin.fetchrow("SELECT jobid, schedule FROM cron.job WHERE jobname = $1", job)
    health = "SELECT health, stalled_after FROM ops.cron_jobs WHERE jobname = $1"
    # pg_cron really runs these jobs in the test cluster: held (a schedule that never comes)
    # while the test writes the runs it needs.
    await admin.execute("SELECT cron.alter_job($1, schedule => '0 0 31 2 *')", jobid)
    runids: list[int] = []
    try:
        await admin.execute("DELETE FROM cron.job_run_details WHERE jobid = $1", jobid)
        assert (await ops_conn.fetchrow(health, job))["health"] == "never ran"
        now = datetime.now(UTC)
        runids.append(await admin.fetchval(RUN, job, now - late))
        row = await ops_conn.fetchrow(health, job)
        assert row["health"] == "stalled" and late > row["stalled_after"] > fresh
        runids.append(await admin.fetchval(RUN, job, now - fresh))
        assert (await ops_conn.fetchrow(health, job))["health"] == "ok"
        # the operator moves the expectation (a slower schedule), or drops it
        await ops_conn.execute("SELECT ops.set_cron_expectation($1, $2)", job, max(fresh / 2, timedelta(minutes=1)))
        assert (await ops_conn.fetchrow(health, job))["health"] == "stalled"
        await ops_conn.execute("SELECT ops.set_cron_expectation($1, NULL)", job)
        assert dict(await ops_conn.fetchrow(health, job)) == {"health": "ok", "stalled_after": None}
    finally:
        # The made-up runs go (the exporter's test reads every job's last success).
        await admin.execute("DELETE FROM cron.job_run_details WHERE runid = ANY($1::bigint[])", runids)
        await admin.execute("SELECT cron.alter_job($1, schedule => $2)", jobid, schedule)


async def test_every_scheduled_job_has_an_expectation(admin, ops_conn):
    rows = await ops_conn.fetch("SELECT jobname, stalled_after FROM ops.cron_jobs ORDER BY jobname")
    assert [r["jobname"] for r in rows if r["stalled_after"] is None] == []
    await refused(admin, "WF006", ops_conn.fetchval("SELECT ops.set_cron_expectation('x', '10 seconds')"))
    await refused(admin, "WF006", ops_conn.fetchval("SELECT ops.set_cron_expectation('', '1 hour')"))


# -- the coin ledger's retention --------------------------------------------------------------------------

async def adjust(ops_conn: asyncpg.Connection, telegram_id: int, delta: int) -> None:
    await ops_conn.execute("SELECT ops.adjust_coins($1, $2, 'test')", telegram_id, delta)


async def off_ledger(admin: asyncpg.Connection) -> int:
    return await admin.fetchval("SELECT wallets_off_ledger FROM ops.coins")


async def trim(admin: asyncpg.Connection, batch_size: int = 5000) -> dict[str, Any]:
    async with admin.transaction():
        await admin.execute("SET LOCAL ROLE waifu_cron")  # as the job runs it
        return await admin.fetchval("SELECT game.trim_coin_ledger($1)", batch_size)


async def test_old_coin_rows_fold_into_one_opening_row_and_wallets_still_match(admin, bot_conn, ops_conn):
    for player in (1, 2, 3, 4):
        await register(bot_conn, player)
    for delta in (100, -30, 50):  # player 1: all old
        await adjust(ops_conn, 1, delta)
    for delta in (10, -10, 7):  # player 2: two old rows summing to 0, one recent
        await adjust(ops_conn, 2, delta)
    for delta in (5, 6):  # player 3: all recent
        await adjust(ops_conn, 3, delta)
    for delta in (40, 2):  # player 4: one old, one recent
        await adjust(ops_conn, 4, delta)
    old = datetime.now(UTC) - timedelta(days=40)
    await admin.execute("""
        UPDATE game.coin_ledger AS l SET at = $1::timestamptz + l.id * interval '1 second'
        WHERE l.telegram_id = 1 OR (l.telegram_id = 2 AND l.delta IN (10, -10)) OR (l.telegram_id = 4 AND l.delta = 40)
    """, old)
    before = {r["telegram_id"]: dict(r) for r in await admin.fetch(
        "SELECT telegram_id, max(id) AS last_id FROM game.coin_ledger WHERE at < now() - interval '30 days' "
        "GROUP BY telegram_id")}
    assert await off_ledger(admin) == 0
    result = await trim(admin, batch_size=1)  # one player a batch: three batches
    assert (result["players"], result["rows_folded"]) == (3, 6)
    rows = [dict(r) for r in await admin.fetch(
        "SELECT id, telegram_id, delta, balance, reason FROM game.coin_ledger ORDER BY telegram_id, id")]
    assert [(r["telegram_id"], r["delta"], r["balance"], r["reason"]) for r in rows] == [
        (1, 120, 120, "opening"),
        (2, 7, 7, "correction"),  # the old rows summed to 0: nothing to open with
        (3, 5, 5, "correction"), (3, 6, 11, "correction"),
        (4, 40, 40, "opening"), (4, 2, 42, "correction")]
    # an opening row keeps the id of the last row it folds: ids still run in order
    assert [r["id"] for r in rows if r["reason"] == "opening"] == [before[1]["last_id"], before[4]["last_id"]]
    assert await off_ledger(admin) == 0
    # a second run finds nothing; a later earning counts on top of the opening balance
    assert (await trim(admin))["players"] == 0
    await adjust(ops_conn, 1, -20)
    assert await admin.fetchval("SELECT coins FROM game.wallets WHERE telegram_id = 1") == 100
    assert await admin.fetchval("SELECT balance FROM game.coin_ledger WHERE telegram_id = 1 ORDER BY id DESC "
                                "LIMIT 1") == 100
    # that row too ages out: folded with the opening row into a new one
    await admin.execute("UPDATE game.coin_ledger SET at = $1 WHERE telegram_id = 1 AND reason = 'correction'",
                        old + timedelta(days=1))
    assert (await trim(admin))["rows_folded"] == 2
    assert [tuple(r) for r in await admin.fetch(
        "SELECT delta, balance, reason FROM game.coin_ledger WHERE telegram_id = 1")] == [(100, 100, "opening")]
    assert await off_ledger(admin) == 0
    await refused(admin, "WF006", admin.fetchval("SELECT game.trim_coin_ledger(0)"))


async def test_the_retention_job_is_scheduled_as_waifu_cron_and_reads_the_one_setting(admin, ops_conn):
    job = await admin.fetchrow("SELECT schedule, command, username FROM cron.job "
                               "WHERE jobname = 'coin-ledger-retention'")
    assert dict(job) == {"schedule": "41 * * * *", "command": "SELECT game.trim_coin_ledger()",
                         "username": "waifu_cron"}
    await ops_conn.execute("SELECT ops.set_config(ledger_retention => '14 days')")
    result = await admin.fetchval("SELECT game.trim_coin_ledger()")
    cutoff = datetime.fromisoformat(result["cutoff"])
    assert abs(cutoff - (datetime.now(UTC) - timedelta(days=14))) < timedelta(minutes=1)


async def test_the_reason_check_still_refuses_unknown_reasons(admin, bot_conn):
    await register(bot_conn, 1)
    with pytest.raises(asyncpg.CheckViolationError):
        await admin.execute("INSERT INTO game.coin_ledger (telegram_id, at, delta, balance, reason, ref) "
                            "VALUES (1, $1, 5, 5, 'gift', 'x')", T0)


async def test_earnings_during_a_trim_lose_nothing(admin, bot_conn, ops_conn, database):
    """The trim holds its transaction open while the player earns and spends: nothing
    waits on it, and after both commit the wallet still equals the ledger's sum."""
    await register(bot_conn, 1)
    for delta in (100, -30, 50):
        await adjust(ops_conn, 1, delta)
    await admin.execute("UPDATE game.coin_ledger SET at = now() - interval '40 days'")
    trimmer = await asyncpg.connect(database.admin_url)
    await init_connection(trimmer)
    try:
        tx = trimmer.transaction()
        await tx.start()
        assert (await trimmer.fetchval("SELECT game.trim_coin_ledger()"))["rows_folded"] == 3
        # meanwhile (not blocked: the trim touches old rows only, never the wallet)
        await asyncio.wait_for(adjust(ops_conn, 1, 7), timeout=5)
        await asyncio.wait_for(adjust(ops_conn, 1, -20), timeout=5)
        await tx.commit()
    finally:
        await trimmer.close()
    assert await admin.fetchval("SELECT coins FROM game.wallets WHERE telegram_id = 1") == 107
    assert [tuple(r) for r in await admin.fetch(
        "SELECT delta, balance, reason FROM game.coin_ledger WHERE telegram_id = 1 ORDER BY id")] == [
        (120, 120, "opening"), (7, 127, "correction"), (-20, 107, "correction")]
    assert await off_ledger(admin) == 0
