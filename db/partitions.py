"""Players partitioned across PostgreSQL databases behind a PL/Proxy database.

The proxy database holds no game data: its `api` and `ops` functions have the names and
positional signatures of the partitions' and run the call on the partition that owns
the player (PL/Proxy, `RUN ON <hash>`). They are GENERATED from partition 0's catalog
(pg_proc of schemas api and ops), so a migration that adds or changes a function needs
only `migrate` again, never a hand edit here. docs/SCALING.md has the why and the
operations (adding and moving partitions, failure modes).

Routing, per function (first IN argument decides; OVERRIDES wins):
- `telegram_id` first: the partition of hash(telegram_id) (the player's);
- `waifu_id` first: the partition in the waifu id's low bits (ids carry their owner's
  hash bits, see PARTITION_SQL), so `api.waifu_stats(id)` lands where the waifu is;
- neither, STABLE/IMMUTABLE (catalogue reads, e.g. api.waifu_templates): ANY partition,
  the catalogue being the same everywhere: a random one first, then the next one while
  a partition cannot be reached, so a partition that is down costs the catalogue nothing;
- neither, VOLATILE (ticks, catalogue edits such as ops.create_event): ALL partitions in
  parallel; the results are combined (integers summed, JSON arrays and sets
  concatenated, otherwise partition 0's answer). Each partition commits on its own:
  there is no distributed transaction (see docs/SCALING.md, "catalogue changes");
- OVERRIDES: the bot's per-update admission goes to the chat's partition (`chat_id`),
  a rate-limit key to a partition of its own (`key`), and the notifier's claims and
  marks (and forgetting an update) to EACH partition that can be reached, one after the
  other: a partition that is down stops only its own players' messages.

Defaults: a remote default (e.g. `now timestamptz DEFAULT now()`) must be evaluated on
the partition, not here (a `now` passed explicitly is a clock override the partition
checks). So each function with k defaulted arguments becomes k+1 overloads without
defaults; positional calls resolve exactly as before.

Errors: PL/Proxy keeps the remote SQLSTATE but prefixes the message, DETAIL and HINT;
the wrappers re-raise them as the partition raised them, and a partition that cannot
be reached becomes SQLSTATE 57P03 (cannot_connect_now), which the bot maps to
GameUnavailable.

Identity: partitions are called as role waifu_proxy (member of waifu_bot, waifu_ops and
waifu_clock); a caller that is neither superuser nor waifu_clock member at the proxy and
passes a clock argument goes through role waifu_proxy_noclock instead, so the partition
applies its own clock rule to it. EXECUTE privileges are copied from partition 0.

Usage:
    python -m db.localdb start --name NAME --partitions 2
    python -m db.partitions migrate --name NAME           # every partition, then the proxy
    python -m db.partitions rollback-all --name NAME
    python -m db.partitions migrate --proxy URL --partition URL --partition URL  # first time, real servers
    python -m db.partitions migrate --proxy URL           # later: partitions read from the proxy
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from db import migrate

CLUSTER = "waifu"  # PL/Proxy cluster: partitions called as PROXY_ROLE
NOCLOCK_CLUSTER = "waifu_noclock"  # the same partitions, as NOCLOCK_ROLE
ADMIN_CLUSTER = "waifu_admin"  # the same partitions, as their superuser (--admin-writes only)
PROXY_ROLE = "waifu_proxy"
NOCLOCK_ROLE = "waifu_proxy_noclock"
CLOCK_ROLE = "waifu_clock"
HASH_BITS = 16  # waifu ids carry this many low bits of their owner's hash: up to 65,536 partitions
CLOCK_ARGS = frozenset({"now"})  # arguments the partitions treat as a clock override
GENERATED_SCHEMAS = ("api", "ops")

# Exceptions to the routing rule: (schema, function) -> "ANY" | "ALL" | "EACH" | "telegram_id" |
# "waifu_id" | the name of another argument (a bigint hashed as a player id, or a text).
OVERRIDES: dict[tuple[str, str], str] = {
    # Every update's admission: the chat's partition (a private chat's is the player's own,
    # where the game is; a group's holds the group's limit and its members' whole). One
    # update, one chat: a duplicate is seen where the first was.
    ("api", "admit_update"): "chat_id",
    ("api", "rate_limit"): "key",
    # The notifier: every partition that answers (a down one keeps its rows leased or
    # waiting until it is back); forgetting an update likewise (it names no user).
    ("api", "claim_notifications"): "EACH",
    ("api", "finish_notifications"): "EACH",
    ("api", "forget_update"): "EACH",
}
# Routes whose wrapper picks the partition itself (the PL/Proxy call gets its number).
PICKED_ROUTES = frozenset({"ANY", "EACH"})

# Run as superuser on each partition by `setup_partition` (idempotent). Not a migration:
# a single-database deployment has none of it.
PARTITION_SQL = """
CREATE SCHEMA IF NOT EXISTS partition;
COMMENT ON SCHEMA partition IS 'This database as one partition behind the PL/Proxy database (db/partitions.py).';
CREATE TABLE IF NOT EXISTS partition.identity (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    index integer NOT NULL,
    count integer NOT NULL
);
INSERT INTO partition.identity (index, count) VALUES (%(index)s, %(count)s)
ON CONFLICT (one) DO UPDATE SET index = excluded.index, count = excluded.count;

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
    NEW.id := (NEW.id << %(bits)s) | (partition.player_hash(NEW.owner_id) & %(mask)s);
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
    NEW.id := (NEW.id << %(bits)s) | (partition.player_hash(NEW.telegram_id) & %(mask)s);
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
        'SELECT (SELECT i.index FROM partition.identity AS i), pg_catalog.to_jsonb(r) FROM %%I.%%I AS r',
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
            'SELECT pg_catalog.string_agg(r, E''\\n'' ORDER BY r) FROM '
            '(SELECT (pg_catalog.to_jsonb(x) - ''updated_at'' - ''created_at'')::text AS r FROM %%s AS x) AS y', t)
            INTO part;
        digest := digest || t::text || ':' || coalesce(part, '') || E'\\n';
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
        RAISE EXCEPTION '%% has no primary key', relation USING ERRCODE = '0A000';
    END IF;
    EXECUTE pg_catalog.format(
        'UPDATE %%s AS r SET (%%s) = (SELECT %%s FROM pg_catalog.jsonb_populate_record(NULL::%%s, $2)) '
        'WHERE (%%s) = (SELECT %%s FROM pg_catalog.jsonb_populate_record(NULL::%%s, $1))',
        rel, cols, cols, rel, keys, keys, rel) USING old_row, new_row;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION partition.replace_row(text, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION partition.relation_rows(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION partition.status() FROM PUBLIC;
"""

# Roles on each partition (cluster-wide); passwords are set outside (see docs/SCALING.md).
PARTITION_ROLES_SQL = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_proxy') THEN
        CREATE ROLE waifu_proxy LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_proxy_noclock') THEN
        CREATE ROLE waifu_proxy_noclock LOGIN;
    END IF;
    GRANT waifu_bot, waifu_ops TO waifu_proxy, waifu_proxy_noclock;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'waifu_clock') THEN
        GRANT waifu_clock TO waifu_proxy;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA partition TO waifu_proxy, waifu_proxy_noclock;
GRANT SELECT ON partition.identity TO waifu_proxy, waifu_proxy_noclock;
GRANT EXECUTE ON FUNCTION partition.relation_rows(text), partition.status() TO waifu_proxy, waifu_proxy_noclock;
COMMENT ON ROLE waifu_proxy IS 'The PL/Proxy database calling this partition (clock overrides allowed).';
COMMENT ON ROLE waifu_proxy_noclock IS 'The PL/Proxy database calling for a caller without clock privileges.';
"""

# The proxy's fixed part (idempotent); the generated part follows in `generate`.
PROXY_SQL = """
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
REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC;
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
"""


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    arg_names: list[str]
    arg_types: list[str]
    n_defaults: int
    result: str  # pg_get_function_result: "jsonb", "SETOF jsonb", "TABLE(...)"
    returns_set: bool
    volatile: bool
    grantees: list[str]
    comment: str | None

    @property
    def route(self) -> str:
        if (self.schema, self.name) in OVERRIDES:
            return OVERRIDES[(self.schema, self.name)]
        first = self.arg_names[0] if self.arg_names else ""
        if first in ("telegram_id", "waifu_id"):
            return first
        return "ALL" if self.volatile else "ANY"


def _connect(url: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url.replace("postgres://", "postgresql://", 1))
    conn.autocommit = True
    return conn


def _connstr(url: str) -> str:
    """libpq key=value string of a URL's host, port and database (credentials: user mappings)."""
    parts = urlsplit(url)
    items = {"host": parts.hostname or "127.0.0.1", "port": str(parts.port or 5432),
             "dbname": parts.path.lstrip("/") or "postgres"}
    return " ".join(f"{k}={v}" for k, v in items.items())


def _url_of(connstr: str, like: str) -> str:
    """A superuser URL for a partition connstr, with the user/password of the proxy URL `like`."""
    items = dict(pair.split("=", 1) for pair in connstr.split())
    parts = urlsplit(like)
    creds = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return f"postgresql://{creds}{items['host']}:{items.get('port', '5432')}/{items['dbname']}"


def partition_urls(proxy_url: str) -> list[str]:
    """Superuser URLs of the partitions, in partition order, as the proxy's cluster lists them."""
    with _connect(proxy_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT srvoptions FROM pg_foreign_server WHERE srvname = %s", (CLUSTER,))
        row = cur.fetchone()
    conn.close()
    if not row:
        return []
    options = dict(o.split("=", 1) for o in row[0])
    keys = sorted((k for k in options if re.fullmatch(r"p\d+", k)), key=lambda k: int(k[1:]))
    return [_url_of(options[k], proxy_url) for k in keys]


def _proxy_password() -> str | None:
    """The partitions' password for the proxy's roles (password authentication), if any."""
    import os

    return os.environ.get("WAIFU_PROXY_PASSWORD") or None


def setup_partition(url: str, index: int, count: int, proxy_password: str | None = None) -> None:
    with _connect(url) as conn, conn.cursor() as cur:
        cur.execute(PARTITION_SQL, {"index": index, "count": count, "bits": HASH_BITS,
                                    "mask": (1 << HASH_BITS) - 1})
        cur.execute(PARTITION_ROLES_SQL)
        if password := proxy_password or _proxy_password():
            for role in (PROXY_ROLE, NOCLOCK_ROLE):
                cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    conn.close()


def _functions(cur: psycopg2.extensions.cursor) -> list[Function]:
    cur.execute("""
        SELECT n.nspname, p.proname,
               coalesce((SELECT array_agg(coalesce(p.proargnames[i + 1], '') ORDER BY i)  -- oidvector: from 0
                         FROM generate_subscripts(p.proargtypes, 1) AS i), '{}'),
               coalesce((SELECT array_agg(format_type(t, NULL) ORDER BY o)
                         FROM unnest(p.proargtypes) WITH ORDINALITY AS u(t, o)), '{}'),
               p.pronargdefaults, pg_get_function_result(p.oid), p.proretset, p.provolatile = 'v',
               coalesce((SELECT array_agg(DISTINCT a.grantee::regrole::text) FROM aclexplode(p.proacl) AS a
                         WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner),
                        '{}'),
               obj_description(p.oid, 'pg_proc')
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY(%s) AND p.prokind = 'f'
        ORDER BY 1, 2, p.oid""", (list(GENERATED_SCHEMAS),))
    out = []
    for schema, name, names, types, ndef, result, retset, volatile, grantees, comment in cur.fetchall():
        # proargnames also lists OUT arguments: only IN ones are in proargtypes, first.
        out.append(Function(schema, name, list(names)[: len(types)], list(types), ndef, result, retset,
                            volatile, list(grantees), comment))
    return out


def _relations(cur: psycopg2.extensions.cursor) -> list[tuple[str, str, list[tuple[str, str]], bool]]:
    """ops views and game tables of a partition: (schema, name, [(column, type)], per_partition).

    per_partition: False for what is the same on every partition (catalogue): a game
    table without a player or waifu column, or an ops view reading only such tables.
    """
    cur.execute("""
        WITH catalogue AS (
            SELECT c.oid FROM pg_class AS c
            WHERE c.relnamespace = 'game'::regnamespace AND c.relkind IN ('r', 'p')
              AND NOT EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.oid AND NOT a.attisdropped
                              AND a.attname IN ('telegram_id', 'owner_id', 'waifu_id')))
        SELECT n.nspname, c.relname,
               -- Types of the game's own schemas do not exist here: their text form.
               array_agg(ARRAY[a.attname::text,
                               CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace
                                    THEN format_type(a.atttypid, a.atttypmod) ELSE 'text' END] ORDER BY a.attnum),
               CASE WHEN c.relkind IN ('r', 'p') THEN c.oid NOT IN (SELECT oid FROM catalogue)
                    ELSE EXISTS (SELECT 1 FROM pg_rewrite AS w JOIN pg_depend AS d ON d.objid = w.oid
                                 WHERE w.ev_class = c.oid AND d.classid = 'pg_rewrite'::regclass
                                   AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid
                                   AND d.refobjid NOT IN (SELECT oid FROM catalogue)) END
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        JOIN pg_type AS t ON t.oid = a.atttypid
        WHERE (n.nspname = 'ops' AND c.relkind IN ('v', 'm')) OR (n.nspname = 'cron' AND c.relname = 'job')
           OR (n.nspname = 'game' AND c.relkind IN ('r', 'p') AND NOT c.relispartition)
        GROUP BY c.oid, 1, 2 ORDER BY 1, 2""")
    return [(s, n, [tuple(col) for col in cols], per) for s, n, cols, per in cur.fetchall()]


def _ident(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _combine(f: Function, call: str) -> str:
    """PL/pgSQL statement returning the combined results of RUN ON ALL."""
    if f.returns_set:
        return f"RETURN QUERY SELECT * FROM {call};"
    result = f.result.strip().lower()
    if result in ("integer", "bigint", "smallint", "numeric"):
        return f"RETURN (SELECT sum(r)::{result} FROM {call} AS r);"
    if result == "boolean":
        return f"RETURN (SELECT bool_and(r) FROM {call} AS r);"
    if result == "jsonb":
        # One call (MATERIALIZED): a claim must not run twice.
        return (f"RETURN (WITH rs AS MATERIALIZED (SELECT r FROM {call} AS r) "
                f"SELECT CASE WHEN bool_and(jsonb_typeof(rs.r) = 'array') "
                f"THEN coalesce((SELECT jsonb_agg(e) FROM rs AS r2, jsonb_array_elements(r2.r) AS e), '[]') "
                f"ELSE (array_agg(rs.r))[1] END FROM rs);")
    return f"RETURN (SELECT (array_agg(r))[1] FROM {call} AS r);"


def generate(partition0_url: str, admin_writes: bool = False) -> str:
    """SQL (for the proxy) of every api/ops function, ops view and game table mirror."""
    with _connect(partition0_url) as conn, conn.cursor() as cur:
        functions = _functions(cur)
        relations = _relations(cur)
    conn.close()
    out = ["DROP SCHEMA IF EXISTS partition_call CASCADE;", "DROP SCHEMA IF EXISTS partition_types CASCADE;",
           "CREATE SCHEMA partition_call;", "CREATE SCHEMA partition_types;",
           "GRANT USAGE ON SCHEMA partition_call, partition_types TO waifu_ops;",
           # The pg_cron stand-in of --admin-writes (never pg_cron's own schema).
           "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN "
           "DROP SCHEMA IF EXISTS cron CASCADE; END IF; END $$;"]
    # Drop what an earlier run generated (a function removed by a migration goes too).
    out.append("""DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS v FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('ops', 'game') AND c.relkind = 'v' LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s CASCADE', r.v);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
             WHERE n.nspname IN ('api', 'ops') LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.f);
    END LOOP;
END
$$;""")
    # Roles granted EXECUTE on a partition exist here too (NOLOGIN unless created otherwise).
    for role in sorted({g for f in functions for g in f.grantees if g != "-"}):
        out.append(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_literal(role)}) "
                   f"THEN CREATE ROLE {_ident(role)} NOLOGIN; END IF; END $$;")
    seen: set[tuple[str, str, int]] = set()
    for f in functions:
        n_args = len(f.arg_types)
        for k in range(n_args - f.n_defaults, n_args + 1):
            if (f.schema, f.name, k) in seen:
                raise SystemExit(f"{f.schema}.{f.name}: two overloads with {k} arguments (add an override)")
            seen.add((f.schema, f.name, k))
            if any(re.match(r"(game|api|ops)\.", t) for t in [*f.arg_types, f.result]):
                raise SystemExit(f"{f.schema}.{f.name}: a type of the game's schemas in its signature "
                                 "does not exist on the proxy (add an override)")
            out.append(_function_sql(f, k))
    out.append(RELATION_ROWS_SQL)
    if admin_writes:
        out.append(ADMIN_WRITES_SQL)
    for schema, name, cols, per_partition in relations:
        if schema == "cron":  # the type only: the view comes with ADMIN_WRITES_SQL
            fields = ", ".join(f"{_ident(c)} {t}" for c, t in cols)
            out.insert(6, f"CREATE TYPE partition_types.cron__job AS ({fields});")
            continue
        out.append(_relation_sql(schema, name, cols, per_partition, admin_writes))
    out.append(_partitions_view_sql())
    return "\n".join(out)


def _picked_combine(f: Function, results: str) -> str:
    """An expression combining the array `results` of EACH partition's answers."""
    result = f.result.strip().lower()
    if result in ("integer", "bigint", "smallint", "numeric", "double precision"):
        return f"(SELECT sum(r)::{result} FROM unnest({results}) AS r)"
    if result == "boolean":
        return f"(SELECT bool_or(r) FROM unnest({results}) AS r)"
    if result == "jsonb":
        return (f"(SELECT CASE WHEN bool_and(jsonb_typeof(r) = 'array') "
                f"THEN coalesce((SELECT jsonb_agg(e) FROM unnest({results}) AS r2, jsonb_array_elements(r2) AS e), "
                f"'[]') ELSE ({results})[1] END FROM unnest({results}) AS r)")
    return f"({results})[1]"


_CATCH = """GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                                    e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;"""
_RERAISE = "PERFORM proxy.reraise(e_state, e_message, nullif(e_detail, ''), nullif(e_hint, ''));"


def _picked_body(f: Function, raw: str, args: str) -> str:
    """The wrapper's body for ANY (one live partition) and EACH (every live partition)."""
    call = f"{raw}(k{', ' if args else ''}{args})"
    if f.route == "ANY":
        return f"""
    -- A random partition first (the catalogue is the same everywhere), the next one while
    -- a partition cannot be reached.
    FOR i IN 0 .. n - 1 LOOP
        k := (first + i) % n;
        BEGIN
            RETURN {call};
        EXCEPTION WHEN OTHERS THEN
            {_CATCH}
            IF i < n - 1 AND proxy.unreachable(e_state, e_message) THEN
                CONTINUE;
            END IF;
            {_RERAISE}
        END;
    END LOOP;
    RAISE EXCEPTION 'no partition';  -- not reached: the last partition's error was raised"""
    return f"""
    -- Every partition in turn; one that cannot be reached is skipped (its rows wait for it).
    FOR k IN 0 .. n - 1 LOOP
        BEGIN
            results := array_append(results, {call});
        EXCEPTION WHEN OTHERS THEN
            {_CATCH}
            IF NOT proxy.unreachable(e_state, e_message) OR cardinality(results) = 0 AND k = n - 1 THEN
                {_RERAISE}
            END IF;
        END;
    END LOOP;
    RETURN {_picked_combine(f, "results")};"""


def _function_sql(f: Function, k: int) -> str:
    names, types = f.arg_names[:k], f.arg_types[:k]
    names = [n or f"arg{i + 1}" for i, n in enumerate(names)]
    decl = ", ".join(f"{_ident(n)} {t}" for n, t in zip(names, types, strict=True))
    args = ", ".join(f"${i + 1}" for i in range(k))
    sig = ", ".join(types)
    route = f.route
    picked = route in PICKED_ROUTES and not f.returns_set
    if route == "telegram_id":
        run = f"RUN ON proxy.player_hash({names[0]})"  # PL/Proxy: bare names
    elif route == "waifu_id":
        run = f"RUN ON proxy.waifu_hash({names[0]})"
    elif route in ("ANY", "ALL", "EACH"):
        run = "RUN ON partition_no" if picked else f"RUN ON {'ANY' if route == 'ANY' else 'ALL'}"
    elif route in names and types[names.index(route)] in ("bigint", "text"):
        hash_function = "player_hash" if types[names.index(route)] == "bigint" else "text_hash"
        run = f"RUN ON proxy.{hash_function}({route})"
    else:
        raise SystemExit(f"{f.schema}.{f.name}: routed by {route}, not a bigint or text argument of it")
    cluster = "CLUSTER proxy.clock_cluster()" if CLOCK_ARGS & set(names) else f"CLUSTER '{CLUSTER}'"
    remote_result = f.result if f.returns_set or route != "ALL" else f"SETOF {f.result}"
    raw = _ident("partition_call", f"{f.schema}__{f.name}")
    if picked:
        # The partition's number comes first and is not passed on: an explicit SELECT.
        raw_decl = "partition_no integer" + (", " + decl if decl else "")
        raw_sig = "integer" + (", " + sig if sig else "")
        target = f"SELECT {f.schema}.{f.name}({', '.join(names)}) AS {f.schema}__{f.name};"
    else:
        raw_decl, raw_sig, target = decl, sig, f"TARGET {f.schema}.{f.name};"
    declare = "e_state text; e_message text; e_detail text; e_hint text;"
    if picked:
        declare += (f"\n    n integer := proxy.partition_count();\n    k integer;"
                    f"\n    first integer := floor(random() * proxy.partition_count())::integer;"
                    f"\n    results {f.result}[] := '{{}}';")
        body = _picked_body(f, raw, args)
    elif f.returns_set and route != "ALL":
        body = f"RETURN QUERY SELECT * FROM {raw}({args});"
    elif route == "ALL":
        body = _combine(f, f"{raw}({args})")
    else:
        body = f"RETURN {raw}({args});"
    if not picked:
        body = f"""
    {body}
EXCEPTION WHEN OTHERS THEN
    {_CATCH}
    {_RERAISE}
    RAISE;  -- not reached (proxy.reraise always raises); tells plpgsql_check so"""
    grants = "".join(f"GRANT EXECUTE ON FUNCTION {_ident(f.schema, f.name)}({sig}) TO {_ident(g)};\n"
                     for g in f.grantees if g != "-")
    comment = ""
    if f.comment:
        comment = (f"COMMENT ON FUNCTION {_ident(f.schema, f.name)}({sig}) IS "
                   f"{_literal(f.comment + chr(10) + f'(proxy: {route})')};\n")
    return f"""
CREATE FUNCTION {raw}({raw_decl}) RETURNS {remote_result}
    LANGUAGE plproxy
AS $plproxy$
    {cluster};
    {run};
    {target}
$plproxy$;
REVOKE ALL ON FUNCTION {raw}({raw_sig}) FROM PUBLIC;
CREATE FUNCTION {_ident(f.schema, f.name)}({decl}) RETURNS {f.result}
    LANGUAGE plpgsql {'VOLATILE' if f.volatile else 'STABLE'} SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $wrapper$
DECLARE
    {declare}
BEGIN{body}
END
$wrapper$;
REVOKE ALL ON FUNCTION {_ident(f.schema, f.name)}({sig}) FROM PUBLIC;
{grants}{comment}"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _relation_sql(schema: str, name: str, cols: list[tuple[str, str]], per_player: bool,
                  admin_writes: bool = False) -> str:
    typ = _ident("partition_types", f"{schema}__{name}")
    fields = ", ".join(f"{_ident(c)} {t}" for c, t in cols)
    select = ", ".join(f"r.{_ident(c)}" for c, _ in cols)
    # Catalogue (the same on every partition): partition 0's rows stand for all.
    source = "rows" if per_player else "rows_of_partition0"
    what = ("every partition's rows of" if per_player else "partition 0's rows (the same everywhere) of")
    if schema == "game":
        what = "read-only: " + what
    return f"""
CREATE TYPE {typ} AS ({fields});
CREATE VIEW {_ident(schema, name)} AS
SELECT p.partition AS partition_no, {select}
FROM partition_call.{source}({_literal(schema + '.' + name)}) AS p
CROSS JOIN LATERAL jsonb_populate_record(NULL::{typ}, p.data) AS r;
COMMENT ON VIEW {_ident(schema, name)} IS {_literal(f'Proxy: {what} {schema}.{name} (column partition_no first).')};
GRANT SELECT ON {_ident(schema, name)} TO waifu_ops;""" + (_forward_sql(schema, name, cols) if admin_writes else "")


def _forward_sql(schema: str, name: str, cols: list[tuple[str, str]]) -> str:
    """An INSTEAD OF UPDATE trigger on a per-player game.* view (the player's column routes)."""
    route = next((c for c, _ in cols if c in ("telegram_id", "owner_id")), None)
    if schema != "game" or route is None:
        return ""
    return f"""
CREATE TRIGGER forward_update INSTEAD OF UPDATE ON {_ident(schema, name)}
    FOR EACH ROW EXECUTE FUNCTION proxy.forward_update({_literal(route)});
CREATE TRIGGER refuse_insert_delete INSTEAD OF INSERT OR DELETE ON {_ident(schema, name)}
    FOR EACH ROW EXECUTE FUNCTION proxy.refuse_insert_delete();"""


ADMIN_WRITES_SQL = """
CREATE FUNCTION partition_call.replace_row(hash integer, relation text, old_row jsonb, new_row jsonb)
    RETURNS integer LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu_admin';
    RUN ON hash;
    SELECT partition.replace_row(relation, old_row, new_row) AS replace_row;
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.replace_row(integer, text, jsonb, jsonb) FROM PUBLIC;

-- pg_cron of the partitions, for superusers (tests pause the tick with it): cron.job is
-- every partition's jobs, cron.alter_job alters the job with that id on every partition
-- (the migrations create the jobs in the same order everywhere, so the ids match).
CREATE FUNCTION partition_call.cron_jobs(OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu_admin';
    RUN ON ALL;
    SELECT (SELECT i.index FROM partition.identity AS i) AS partition, to_jsonb(j) AS data FROM cron.job AS j;
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.cron_jobs() FROM PUBLIC;
CREATE FUNCTION partition_call.cron_alter_job(job_id bigint, schedule text, command text, database text,
                                              username text, active boolean)
    RETURNS SETOF integer LANGUAGE plproxy
AS $plproxy$
    CLUSTER 'waifu_admin';
    RUN ON ALL;
    SELECT 1 AS cron_alter_job FROM cron.alter_job(job_id, schedule, command, database, username, active);
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.cron_alter_job(bigint, text, text, text, text, boolean) FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS cron;
CREATE OR REPLACE FUNCTION cron.alter_job(job_id bigint, schedule text DEFAULT NULL, command text DEFAULT NULL,
                                          database text DEFAULT NULL, username text DEFAULT NULL,
                                          active boolean DEFAULT NULL) RETURNS void
    LANGUAGE sql
    BEGIN ATOMIC
        SELECT count(*) FROM partition_call.cron_alter_job(job_id, schedule, command, database, username, active);
    END;
REVOKE ALL ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean) FROM PUBLIC;
CREATE OR REPLACE VIEW cron.job AS
SELECT DISTINCT ON (r.jobid) r.*
FROM partition_call.cron_jobs() AS p
CROSS JOIN LATERAL jsonb_populate_record(NULL::partition_types.cron__job, p.data) AS r
ORDER BY r.jobid;
REVOKE ALL ON cron.job FROM PUBLIC;"""

RELATION_ROWS_SQL = f"""
CREATE FUNCTION partition_call.relation_rows(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE plproxy
AS $plproxy$
    CLUSTER '{CLUSTER}';
    RUN ON ALL;
    TARGET partition.relation_rows;
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.relation_rows(text) FROM PUBLIC;
CREATE FUNCTION partition_call.relation_rows_of_partition0(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE plproxy
AS $plproxy$
    CLUSTER '{CLUSTER}';
    RUN ON 0;
    TARGET partition.relation_rows;
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.relation_rows_of_partition0(text) FROM PUBLIC;
-- What the views call: definer functions, so that operators need no USAGE on the PL/Proxy
-- servers (with it they could create user mappings of their own).
CREATE FUNCTION partition_call.rows(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT r.partition, r.data FROM partition_call.relation_rows(relation) AS r;
    END;
CREATE FUNCTION partition_call.rows_of_partition0(relation text, OUT partition integer, OUT data jsonb)
    RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT r.partition, r.data FROM partition_call.relation_rows_of_partition0(relation) AS r;
    END;
REVOKE ALL ON FUNCTION partition_call.rows(text), partition_call.rows_of_partition0(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION partition_call.rows(text), partition_call.rows_of_partition0(text) TO waifu_ops;
"""


def _partitions_view_sql() -> str:
    return f"""
CREATE FUNCTION partition_call.status(partition integer) RETURNS jsonb LANGUAGE plproxy
AS $plproxy$
    CLUSTER '{CLUSTER}';
    RUN ON partition;
    SELECT partition.status();
$plproxy$;
REVOKE ALL ON FUNCTION partition_call.status(integer) FROM PUBLIC;
-- One partition at a time, so that a partition that is down is a row saying so rather
-- than an error for the whole view.
CREATE FUNCTION ops.partition_status() RETURNS SETOF jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := (SELECT count(*)::integer FROM pg_catalog.pg_foreign_server AS s, unnest(s.srvoptions) AS o
                  WHERE s.srvname = '{CLUSTER}' AND o ~ '^p[0-9]+=');
BEGIN
    FOR k IN 0 .. n - 1 LOOP
        BEGIN
            RETURN NEXT partition_call.status(k) || jsonb_build_object('slot', k);
        EXCEPTION WHEN OTHERS THEN
            RETURN NEXT jsonb_build_object('slot', k, 'error', SQLERRM);
        END;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ops.partition_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.partition_status() TO waifu_ops;
COMMENT ON FUNCTION ops.partition_status() IS
$$Proxy: one JSON object per partition slot (its identity or an error, catalogue digest, cron health, migrations).
One partition at a time, so that a partition that is down is a row saying so; see ops.partitions.$$;
CREATE VIEW ops.partitions AS
SELECT (s ->> 'slot')::integer AS partition,
       s ->> 'error' IS NULL AS reachable,
       s ->> 'error' AS error,
       (s ->> 'in_recovery')::boolean AS in_recovery,
       (s ->> 'partition')::integer = (s ->> 'slot')::integer AS identity_ok,
       s ->> 'catalogue_digest' AS catalogue_digest,
       min(s ->> 'catalogue_digest') OVER () = max(s ->> 'catalogue_digest') OVER ()
           AND count(s ->> 'catalogue_digest') OVER () = count(*) OVER () AS catalogue_same_everywhere,
       s -> 'cron' AS cron_health,
       s -> 'migrations' AS migrations
FROM ops.partition_status() AS s;
COMMENT ON VIEW ops.partitions IS
    'Each partition: reachable, catalogue digest (the same everywhere?), pg_cron job health, applied migrations.';
GRANT SELECT ON ops.partitions TO waifu_ops;"""


def _admin_writes_enabled(proxy_url: str) -> bool:
    with _connect(proxy_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_foreign_server WHERE srvname = %s", (ADMIN_CLUSTER,))
        found = cur.fetchone() is not None
    conn.close()
    return found


def _set_options(cur: psycopg2.extensions.cursor, target: sql.Composable, current: dict[str, str],
                 wanted: dict[str, str], drop: list[str]) -> None:
    changes = [sql.SQL("{} {} {}").format(sql.SQL("SET" if k in current else "ADD"), sql.Identifier(k), sql.Literal(v))
               for k, v in wanted.items() if current.get(k) != v]
    changes += [sql.SQL("DROP {}").format(sql.Identifier(k)) for k in drop if k in current]
    if changes:
        cur.execute(sql.SQL("ALTER {} OPTIONS ({})").format(target, sql.SQL(", ").join(changes)))


def setup_proxy(proxy_url: str, partitions: list[str], admin_writes: bool = False,
                proxy_password: str | None = None) -> None:
    """Extension, roles, the PL/Proxy clusters (servers) and their user mappings.

    `waifu` and `waifu_noclock` connect as the proxy roles (password: $WAIFU_PROXY_PASSWORD
    when the partitions use password authentication). `waifu_admin` (admin_writes only)
    connects as partition 0's superuser (user and password of its URL) and is usable by
    superusers of the proxy only; it carries UPDATEs of the game.* views.
    """
    count = len(partitions)
    if count < 1 or count & (count - 1):
        raise SystemExit("the number of partitions must be a power of two")
    db = urlsplit(proxy_url).path.lstrip("/") or "postgres"
    password = proxy_password or _proxy_password()
    admin = urlsplit(partitions[0])
    servers = {CLUSTER: {"user": PROXY_ROLE, **({"password": password} if password else {})},
               NOCLOCK_CLUSTER: {"user": NOCLOCK_ROLE, **({"password": password} if password else {})}}
    if admin_writes:
        servers[ADMIN_CLUSTER] = {"user": admin.username or "postgres",
                                  **({"password": unquote(admin.password)} if admin.password else {})}
    options = {f"p{k}": _connstr(url) for k, url in enumerate(partitions)}
    with _connect(proxy_url) as conn, conn.cursor() as cur:
        cur.execute(PROXY_SQL.format(db=_ident(db)))
        if not admin_writes:
            cur.execute(sql.SQL("DROP SERVER IF EXISTS {} CASCADE").format(sql.Identifier(ADMIN_CLUSTER)))
        for server, mapping in servers.items():
            name = sql.Identifier(server)
            cur.execute("SELECT srvoptions FROM pg_foreign_server WHERE srvname = %s", (server,))
            row = cur.fetchone()
            if row is None:
                # PL/Proxy validates the partition count at once: the options come with it.
                cur.execute(sql.SQL("CREATE SERVER {} FOREIGN DATA WRAPPER plproxy OPTIONS ({})").format(
                    name, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(k), sql.Literal(v))
                                             for k, v in options.items())))
            else:
                current = dict(o.split("=", 1) for o in row[0] or [])
                stale = [k for k in current if re.fullmatch(r"p\d+", k) and int(k[1:]) >= count]
                _set_options(cur, sql.SQL("SERVER {}").format(name), current, options, stale)
            # Nobody but superusers uses the servers (the views go through definer functions);
            # revoked in case an earlier version granted it.
            cur.execute(sql.SQL("REVOKE USAGE ON FOREIGN SERVER {} FROM waifu_ops").format(name))
            cur.execute("SELECT umoptions FROM pg_user_mappings WHERE srvname = %s AND usename = 'public'", (server,))
            row = cur.fetchone()
            if row is None:
                cur.execute(sql.SQL("CREATE USER MAPPING FOR PUBLIC SERVER {}").format(name))
            current = dict(o.split("=", 1) for o in (row[0] if row else None) or [])
            _set_options(cur, sql.SQL("USER MAPPING FOR PUBLIC SERVER {}").format(name), current, mapping, [])
    conn.close()


def regenerate(proxy_url: str, partitions: list[str], admin_writes: bool = False) -> None:
    """Replace the proxy's api/ops functions and views by ones generated from partition 0."""
    code = generate(partitions[0], admin_writes)
    with _connect(proxy_url) as conn:
        conn.autocommit = False  # one transaction: callers see the old set or the new one
        with conn.cursor() as cur:
            cur.execute(code)
        conn.commit()
    conn.close()


def apply(proxy_url: str, partitions: list[str] | None = None,
          admin_writes: bool | None = None, proxy_password: str | None = None) -> list[list[str]]:
    """Migrate every partition (yoyo), set each up, then regenerate the proxy.

    Returns the ids of the migrations applied, per partition. A failure stops at that
    partition; running it again applies only what is still pending (yoyo per database).
    admin_writes: True makes the proxy's game.* views take a superuser's UPDATE (tests,
    repairs); None keeps what the proxy has.
    """
    partitions = partitions or partition_urls(proxy_url)
    if not partitions:
        raise SystemExit("no partitions: pass --partition URL (in order) the first time")
    if admin_writes is None:
        admin_writes = _admin_writes_enabled(proxy_url)
    applied = []
    for k, url in enumerate(partitions):
        applied.append(list(migrate.apply(url)))
        setup_partition(url, k, len(partitions), proxy_password)
    setup_proxy(proxy_url, partitions, admin_writes, proxy_password)
    regenerate(proxy_url, partitions, admin_writes)
    return applied


def rollback_all(proxy_url: str, partitions: list[str] | None = None) -> list[list[str]]:
    """Remove the generated proxy functions, then roll back every partition."""
    partitions = partitions or partition_urls(proxy_url)
    with _connect(proxy_url) as conn, conn.cursor() as cur:
        cur.execute("""
            DROP SCHEMA IF EXISTS partition_call CASCADE;
            DROP SCHEMA IF EXISTS partition_types CASCADE;
            DROP SCHEMA IF EXISTS api CASCADE;
            DROP SCHEMA IF EXISTS ops CASCADE;
            DROP SCHEMA IF EXISTS game CASCADE;""")
    conn.close()
    rolled = []
    for url in partitions:
        with _connect(url) as conn, conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS waifu_id_carries_owner ON game.waifus")
        conn.close()
        rolled.append(list(migrate.rollback_all(url)))
    return rolled


NOTIFY_CHANNEL = "waifu_notifications"  # bot/notifier.py listens; the partitions' ticks notify


def relay_notifications(proxy_url: str, partitions: list[str], channel: str = NOTIFY_CHANNEL,
                        stop: threading.Event | None = None) -> None:
    """Repeat every NOTIFY `channel` of the partitions on the proxy, until `stop` is set.

    A LISTEN on the proxy hears nothing from the partitions (NOTIFY stays in its own
    database), so without this the bot's notifier falls back to polling. Reconnects after
    any failure; a notification lost meanwhile only delays the sender to its next poll.
    """
    import select
    import time

    stop = stop or threading.Event()
    while not stop.is_set():
        conns: list[psycopg2.extensions.connection] = []
        try:
            out = _connect(proxy_url)
            conns.append(out)
            listeners = []
            for url in partitions:
                conn = _connect(url)
                conns.append(conn)
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                listeners.append(conn)
            with out.cursor() as cur:
                cur.execute("SELECT pg_notify(%s, '')", (channel,))  # whatever came while we were away
            while not stop.is_set():
                ready, _, _ = select.select(listeners, [], [], 0.5)
                for conn in ready:
                    conn.poll()
                    payloads = {n.payload for n in conn.notifies}
                    conn.notifies.clear()
                    with out.cursor() as cur:
                        for payload in payloads:
                            cur.execute("SELECT pg_notify(%s, %s)", (channel, payload))
        except (psycopg2.Error, OSError) as exc:
            print(f"notify relay: {exc}; reconnecting", file=sys.stderr)
            time.sleep(1)
        finally:
            for conn in conns:
                conn.close()


def local_urls(name: str) -> tuple[str, list[str]]:
    """The proxy's and the partitions' superuser URLs of a local set (no password: PGPASSFILE)."""
    from db import localdb

    proxy, parts = localdb.partition_set(name)
    if not parts:
        raise SystemExit(f"{name} is not a partition set: python -m db.localdb start --name {name} --partitions N")
    return proxy.url(), [p.url() for p in parts]


def apply_local(name: str, admin_writes: bool | None = None) -> list[list[str]]:
    """`apply` to a local set: its generated passwords for the proxy's roles (PL/Proxy's
    connections to the partitions) and for the admin mapping; the bot role's password set."""
    from db import localdb

    proxy_url, urls = local_urls(name)
    superuser = localdb.password(localdb.SUPERUSER)
    applied = apply(proxy_url, [localdb.with_user(u, localdb.SUPERUSER, superuser) for u in urls], admin_writes,
                    localdb.password(PROXY_ROLE))
    for c in [localdb.partition_set(name)[0], *localdb.partition_set(name)[1]]:
        c.set_passwords()
    return applied


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m db.partitions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["migrate", "rollback-all", "generate", "urls", "relay-notify"],
                        help="generate: print the proxy SQL generated from partition 0; relay-notify: repeat "
                        "the partitions' NOTIFY waifu_notifications on the proxy (runs until stopped)")
    parser.add_argument("--name", help="a local partition set (python -m db.localdb start --partitions N)")
    parser.add_argument("--proxy", help="superuser URL of the proxy database")
    parser.add_argument("--admin-writes", action=argparse.BooleanOptionalAction, default=None,
                        help="let superusers UPDATE the proxy's game.* views (forwarded to the partition "
                        "as its superuser; default: keep the current setting)")
    parser.add_argument("--partition", action="append", default=[],
                        help="superuser URL of partition 0, 1, ... in order (default: read from the proxy)")
    args = parser.parse_args(argv)
    if args.name:
        proxy_url, partitions = local_urls(args.name)
    elif args.proxy:
        proxy_url, partitions = args.proxy, args.partition or partition_urls(args.proxy)
    else:
        parser.error("pass --name or --proxy")
    if args.command == "migrate":
        applied = (apply_local(args.name, args.admin_writes) if args.name
                   else apply(proxy_url, partitions, args.admin_writes))
        for k, ids in enumerate(applied):
            print(f"partition {k}: applied {len(ids)} migration(s) {' '.join(ids)}")
        print(f"proxy regenerated from partition 0 ({len(partitions)} partitions)")
    elif args.command == "rollback-all":
        for k, ids in enumerate(rollback_all(proxy_url, partitions)):
            print(f"partition {k}: rolled back {len(ids)} migration(s)")
    elif args.command == "relay-notify":
        try:
            relay_notifications(proxy_url, partitions)
        except KeyboardInterrupt:
            pass
    elif args.command == "generate":
        print(generate(partitions[0]))
    else:
        print(f"proxy: {proxy_url}")
        for k, url in enumerate(partitions):
            print(f"partition {k}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
