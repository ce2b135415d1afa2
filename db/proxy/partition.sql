-- Each partition's own part of the PL/Proxy layer (db/partitions.py, setup_partition): run as
-- superuser on every partition, idempotent. Not a migration: a single-database deployment
-- has none of it. The partition's number and count go in partition.identity (from Python).
-- 16 and 65535 below: db/partitions.py's HASH_BITS and its mask (tests/proxy/test_sql.py).
CREATE SCHEMA IF NOT EXISTS partition;
COMMENT ON SCHEMA partition IS 'This database as one partition behind the PL/Proxy database (db/partitions.py).';
CREATE TABLE IF NOT EXISTS partition.identity (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    index integer NOT NULL,
    count integer NOT NULL
);

-- The same hash as the proxy's proxy.player_hash.
CREATE OR REPLACE FUNCTION partition.player_hash(telegram_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(pg_catalog.hashint8(telegram_id), 0);

-- A waifu id carries its owner's hash in its low bits: RUN ON waifu_id then lands on the
-- owner's partition for any partition count up to 2^HASH_BITS (splits need no new ids),
-- and ids of different partitions never collide (their low bits differ).
CREATE OR REPLACE FUNCTION partition.waifu_id_carries_owner() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.id := (NEW.id << 16) | (partition.player_hash(NEW.owner_id) & 65535);
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER waifu_id_carries_owner BEFORE INSERT ON game.waifus
    FOR EACH ROW EXECUTE FUNCTION partition.waifu_id_carries_owner();

-- Notification ids likewise (api.finish_notifications runs on ALL partitions with a list
-- of ids: ids of different partitions must not collide).
CREATE OR REPLACE FUNCTION partition.notification_id_carries_player() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.id := (NEW.id << 16) | (partition.player_hash(NEW.telegram_id) & 65535);
    RETURN NEW;
END
$$;
DO $$
BEGIN
    IF pg_catalog.to_regclass('game.notifications') IS NOT NULL THEN
        CREATE OR REPLACE TRIGGER notification_id_carries_player BEFORE INSERT ON game.notifications
            FOR EACH ROW EXECUTE FUNCTION partition.notification_id_carries_player();
    END IF;
END
$$;

-- Rows of an ops view or a game table, for the proxy's aggregate views (runs as the
-- caller, waifu_proxy: SELECT privileges of waifu_ops apply).
CREATE OR REPLACE FUNCTION partition.relation_rows(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[] := pg_catalog.parse_ident(relation_rows.relation);
BEGIN
    IF pg_catalog.array_length(parts, 1) <> 2 OR parts[1] NOT IN ('ops', 'game') THEN
        RAISE EXCEPTION 'only ops.* and game.* relations' USING ERRCODE = '42501';
    END IF;
    RETURN QUERY EXECUTE pg_catalog.format(
        'SELECT (SELECT i.index FROM partition.identity AS i), pg_catalog.to_jsonb(r) FROM %I.%I AS r',
        parts[1], parts[2]);
END
$$;

-- Health of this partition for ops.partitions on the proxy.
CREATE OR REPLACE FUNCTION partition.status() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    digest text := '';
    part text;
    t regclass;
BEGIN
    -- The catalogue (game tables without a player or waifu column: templates, events,
    -- translations, settings) as rows without their update times (each partition stamps
    -- its own).
    FOR t IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class AS c
        WHERE c.relnamespace = 'game'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          -- Each partition's own state, not catalogue: the tick's cursor, the rate limiter.
          AND c.relpersistence = 'p' AND c.relname <> 'tick_state'
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = c.oid AND NOT a.attisdropped
                          AND a.attname IN ('telegram_id', 'owner_id', 'waifu_id'))
        ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.string_agg(r, E''\n'' ORDER BY r) FROM '
            '(SELECT (pg_catalog.to_jsonb(x) - ''updated_at'' - ''created_at'')::text AS r FROM %s AS x) AS y', t)
            INTO part;
        digest := digest || t::text || ':' || coalesce(part, '') || E'\n';
    END LOOP;
    digest := pg_catalog.md5(digest);
    RETURN pg_catalog.jsonb_build_object(
        'partition', (SELECT i.index FROM partition.identity AS i),
        'count', (SELECT i.count FROM partition.identity AS i),
        'database', pg_catalog.current_database(),
        'in_recovery', pg_catalog.pg_is_in_recovery(),
        'catalogue_digest', digest,
        'cron', (SELECT pg_catalog.jsonb_object_agg(j.jobname, j.health) FROM ops.cron_jobs AS j),
        'migrations', (SELECT pg_catalog.jsonb_agg(m.migration_id ORDER BY m.applied_at_utc)
                       FROM public._yoyo_migration AS m));
END
$$;
-- UPDATE one row of a game table by its primary key (the proxy's game.* views forward a
-- superuser's UPDATE here; tests' set-up and operators' repairs). Generated and identity
-- columns are left alone.
CREATE OR REPLACE FUNCTION partition.replace_row(relation text, old_row jsonb, new_row jsonb) RETURNS integer
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass := relation::regclass;
    cols text;
    keys text;
    n integer;
BEGIN
    IF (pg_catalog.parse_ident(relation))[1] <> 'game' THEN
        RAISE EXCEPTION 'only game.* tables' USING ERRCODE = '42501';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' AND a.attidentity <> 'a';
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO keys
    FROM pg_catalog.pg_index AS i
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = rel AND i.indisprimary;
    IF keys IS NULL THEN
        RAISE EXCEPTION '% has no primary key', relation USING ERRCODE = '0A000';
    END IF;
    EXECUTE pg_catalog.format(
        'UPDATE %s AS r SET (%s) = (SELECT %s FROM pg_catalog.jsonb_populate_record(NULL::%s, $2)) '
        'WHERE (%s) = (SELECT %s FROM pg_catalog.jsonb_populate_record(NULL::%s, $1))',
        rel, cols, cols, rel, keys, keys, rel) USING old_row, new_row;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION partition.replace_row(text, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION partition.relation_rows(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION partition.status() FROM PUBLIC;
