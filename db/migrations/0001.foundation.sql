-- Foundation: pg_cron, the roles, the three schemas and default privileges.
--
-- game: tables and internal rules (no privileges for the bot)
-- api:  what the bot calls (role waifu_bot: EXECUTE only)
-- ops:  what operators call from psql (role waifu_ops: ops + read access)
--
-- Must run as a superuser (pg_cron is not a trusted extension) in the database named
-- by cron.database_name.
-- depends:

DO $$
DECLARE
    preload text[] := string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',');
    cron_db text := current_setting('cron.database_name', true);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed on this PostgreSQL server'
            USING HINT = 'Install it (Debian/Ubuntu: apt-get install postgresql-15-cron), then set '
                         'shared_preload_libraries = ''pg_cron'' and cron.database_name = '''
                         || current_database() || ''' in postgresql.conf and restart the server.';
    END IF;
    IF NOT 'pg_cron' = ANY (preload) THEN
        RAISE EXCEPTION 'pg_cron is installed but not loaded (shared_preload_libraries = %)',
                current_setting('shared_preload_libraries')
            USING HINT = 'Add pg_cron to shared_preload_libraries and set cron.database_name = '''
                         || current_database() || ''' in postgresql.conf, then restart the server.';
    END IF;
    IF coalesce(cron_db, 'postgres') <> current_database() THEN
        RAISE EXCEPTION 'pg_cron runs its jobs in database "%", but the game is being installed in "%"',
                coalesce(cron_db, 'postgres'), current_database()
            USING HINT = 'Set cron.database_name = ''' || current_database()
                         || ''' in postgresql.conf and restart the server.';
    END IF;
END
$$;

CREATE EXTENSION IF NOT EXISTS pg_cron;

-- Roles are cluster-wide: create them only if another database has not already.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_bot') THEN
        -- LOGIN without a password: set one with ALTER ROLE (password auth) or trust it locally.
        CREATE ROLE waifu_bot LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_ops') THEN
        -- A group role: GRANT waifu_ops TO <operator>;
        CREATE ROLE waifu_ops NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE waifu_bot IS 'The Telegram bot: EXECUTE on schema api only, no table privileges.';
COMMENT ON ROLE waifu_ops IS 'Operators: the ops schema, read access to game, and api.';

CREATE SCHEMA game;
COMMENT ON SCHEMA game IS 'Tables and internal rules of the waifu game. Not granted to the bot.';
CREATE SCHEMA api;
COMMENT ON SCHEMA api IS 'Functions the bot calls. Each is SECURITY DEFINER with an empty search_path.';
CREATE SCHEMA ops;
COMMENT ON SCHEMA ops IS 'Functions and views for operators in psql (role waifu_ops).';

GRANT USAGE ON SCHEMA api TO waifu_bot, waifu_ops;
GRANT USAGE ON SCHEMA ops, game TO waifu_ops;

-- Nothing is callable by PUBLIC unless a migration grants it explicitly.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA game GRANT SELECT ON TABLES TO waifu_ops;
ALTER DEFAULT PRIVILEGES IN SCHEMA ops GRANT SELECT ON TABLES TO waifu_ops;
