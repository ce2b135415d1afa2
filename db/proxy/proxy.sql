-- The proxy database's fixed part (db/partitions.py, setup_proxy): the extension, roles,
-- schemas and the plumbing the generated api/ops wrappers call. Idempotent.
CREATE EXTENSION IF NOT EXISTS plproxy;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_bot') THEN
        CREATE ROLE waifu_bot LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_ops') THEN
        CREATE ROLE waifu_ops NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_clock') THEN
        CREATE ROLE waifu_clock NOLOGIN;
    END IF;
END
$$;
DO $$
BEGIN
    EXECUTE pg_catalog.format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', pg_catalog.current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS proxy;
COMMENT ON SCHEMA proxy IS 'PL/Proxy plumbing (db/partitions.py): hashing, error cleaning. Not for callers.';
CREATE SCHEMA IF NOT EXISTS api;
CREATE SCHEMA IF NOT EXISTS ops;
CREATE SCHEMA IF NOT EXISTS game;
COMMENT ON SCHEMA game IS 'Read-only views of the partitions'' game tables (union of all partitions).';
GRANT USAGE ON SCHEMA api TO waifu_bot, waifu_ops;
GRANT USAGE ON SCHEMA ops, game TO waifu_ops;

CREATE OR REPLACE FUNCTION proxy.player_hash(telegram_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(pg_catalog.hashint8(telegram_id), 0);
COMMENT ON FUNCTION proxy.player_hash(bigint) IS 'Partition hash of a player (the same as partition.player_hash).';
CREATE OR REPLACE FUNCTION proxy.waifu_hash(waifu_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(waifu_id & 65535, 0)::integer;
COMMENT ON FUNCTION proxy.waifu_hash(bigint) IS 'Partition hash of a waifu: its id (low bits = owner''s hash).';
CREATE OR REPLACE FUNCTION proxy.text_hash(key text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(pg_catalog.hashtext(key), 0);
COMMENT ON FUNCTION proxy.text_hash(text) IS 'Partition hash of a text key (a rate limit''s bucket key).';
CREATE OR REPLACE FUNCTION proxy.partition_count() RETURNS integer
    LANGUAGE sql STABLE
    RETURN (SELECT pg_catalog.count(*)::integer
            FROM pg_catalog.pg_foreign_server AS s, pg_catalog.unnest(s.srvoptions) AS o
            WHERE s.srvname = 'waifu' AND o OPERATOR(pg_catalog.~) '^p[0-9]+=');
COMMENT ON FUNCTION proxy.partition_count() IS 'How many partitions the PL/Proxy cluster waifu has.';

-- A function with defaults on the partitions is several overloads here (one per number
-- of arguments given): a GRANT or REVOKE on one of them is copied to its siblings, so
-- `GRANT EXECUTE ON FUNCTION api.waifu_stats(bigint, timestamptz)` also covers
-- api.waifu_stats(bigint), as it does on a partition.
CREATE OR REPLACE FUNCTION proxy.copy_grants_to_overloads() RETURNS event_trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grant_command boolean;
    g record;
BEGIN
    -- PostgreSQL does not say which object a GRANT named: settle every group. A GRANT
    -- gives each overload the union of the group's grantees, a REVOKE the intersection.
    IF pg_catalog.current_setting('proxy.copying_grants', true) = 'on' THEN
        RETURN;
    END IF;
    SELECT bool_or(c.command_tag = 'GRANT') INTO grant_command
    FROM pg_catalog.pg_event_trigger_ddl_commands() AS c WHERE c.command_tag IN ('GRANT', 'REVOKE');
    IF grant_command IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('proxy.copying_grants', 'on', true);
    FOR g IN
        WITH e AS (
            SELECT p.oid, p.pronamespace, p.proname, a.grantee
            FROM pg_catalog.pg_proc AS p
            JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace AND n.nspname IN ('api', 'ops')
            LEFT JOIN LATERAL pg_catalog.aclexplode(p.proacl) AS a
                   ON a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0),
        groups AS (
            SELECT e.pronamespace, e.proname, count(DISTINCT e.oid) AS n
            FROM e GROUP BY 1, 2 HAVING count(DISTINCT e.oid) > 1),
        wanted AS (
            SELECT e.pronamespace, e.proname, e.grantee
            FROM e JOIN groups USING (pronamespace, proname) WHERE e.grantee IS NOT NULL
            GROUP BY 1, 2, 3
            HAVING grant_command OR count(DISTINCT e.oid) = max(groups.n))
        SELECT DISTINCT e.oid::regprocedure AS f, w.grantee::regrole AS r, 'GRANT' AS verb
        FROM e JOIN wanted AS w USING (pronamespace, proname)
        WHERE NOT EXISTS (SELECT 1 FROM e AS x WHERE x.oid = e.oid AND x.grantee = w.grantee)
        UNION
        SELECT e.oid::regprocedure, e.grantee::regrole, 'REVOKE'
        FROM e JOIN groups USING (pronamespace, proname)
        WHERE e.grantee IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM wanted AS w
            WHERE (w.pronamespace, w.proname, w.grantee) = (e.pronamespace, e.proname, e.grantee))
    LOOP
        IF g.verb = 'GRANT' THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', g.f, g.r);
        ELSE
            EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM %s', g.f, g.r);
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('proxy.copying_grants', 'off', true);
END
$$;
DROP EVENT TRIGGER IF EXISTS copy_grants_to_overloads;
CREATE EVENT TRIGGER copy_grants_to_overloads ON ddl_command_end WHEN TAG IN ('GRANT', 'REVOKE')
    EXECUTE FUNCTION proxy.copy_grants_to_overloads();

-- INSTEAD OF UPDATE on the game.* views (only where `migrate --admin-writes` made them):
-- the row is updated on the partition that holds it, as the partitions' superuser.
CREATE OR REPLACE FUNCTION proxy.forward_update() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    route_column text := TG_ARGV[0];
    old_row jsonb := pg_catalog.to_jsonb(OLD) - 'partition_no';
    new_row jsonb := pg_catalog.to_jsonb(NEW) - 'partition_no';
    hash integer := proxy.player_hash((old_row ->> route_column)::bigint);
BEGIN
    IF partition_call.replace_row(hash, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, old_row, new_row) = 0 THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

-- INSERT and DELETE are not forwarded (only UPDATE); with this trigger the view checks the
-- caller's privileges first, as a table would (operators get 42501).
CREATE OR REPLACE FUNCTION proxy.refuse_insert_delete() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% on the proxy''s %.% is not forwarded: do it on the partition', TG_OP, TG_TABLE_SCHEMA,
        TG_TABLE_NAME USING ERRCODE = '0A000';
END
$$;

-- Which PL/Proxy cluster (which partition role) a call with a clock argument uses.
CREATE OR REPLACE FUNCTION proxy.clock_cluster() RETURNS text
    LANGUAGE sql STABLE
    RETURN CASE WHEN (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = session_user)
                  OR pg_catalog.pg_has_role(session_user, 'waifu_clock', 'MEMBER')
                THEN 'waifu' ELSE 'waifu_noclock' END;

-- True if an error from PL/Proxy says the partition could not be reached (down, refusing
-- connections, or the connection lost mid-call), not that the partition refused the call.
CREATE OR REPLACE FUNCTION proxy.unreachable(sqlstate text, message text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    RETURN NOT (message ~ ' REMOTE ERROR: ' AND sqlstate !~ '^(08|57)')
           AND coalesce(message ~ '^PL/Proxy function|REMOTE ERROR: ', false);

-- Re-raise an error from PL/Proxy as the partition raised it.
CREATE OR REPLACE FUNCTION proxy.reraise(sqlstate text, message text, detail text, hint text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state text := reraise.sqlstate;
    msg text := reraise.message;
    det text := reraise.detail;
    hnt text := reraise.hint;
BEGIN
    IF msg ~ ' REMOTE ERROR: ' AND state !~ '^(08|57)' THEN
        msg := pg_catalog.regexp_replace(msg, '^.*? REMOTE ERROR: ', '');
        det := pg_catalog.regexp_replace(det, '^Remote detail: ', '');
        hnt := pg_catalog.regexp_replace(hnt, '^Remote hint: ', '');
    ELSIF proxy.unreachable(state, msg) THEN
        state := '57P03';
        msg := 'partition unavailable: ' || msg;
    END IF;
    IF det IS NULL AND hnt IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg;
    ELSIF hnt IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = det;
    ELSIF det IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, HINT = hnt;
    ELSE
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, DETAIL = det, HINT = hnt;
    END IF;
END
$$;
