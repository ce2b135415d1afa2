"""What the migrations seeded, kept so each test starts from it: no hand-kept list of
seed rows or tables.

Right after migrating, `take(url)` copies every table of schema `game` into schema
`test_snapshot` (and the position of every `game` sequence). `RESET_SQL` then puts the
game back as the migrations left it: tables whose rows differ from their copy are
emptied (TRUNCATE ... CASCADE) and refilled from it, sequences are set back. Only
changed tables are touched, so a reset after a test that changed no seed costs a few
cheap checks. The snapshot lives in the test database only (never in db/schema.sql or
the migrations); a database reused by TEST_DATABASE_URL is reset to its old snapshot
before new migrations run, so leftovers of an earlier run are not taken for seeds.
"""

from __future__ import annotations

import psycopg2

SCHEMA = "test_snapshot"

RESET_SQL = f"SELECT {SCHEMA}.restore()"

FUNCTIONS_SQL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
COMMENT ON SCHEMA {SCHEMA} IS 'Tests only: game rows as the migrations left them (tests/seed_snapshot.py).';

-- Tables of schema game holding rows (partitions are reached through their parent).
CREATE OR REPLACE FUNCTION {SCHEMA}.game_tables() RETURNS SETOF name LANGUAGE sql STABLE AS $$
    SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = 'game' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    ORDER BY c.relname
$$;

CREATE OR REPLACE FUNCTION {SCHEMA}.take() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t name;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
             WHERE n.nspname = '{SCHEMA}' AND c.relkind = 'r' LOOP
        EXECUTE format('DROP TABLE {SCHEMA}.%I', t);
    END LOOP;
    FOR t IN SELECT {SCHEMA}.game_tables() LOOP
        EXECUTE format('CREATE TABLE {SCHEMA}.%I AS SELECT * FROM game.%I', t, t);
    END LOOP;
    -- A name no game table has (it starts with a space).
    CREATE TABLE {SCHEMA}." sequences" AS SELECT NULL::regclass AS seq, 0::bigint AS last_value, false AS is_called
    WHERE false;
    FOR t IN SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
             WHERE n.nspname = 'game' AND c.relkind = 'S' LOOP
        EXECUTE format('INSERT INTO {SCHEMA}." sequences" SELECT %L::regclass, last_value, is_called FROM game.%I',
                       'game.' || quote_ident(t), t);
    END LOOP;
END
$$;

-- Rows as text, sorted: equal exactly when the contents are (json columns included).
CREATE OR REPLACE FUNCTION {SCHEMA}.contents(rel text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT coalesce(string_agg(r::text, E''\\n'' ORDER BY r::text), '''') FROM %s AS r', rel)
        INTO result;
    RETURN result;
END
$$;

-- Foreign keys and triggers are not checked while the seeds go back
-- (session_replication_role = replica): the order of the refills does not matter.
CREATE OR REPLACE FUNCTION {SCHEMA}.restore() RETURNS void LANGUAGE plpgsql
SET session_replication_role = replica SET client_min_messages = warning AS $$
DECLARE
    t name;
    seeded boolean;
    dirty boolean;
    dirty_tables text[] := '{{}}';
    columns text;
    s record;
BEGIN
    FOR t IN SELECT {SCHEMA}.game_tables() LOOP
        seeded := to_regclass(format('{SCHEMA}.%I', t)) IS NOT NULL;
        IF seeded THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM {SCHEMA}.%I)', t) INTO seeded;
        END IF;
        IF seeded THEN
            dirty := {SCHEMA}.contents(format('game.%I', t)) IS DISTINCT FROM
                     {SCHEMA}.contents(format('{SCHEMA}.%I', t));
        ELSE
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM game.%I)', t) INTO dirty;
        END IF;
        IF dirty THEN
            dirty_tables := dirty_tables || format('game.%I', t);
        END IF;
    END LOOP;
    IF cardinality(dirty_tables) > 0 THEN
        EXECUTE 'TRUNCATE ' || array_to_string(dirty_tables, ', ') || ' CASCADE';
        -- Refill every seeded table left empty (CASCADE may have emptied clean ones too).
        FOR t IN SELECT {SCHEMA}.game_tables() LOOP
            CONTINUE WHEN to_regclass(format('{SCHEMA}.%I', t)) IS NULL;
            EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM game.%I) AND EXISTS (SELECT 1 FROM {SCHEMA}.%I)', t, t)
                INTO dirty;
            CONTINUE WHEN NOT dirty;
            SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
            FROM pg_attribute AS a
            WHERE a.attrelid = format('game.%I', t)::regclass AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attgenerated = ''
              AND EXISTS (SELECT 1 FROM pg_attribute AS b
                          WHERE b.attrelid = format('{SCHEMA}.%I', t)::regclass AND b.attname = a.attname
                            AND NOT b.attisdropped);
            EXECUTE format('INSERT INTO game.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM {SCHEMA}.%I',
                           t, columns, columns, t);
        END LOOP;
    END IF;
    IF to_regclass('{SCHEMA}." sequences"') IS NOT NULL THEN
        FOR s IN SELECT * FROM {SCHEMA}." sequences" WHERE to_regclass(seq::text) IS NOT NULL LOOP
            PERFORM setval(s.seq, s.last_value, s.is_called);
        END LOOP;
    END IF;
END
$$;
"""


def _execute(url: str, sql: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def restore_previous(url: str) -> None:
    """A database used before: back to the seeds it had then (before new migrations run)."""
    _execute(url, FUNCTIONS_SQL)
    _execute(url, f"""DO $$ BEGIN
        IF to_regclass('{SCHEMA}." sequences"') IS NOT NULL THEN PERFORM {SCHEMA}.restore(); END IF;
    END $$""")


def take(url: str) -> None:
    """Copy what the migrations seeded: every game table's rows and sequence positions."""
    _execute(url, FUNCTIONS_SQL)
    _execute(url, f"SELECT {SCHEMA}.take()")
