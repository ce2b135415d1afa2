"""Security in the database: what the bot's role can and cannot do, and the shape of
every exposed function (SECURITY DEFINER, empty search_path, comment, no PUBLIC)."""

import asyncpg
import pytest

from tests.conftest import CLOCK_BOT_ROLE
from tests.core.conftest import GAME_TABLES, T0, player_with_waifu

# The exposed surface. Adding, removing or changing a function must show up here.
SURFACE = {
    "api.adopt_waifu(telegram_id bigint, template_code text, request_key text DEFAULT NULL::text) -> bigint",
    "api.available_events(waifu_id bigint, now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.participate_in_event(telegram_id bigint, waifu_id bigint, event_code text, request_key text, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.player_available_events(telegram_id bigint, waifu_id bigint, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.player_profile(telegram_id bigint, now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.player_waifu_stats(telegram_id bigint, waifu_id bigint, now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.register_player(telegram_id bigint, username text, first_name text, language_code text) -> jsonb",
    "api.restore_energy(now timestamp with time zone DEFAULT now()) -> integer",
    "api.waifu_stats(waifu_id bigint, now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.waifu_templates(language text DEFAULT NULL::text) -> jsonb",
    "api.player_language(telegram_id bigint) -> text",
    "api.player_settings(telegram_id bigint, now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.set_player_setting(telegram_id bigint, name text, value text, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.claim_daily(telegram_id bigint, request_key text, now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.claim_notifications(worker text, batch_size integer, lease_seconds integer, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.finish_notifications(worker text, ids bigint[], outcome text, "
    "retry_after_seconds integer DEFAULT NULL::integer, now timestamp with time zone DEFAULT now()) -> integer",
    "ops.delete_translation(kind text, code text, language text) -> boolean",
    "ops.set_event_translation(event_code text, language text, title text) -> jsonb",
    "ops.set_template_translation(template_code text, language text, name text, "
    "description text DEFAULT NULL::text) -> jsonb",
    "ops.close_event(code text, at timestamp with time zone DEFAULT now()) -> jsonb",
    "ops.create_event(code text, title text, energy_cost integer, xp_reward integer, mood_delta integer, "
    "loyalty_delta integer, cooldown interval, starts_at timestamp with time zone DEFAULT NULL::timestamp with time "
    "zone, ends_at timestamp with time zone DEFAULT NULL::timestamp with time zone) -> jsonb",
    "ops.set_config(ledger_retention interval DEFAULT NULL::interval, "
    "notification_retention interval DEFAULT NULL::interval, notification_max_age interval DEFAULT NULL::interval, "
    "tick_batch_size integer DEFAULT NULL::integer) -> jsonb",
    "ops.reset_tick(since timestamp with time zone DEFAULT (now() - '01:00:00'::interval)) -> jsonb",
    "ops.set_rate_limit(bucket text, rate double precision, burst integer) -> jsonb",
    # 0012: the database's figures for Prometheus (also granted to the exporter's login).
    "ops.metrics() -> TABLE(players bigint, waifus bigint, waifus_regenerating bigint, "
    "tick_last_duration_seconds double precision, tick_last_filled integer, tick_last_batches integer, "
    "tick_last_finished_age_seconds double precision, tick_runs_total bigint, "
    "tick_filled_total bigint, tick_notified_total bigint, outbox_rested_staged bigint, "
    "outbox_waiting bigint, outbox_oldest_age_seconds double precision, ledger_partitions integer, "
    "ledger_bytes bigint, ledger_expired_partitions integer, ledger_oldest_age_seconds double precision, "
    "ledger_retention_seconds double precision, ledger_inserted_rows_total bigint, database_bytes bigint)",
    "ops.metrics_cron() -> TABLE(cron_job text, last_success_age_seconds double precision, "
    "last_run_seconds double precision, last_failed integer, succeeded_1h bigint, failed_1h bigint)",
    "ops.metrics_outbox() -> TABLE(outcome text, notifications bigint)",
    "api.rate_limit(bucket text, key text) -> double precision",
    "api.rate_limit_lease(bucket text, key text, wanted integer) -> "
    "TABLE(granted integer, retry_after double precision)",
    "api.admit_update(bot_id bigint, update_id bigint, user_id bigint, chat_id bigint) -> jsonb",
    "api.forget_update(bot_id bigint, update_id bigint) -> boolean",
    "api.try_polling_lock(bot_id bigint) -> boolean",
    "api.release_polling_lock(bot_id bigint) -> boolean",
    "ops.set_stat(waifu_id bigint, stat text, value integer, reason text DEFAULT NULL::text) -> jsonb",
    # 0013: the collection, coins, the shop, leaderboards, groups
    "api.player_waifus(telegram_id bigint, now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.set_active_waifu(telegram_id bigint, waifu_id bigint) -> jsonb",
    "api.shop(telegram_id bigint) -> jsonb",
    "api.inventory(telegram_id bigint) -> jsonb",
    "api.buy_item(telegram_id bigint, item_code text, request_key text, quantity integer DEFAULT 1, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.give_gift(telegram_id bigint, waifu_id bigint, item_code text, request_key text, "
    "chat_id bigint DEFAULT NULL::bigint, now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.leaderboard(telegram_id bigint, board text, chat_id bigint DEFAULT NULL::bigint, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.register_group_member(chat_id bigint, telegram_id bigint, title text DEFAULT NULL::text, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.set_group_events(chat_id bigint, telegram_id bigint, enabled boolean, is_admin boolean, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.join_group_event(telegram_id bigint, event_id bigint, waifu_id bigint DEFAULT NULL::bigint, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.claim_group_messages(worker text, batch_size integer, lease_seconds integer, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.finish_group_messages(worker text, ids bigint[], outcome text, "
    "retry_after_seconds integer DEFAULT NULL::integer, now timestamp with time zone DEFAULT now()) -> integer",
    "ops.set_economy(waifus_per_player integer DEFAULT NULL::integer, "
    "group_event_every interval DEFAULT NULL::interval, group_event_window interval DEFAULT NULL::interval, "
    "group_event_pool integer DEFAULT NULL::integer) -> jsonb",
    "ops.set_event_coins(event_code text, coins integer) -> jsonb",
    "ops.adjust_coins(telegram_id bigint, delta integer, reason text) -> jsonb",
    "ops.create_item(code text, name text, price integer, mood_delta integer, loyalty_delta integer, "
    "energy_delta integer, cooldown interval, description text DEFAULT NULL::text) -> jsonb",
    "ops.stop_selling_item(code text) -> jsonb",
    "ops.set_item_translation(item_code text, language text, name text, description text DEFAULT NULL::text) "
    "-> jsonb",
    # 0014: stat card photos, groups' language, cron expectations
    "api.stat_card(telegram_id bigint, waifu_id bigint, bot_id bigint, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.remember_card_photo(bot_id bigint, template_code text, language text, rarity text, design text, "
    "file_id text) -> jsonb",
    "api.set_group_language(chat_id bigint, telegram_id bigint, language text, is_admin boolean, "
    "now timestamp with time zone DEFAULT now()) -> jsonb",
    "api.group_languages(chat_ids bigint[]) -> jsonb",
    "ops.forget_card_photos(bot_id bigint DEFAULT NULL::bigint) -> integer",
    "ops.set_cron_expectation(jobname text, stalled_after interval) -> jsonb",
}

# Who may EXECUTE what, besides the owner.
# Exactly what bot/game.py calls: the owner-blind reads and the tick are not among them.
BOT_CALLS = {"adopt_waifu", "participate_in_event", "player_available_events",
             "player_profile", "player_waifu_stats", "register_player", "waifu_templates", "player_language",
             "player_settings", "set_player_setting", "claim_daily", "claim_notifications", "finish_notifications",
             "rate_limit", "rate_limit_lease", "admit_update", "forget_update", "try_polling_lock",
             "release_polling_lock",
             # 0013
             "player_waifus", "set_active_waifu", "shop", "inventory", "buy_item", "give_gift", "leaderboard",
             "register_group_member", "set_group_events", "join_group_event", "claim_group_messages",
             "finish_group_messages",
             # 0014
             "stat_card", "remember_card_photo", "set_group_language", "group_languages"}
# Writes only the bot makes (a player's own action, or its sender's bookkeeping): not for operators.
BOT_ONLY = {"register_player", "adopt_waifu", "participate_in_event", "claim_daily", "claim_notifications",
            "finish_notifications", "rate_limit", "rate_limit_lease", "admit_update", "forget_update",
            "try_polling_lock",
            "release_polling_lock", "set_active_waifu", "buy_item", "give_gift", "register_group_member",
            "set_group_events", "join_group_event", "claim_group_messages", "finish_group_messages",
            "remember_card_photo", "set_group_language"}
# The pg_cron jobs' role: the job functions only.
CRON_CALLS = {"api.restore_energy", "game.maintain_ledger", "game.purge_cron_history", "game.purge_player_history",
              "game.tick_batch", "game.restore_energy_job", "game.purge_rate_limits", "game.group_events_job",
              "game.refresh_rank_steps", "game.trim_coin_ledger"}
# The metrics exporter's login (0012): these and nothing else.
MONITOR_CALLS = {"metrics", "metrics_cron", "metrics_outbox"}
SAFE_SEARCH_PATH = ["search_path=pg_catalog, pg_temp"]

EXPOSED_SQL = """
SELECT p.oid, n.nspname || '.' || p.proname AS name, p.proname, n.nspname AS schema,
       p.prosecdef, p.proconfig, obj_description(p.oid, 'pg_proc') AS comment,
       n.nspname || '.' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> '
           || pg_get_function_result(p.oid) AS signature,
       p.oid::regprocedure::text AS regprocedure
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('api', 'ops')
ORDER BY 2
"""


@pytest.fixture
async def exposed(admin):
    return await admin.fetch(EXPOSED_SQL)


async def test_surface_is_exactly_the_documented_functions(exposed):
    assert {r["signature"] for r in exposed} == SURFACE


async def test_every_exposed_function_is_security_definer_with_pg_temp_last_in_its_search_path(exposed):
    wrong = [r["name"] for r in exposed if not r["prosecdef"] or r["proconfig"] != SAFE_SEARCH_PATH]
    assert wrong == []


async def test_every_security_definer_function_in_the_database_puts_pg_temp_last(admin):
    # An empty search_path still searches the caller's pg_temp first for types and
    # relations: only an explicit pg_temp at the end keeps a caller's objects out.
    rows = await admin.fetch("""
        SELECT p.oid::regprocedure::text AS f, p.proconfig
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'cron')""")
    assert rows, "no SECURITY DEFINER function found: the query is wrong"
    # (Other settings may follow: game.maintain_ledger's lock_timeout.)
    assert [r["f"] for r in rows if (r["proconfig"] or [None])[0] != SAFE_SEARCH_PATH[0]] == []


async def test_pg_cron_jobs_run_as_the_least_privileged_cron_role(admin):
    jobs = await admin.fetch("SELECT jobname, username FROM cron.job ORDER BY jobname")
    assert {(j["jobname"], j["username"]) for j in jobs} == {
        ("ledger-partitions", "waifu_cron"), ("purge-cron-history", "waifu_cron"), ("restore-energy", "waifu_cron"),
        ("purge-player-history", "waifu_cron"), ("purge-rate-limits", "waifu_cron"), ("group-events", "waifu_cron"),
        ("leaderboard-steps", "waifu_cron"), ("coin-ledger-retention", "waifu_cron")}
    callable_by_cron = {r["f"] for r in await admin.fetch("""
        SELECT n.nspname || '.' || p.proname AS f
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('api', 'ops', 'game') AND has_function_privilege('waifu_cron', p.oid, 'EXECUTE')""")}
    assert callable_by_cron == CRON_CALLS
    assert await admin.fetchval("""SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls
                                   FROM pg_roles WHERE rolname = 'waifu_cron'""") is False
    assert await admin.fetchval("""SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                                   WHERE n.nspname IN ('game', 'ops', 'api')
                                     AND has_table_privilege('waifu_cron', c.oid, 'SELECT, INSERT, UPDATE, DELETE')
                                """) == 0


async def test_public_may_not_create_temporary_objects_or_in_schema_public(admin):
    assert await admin.fetchval("SELECT has_database_privilege('public', current_database(), 'TEMPORARY')") is False
    for role in ("waifu_bot", "waifu_ops", "waifu_cron"):
        assert await admin.fetchval("SELECT has_database_privilege($1, current_database(), 'TEMPORARY')", role) \
            is False, role
        assert await admin.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", role) is False, role


async def test_every_exposed_function_has_a_comment(exposed):
    assert [r["name"] for r in exposed if not (r["comment"] or "").strip()] == []


async def test_no_function_in_game_api_or_ops_is_executable_by_public(admin):
    public = await admin.fetch("""
        SELECT p.oid::regprocedure::text AS f
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('api', 'ops', 'game')
          AND (p.proacl IS NULL  -- NULL means the default, which includes PUBLIC
               OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) AS a WHERE a.grantee = 0))""")
    assert [r["f"] for r in public] == []


async def test_execute_grants_are_exactly_as_designed(admin, exposed):
    for r in exposed:
        roles = {row["rolname"] for row in await admin.fetch(
            """SELECT r.rolname FROM aclexplode((SELECT proacl FROM pg_proc WHERE oid = $1)) AS a
               JOIN pg_roles AS r ON r.oid = a.grantee
               WHERE a.privilege_type = 'EXECUTE' AND r.rolname <> current_user
                 AND r.rolname <> $2  -- the tests' own role (tests/conftest.py)""", r["oid"], CLOCK_BOT_ROLE)}
        expected = {"waifu_ops"} if r["schema"] == "ops" else set()
        if r["proname"] in MONITOR_CALLS:
            expected = {"waifu_ops", "waifu_monitor"}
        if r["schema"] == "api":
            expected = ({"waifu_bot"} if r["proname"] in BOT_CALLS else set()) | (
                {"waifu_ops"} if r["proname"] not in BOT_ONLY else set()) | (
                {"waifu_cron"} if r["name"] in CRON_CALLS else set())
        assert roles == expected, r["name"]


async def test_fresh_role_cannot_call_api_functions(admin):
    await admin.execute("DROP ROLE IF EXISTS core_test_nobody")
    await admin.execute("CREATE ROLE core_test_nobody")
    try:
        # even with USAGE on the schema, only an explicit EXECUTE grant opens a function
        await admin.execute("GRANT USAGE ON SCHEMA api, ops, game TO core_test_nobody")
        async with admin.transaction():
            await admin.execute("SET LOCAL ROLE core_test_nobody")
            for sql in ("SELECT api.waifu_templates()", "SELECT api.waifu_stats(1)",
                        "SELECT api.register_player(1, 'u', 'U', 'en')", "SELECT api.restore_energy()",
                        "SELECT ops.set_stat(1, 'xp', 1)", "SELECT game.max_energy()"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for function"):
                    async with admin.transaction():  # a savepoint per refusal
                        await admin.fetchval(sql)
    finally:
        await admin.execute("REVOKE ALL ON SCHEMA api, ops, game FROM core_test_nobody")
        await admin.execute("DROP ROLE core_test_nobody")


# a plain column of each table (updating a key or identity column fails for other reasons)
PLAIN_COLUMN = {"players": "username", "waifu_templates": "name", "waifus": "name", "events": "title",
                "participations": "request_key", "stat_corrections": "reason", "config": "ledger_retention",
                "notifications": "kind", "tick_state": "cursor_id", "rested_ranges": "waifus",
                "rate_limits": "burst", "rate_buckets": "tat", "seen_updates": "seen_at",
                "request_keys": "event_code", "economy": "group_event_pool", "wallets": "coins",
                "coin_ledger": "ref", "items": "price", "item_translations": "name", "inventory": "quantity",
                "purchases": "result", "gifts": "result", "groups": "title", "group_members": "last_seen_at",
                "group_events": "pool", "group_event_participants": "coins", "group_messages": "payload",
                "rank_steps": "xp", "card_photos": "file_id", "cron_expectations": "stalled_after"}


@pytest.mark.parametrize("table", GAME_TABLES + ("tick_state", "rested_ranges", "rate_limits", "rate_buckets",
                                                 "seen_updates", "rank_steps"))
async def test_bot_cannot_touch_game_tables(admin, bot_conn, table):
    column = PLAIN_COLUMN[table]
    for sql in (f"SELECT * FROM game.{table}", f"DELETE FROM game.{table}",
                f"UPDATE game.{table} SET {column} = {column}", f"INSERT INTO game.{table} DEFAULT VALUES",
                f"TRUNCATE game.{table}"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await bot_conn.execute(sql)


async def test_bot_cannot_write_a_waifu_directly(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    before = await admin.fetchrow("SELECT * FROM game.waifus")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await bot_conn.execute("""UPDATE game.waifus SET dynamic = jsonb_set(dynamic, '{xp}', '1000000')
                                  WHERE id = $1""", wid)
    assert await admin.fetchrow("SELECT * FROM game.waifus") == before


async def test_bot_has_no_table_privilege_and_no_create(admin):
    rows = await admin.fetch("""
        SELECT c.oid::regclass::text AS t FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('game', 'ops', 'api')
          AND has_table_privilege('waifu_bot', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES')""")
    assert [r["t"] for r in rows] == []
    for schema in ("game", "api", "ops", "public"):
        assert await admin.fetchval("SELECT has_schema_privilege('waifu_bot', $1, 'CREATE')", schema) is False
    assert await admin.fetchval("SELECT has_schema_privilege('waifu_bot', 'game', 'USAGE')") is False
    assert await admin.fetchval("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls "
                                "FROM pg_roles WHERE rolname = 'waifu_bot'") is False


@pytest.mark.parametrize("sql", [
    "SELECT api.restore_energy()",
    "SELECT api.restore_energy($1)",
    "SELECT ops.set_stat(1, 'xp', 5)",
    "SELECT ops.create_event('x', 'X', 1, 1, 1, 1, '0')",
    "SELECT ops.close_event('walk')",
    "SELECT * FROM ops.overview",
    "SELECT * FROM ops.waifus",
    "SELECT * FROM ops.cron_jobs",
    "SELECT game.regen('{}'::jsonb, now())",
    "SELECT * FROM cron.job",
    "CALL game.restore_energy_job()",
    "SELECT game.tick_batch(true)",
    "SELECT game.purge_rate_limits()",
    "SELECT ops.reset_tick()",
    "SELECT ops.set_rate_limit('chat_user', 1000, 1000)",
    "SELECT cron.schedule('evil', '* * * * *', 'SELECT 1')",
])
async def test_bot_cannot_call_ops_cron_or_internal_functions(admin, bot_conn, sql):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await bot_conn.fetch(sql, *([T0] if "$1" in sql else []))


async def test_security_definer_functions_ignore_the_callers_search_path(admin, bot_conn):
    # A caller's search_path with a shadowing function must not change what the api does.
    wid = await player_with_waifu(bot_conn)
    await admin.execute("CREATE SCHEMA IF NOT EXISTS core_test_evil")
    try:
        await admin.execute("""CREATE OR REPLACE FUNCTION core_test_evil.to_jsonb(integer) RETURNS jsonb
                               LANGUAGE sql AS $$ SELECT '999'::jsonb $$""")
        await admin.execute("GRANT USAGE ON SCHEMA core_test_evil TO waifu_bot")
        await admin.execute("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA core_test_evil TO waifu_bot")
        await bot_conn.execute("SET search_path = core_test_evil, pg_catalog")
        assert await bot_conn.fetchval("SELECT to_jsonb(5)") == 999  # the shadow works where not protected
        r = await bot_conn.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k', $2)", wid, T0)
        assert r["energy"] == 90
        assert (await admin.fetchval("SELECT dynamic FROM game.waifus"))["energy"] == 90
    finally:
        await admin.execute("DROP SCHEMA core_test_evil CASCADE")
