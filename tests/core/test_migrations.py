"""Migrations: applying twice is a no-op, rolling everything back and applying again
gives the same schema and a working game, and a database pg_cron does not serve is
refused with a clear error.

These run in the session's database: whatever happens, the migrations are applied
again at the end and the bot's password restored, as tests/conftest.py left them.
"""

from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg2
import pytest

from db import migrate
from tests.conftest import BOT_PASSWORD, BOT_ROLE, init_connection
from tests.core.conftest import T0, at

# Everything the migrations define, as text: functions (source, privileges, settings,
# comments), tables and views (columns, definitions, privileges), indexes, cron jobs.
FINGERPRINT_SQL = """
SELECT 'function', p.oid::regprocedure::text,
       concat_ws(' | ', md5(p.prosrc), p.proacl::text, p.proconfig::text, p.prosecdef,
                 p.provolatile, obj_description(p.oid, 'pg_proc'))
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('game', 'api', 'ops')
UNION ALL
SELECT 'relation', c.oid::regclass::text,
       concat_ws(' | ', c.relkind, c.relacl::text, obj_description(c.oid, 'pg_class'),
                 CASE WHEN c.relkind = 'v' THEN md5(pg_get_viewdef(c.oid)) END,
                 (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                                    ORDER BY a.attnum)
                  FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname IN ('game', 'api', 'ops') AND c.relkind IN ('r', 'v', 'i', 'S')
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace IN (SELECT oid FROM pg_namespace WHERE nspname IN ('game', 'api', 'ops'))
UNION ALL
SELECT 'schema', nspname, concat_ws(' | ', nspacl::text, obj_description(oid, 'pg_namespace'))
FROM pg_namespace WHERE nspname IN ('game', 'api', 'ops')
UNION ALL
SELECT 'cron', jobname, concat_ws(' | ', schedule, command, database, username, active) FROM cron.job
UNION ALL
SELECT 'role', rolname, concat_ws(' | ', rolcanlogin, rolsuper, shobj_description(oid, 'pg_authid'))
FROM pg_roles WHERE rolname IN ('waifu_bot', 'waifu_ops')
ORDER BY 1, 2
"""


def fingerprint(url: str) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(FINGERPRINT_SQL)
        rows = cur.fetchall()
    conn.close()
    return rows


def restore_session_state(database) -> None:
    """Migrations applied, the bot's password set, plpgsql_check present."""
    migrate.apply(database.admin_url)
    with psycopg2.connect(database.admin_url) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER ROLE {BOT_ROLE} PASSWORD %s", (BOT_PASSWORD,))
        cur.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
    conn.close()


def test_applying_twice_is_a_no_op(database):
    before = fingerprint(database.admin_url)
    assert migrate.apply(database.admin_url) == 0
    assert fingerprint(database.admin_url) == before


async def test_roll_back_everything_then_apply_again(database):
    before = fingerprint(database.admin_url)
    migrations = len(list(migrate.MIGRATIONS_DIR.glob("[0-9]*.sql"))) - len(
        list(migrate.MIGRATIONS_DIR.glob("*.rollback.sql")))
    try:
        assert migrate.rollback_all(database.admin_url) == migrations
        admin = await asyncpg.connect(database.admin_url)
        try:
            assert await admin.fetchval(
                "SELECT count(*) FROM pg_namespace WHERE nspname IN ('game', 'api', 'ops')") == 0
            assert await admin.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'") == 0
        finally:
            await admin.close()
        assert migrate.rollback_all(database.admin_url) == 0
        assert migrate.apply(database.admin_url) == migrations
    finally:
        restore_session_state(database)
    assert fingerprint(database.admin_url) == before

    # the game works again, as the bot's role, with the seeds in place
    bot = await asyncpg.connect(database.bot_url)
    admin = await asyncpg.connect(database.admin_url)
    try:
        await init_connection(bot)
        await init_connection(admin)
        await bot.fetchval("SELECT api.register_player(1, 'u', 'U', 'en')")
        wid = await bot.fetchval("SELECT api.adopt_waifu(1, 'sakura')")
        r = await bot.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k', $2)", wid, T0)
        assert r["energy"] == 90
        assert await admin.fetchval("SELECT api.restore_energy($1)", at(minutes=3)) == 1
        assert (await bot.fetchval("SELECT api.waifu_stats($1, $2)", wid, at(minutes=3)))["energy"] == 93
        assert len(await bot.fetchval("SELECT api.waifu_templates()")) == 5
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await bot.execute("DELETE FROM game.waifus")
    finally:
        await bot.close()
        await admin.execute("TRUNCATE game.participations, game.waifus, game.players RESTART IDENTITY CASCADE")
        await admin.close()


def test_database_without_pg_cron_is_refused_with_a_clear_error(database):
    other = "core_test_other"
    parts = urlsplit(database.admin_url)
    other_url = urlunsplit(parts._replace(path=f"/{other}"))
    conn = psycopg2.connect(database.admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('cron.database_name')")
            (cron_db,) = cur.fetchone()
            cur.execute(f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")
            cur.execute(f"CREATE DATABASE {other}")
        try:
            with pytest.raises(psycopg2.Error) as info:
                migrate.apply(other_url)
            message = str(info.value)
            assert f'pg_cron runs its jobs in database "{cron_db}", but the game is being installed in "{other}"' \
                in message
            assert f"Set cron.database_name = '{other}'" in message  # the hint says how to fix it
            with psycopg2.connect(other_url) as oc, oc.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('game', 'api', 'ops')")
                assert cur.fetchone() == (0,)
            oc.close()
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE {other} WITH (FORCE)")  # yoyo may still hold a connection
    finally:
        conn.close()
