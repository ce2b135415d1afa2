"""Nobody can stall the game (issue 18): a session of the bot's own login holding every
lock it can take stops no other player and not the tick; the advisory-lock functions are
closed to the game's roles; a call that meets a lock such a session holds fails fast.

Everything runs at the server's real time with the real waifu_bot login (its role
settings, lock_timeout among them, apply to it only)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import init_connection

ATTACKER_PLAYER, PLAYER = 5001, 5002
ADVISORY = ["pg_advisory_lock(1)", "pg_advisory_lock_shared(1)", "pg_advisory_xact_lock(1)",
            "pg_try_advisory_lock(1)", "pg_try_advisory_xact_lock_shared(1)", "pg_advisory_lock(1, 2)",
            "pg_advisory_lock(hashtextextended('waifu:api.restore_energy', 0))"]


@pytest.mark.parametrize("call", ADVISORY)
async def test_the_games_roles_cannot_take_advisory_locks(real_bot_conn, ops_conn, admin, call) -> None:
    for conn in (real_bot_conn, ops_conn):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval(f"SELECT {call}")
    async with admin.transaction():
        await admin.execute("SET LOCAL ROLE waifu_cron")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await admin.fetchval(f"SELECT {call}")
    # Releasing one's own locks stays open (asyncpg's pool reset calls it).
    assert await real_bot_conn.fetchval("SELECT pg_advisory_unlock_all()") is None


async def test_the_bot_role_fails_fast_on_a_held_lock(real_bot_conn) -> None:
    settings = dict(await real_bot_conn.fetch(
        "SELECT name, setting FROM pg_settings WHERE name IN ('lock_timeout', 'idle_in_transaction_session_timeout',"
        " 'statement_timeout', 'log_error_verbosity', 'log_min_error_statement')"))
    assert settings == {"lock_timeout": "1000", "idle_in_transaction_session_timeout": "10000",
                        "statement_timeout": "15000", "log_error_verbosity": "terse",
                        "log_min_error_statement": "panic"}


@pytest.fixture
async def attacker(database, admin) -> AsyncIterator[asyncpg.Connection]:
    """A second session of the bot's own login, ready to hold what it can."""
    conn = await asyncpg.connect(database.bot_url)
    await init_connection(conn)
    try:
        yield conn
    finally:
        conn.terminate()


async def timed(call) -> tuple[float, object]:
    started = time.monotonic()
    try:
        result = await call
    except asyncpg.PostgresError as exc:
        result = exc
    return time.monotonic() - started, result


async def test_a_session_holding_every_lock_it_can_take_stalls_nobody_else(
        real_bot_conn, attacker, admin, database, paused_restore_job) -> None:
    # (pg_cron's own run, paused: it could stage both waifus before the player's spends.)
    bot = real_bot_conn
    for telegram_id in (ATTACKER_PLAYER, PLAYER):
        await bot.fetchval("SELECT api.register_player($1, 'u', 'U', 'en')", telegram_id)
        await bot.fetchval("SELECT api.adopt_waifu($1, 'sakura', 'a')", telegram_id)
    mine = await admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = $1", PLAYER)
    theirs = await admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = $1", ATTACKER_PLAYER)
    # Both waifus are due for the tick: a clock an hour back, 50 energy.
    await admin.execute("""UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object(
                               'energy', 50, 'last_restore', extract(epoch FROM now()) - 3600)""")
    await admin.fetchval("SELECT ops.reset_tick(now() - interval '1 day')")
    await admin.execute("INSERT INTO game.notifications (telegram_id, kind, payload) "
                        "VALUES ($1, 'rested', '{\"waifus\": []}')", ATTACKER_PLAYER)

    # The attacker opens a transaction and takes, through every function its login may
    # call, every row lock there is to take for its player; and the rate-limit buckets,
    # the update record and the polling lock.
    tx = attacker.transaction()
    await tx.start()
    a = ATTACKER_PLAYER
    for sql, args in [
        ("SELECT api.register_player($1, 'x', 'X', 'en')", [a]),
        ("SELECT api.adopt_waifu($1, 'yuki', 'b')", [a]),
        ("SELECT api.participate_in_event($1, $2, 'walk', 'k')", [a, theirs]),
        ("SELECT api.claim_daily($1, 'd')", [a]),
        ("SELECT api.set_player_setting($1, 'language', 'ru')", [a]),
        ("SELECT api.claim_notifications('evil', 1000, 3600)", []),
        ("SELECT api.rate_limit('chat_user', $1)", [str(a)]),
        ("SELECT api.admit_update(1, 77, $1, $1)", [a]),
        ("SELECT api.try_polling_lock(1)", []),
    ]:
        await attacker.fetchval(sql, *args)

    # Another player: every call finishes well within a second.
    for sql, args in [
        ("SELECT api.player_profile($1)", [PLAYER]),
        ("SELECT api.player_waifu_stats($1, $2)", [PLAYER, mine]),
        ("SELECT api.participate_in_event($1, $2, 'walk', 'k')", [PLAYER, mine]),
        ("SELECT api.claim_daily($1, 'd')", [PLAYER]),
        ("SELECT api.set_player_setting($1, 'notifications', 'on')", [PLAYER]),
        ("SELECT api.rate_limit('chat_user', $1)", [str(PLAYER)]),
        ("SELECT api.admit_update(1, 78, $1, $1)", [PLAYER]),
        ("SELECT api.waifu_templates()", []),
    ]:
        elapsed, result = await timed(bot.fetchval(sql, *args))
        assert not isinstance(result, Exception), (sql, result)
        assert elapsed < 1.0, (sql, elapsed)

    # The tick, as pg_cron runs it: done in well under a second, the attacker's held waifu
    # found all the same (the tick locks no waifu; the player's own has spent since).
    cron = await asyncpg.connect(database.admin_url)
    try:
        await cron.execute("SET ROLE waifu_cron")
        elapsed, result = await timed(cron.execute("CALL game.restore_energy_job()"))
    finally:
        await cron.close()
    assert not isinstance(result, Exception), result
    assert elapsed < 1.0
    assert await admin.fetchval("SELECT sum(waifus) FROM game.rested_ranges") == 1

    # The attacker's own player: their calls that need a held row fail after the lock
    # timeout (a second), never hang holding a connection; reads still answer.
    elapsed, result = await timed(bot.fetchval("SELECT api.claim_daily($1, 'd2')", ATTACKER_PLAYER))
    assert isinstance(result, asyncpg.PostgresError) and result.sqlstate == "55P03"
    assert 0.9 < elapsed < 3
    elapsed, result = await timed(bot.fetchval("SELECT api.player_profile($1)", ATTACKER_PLAYER))
    assert elapsed < 1 and isinstance(result, dict)

    await tx.rollback()
    # Released: her energy reads full, and the sender's claim tells her player.
    assert (await admin.fetchval("SELECT api.waifu_stats($1)", theirs))["energy"] == 100
    assert await admin.fetchval("SELECT game.expand_rested(now(), 10)") == 1
    newest = "SELECT telegram_id FROM game.notifications ORDER BY id DESC LIMIT 1"
    assert await admin.fetchval(newest) == ATTACKER_PLAYER


async def test_a_slow_tick_batch_holds_up_no_unrelated_call(real_bot_conn, admin, database) -> None:
    # A batch of the tick in progress holds only the rows it fills: a player whose waifu
    # is not among them is not held up, however long the batch takes.
    bot = real_bot_conn
    await bot.fetchval("SELECT api.register_player($1, 'u', 'U', 'en')", PLAYER)
    mine = await bot.fetchval("SELECT api.adopt_waifu($1, 'sakura', 'a')", PLAYER)
    tick = await asyncpg.connect(database.admin_url)
    try:
        async with tick.transaction():
            await tick.fetchval("SELECT api.restore_energy()")
            await asyncio.sleep(0.1)
            for sql, args in [("SELECT api.participate_in_event($1, $2, 'walk', 'k')", [PLAYER, mine]),
                              ("SELECT api.claim_daily($1, 'd')", [PLAYER]),
                              ("SELECT api.player_profile($1)", [PLAYER])]:
                elapsed, result = await timed(bot.fetchval(sql, *args))
                assert not isinstance(result, Exception), (sql, result)
                assert elapsed < 1.0, (sql, elapsed)
    finally:
        await tick.close()


async def test_the_ledger_upkeep_gives_up_rather_than_queue_everyone(attacker, admin, real_bot_conn) -> None:
    # Dropping an old week needs the ledger's ACCESS EXCLUSIVE lock; a session that holds
    # the ledger open must not make every participation queue behind the waiting DROP.
    bot = real_bot_conn
    await bot.fetchval("SELECT api.register_player($1, 'u', 'U', 'en')", PLAYER)
    mine = await bot.fetchval("SELECT api.adopt_waifu($1, 'sakura', 'a')", PLAYER)
    await admin.execute("CREATE TABLE game.participations_2000w01 PARTITION OF game.participations "
                        "FOR VALUES FROM ('2000-01-03') TO ('2000-01-10')")
    try:
        tx = attacker.transaction()
        await tx.start()
        await attacker.fetchval("SELECT api.participate_in_event($1, $2, 'walk', 'held')", PLAYER, mine)
        elapsed, result = await timed(admin.fetchval("SELECT game.maintain_ledger()"))
        assert isinstance(result, asyncpg.PostgresError) and result.sqlstate == "55P03"
        assert elapsed < 3
        await tx.rollback()
        assert "participations_2000w01" in (await admin.fetchval("SELECT game.maintain_ledger()"))["dropped"]
    finally:
        await admin.execute("DROP TABLE IF EXISTS game.participations_2000w01")
