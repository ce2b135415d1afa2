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
  hash bits, see db/proxy/partition.sql), so `api.waifu_stats(id)` lands where the waifu is;
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
from pathlib import Path
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
    ("api", "rate_limit_lease"): "key",
    # The notifier: every partition that answers (a down one keeps its rows leased or
    # waiting until it is back); forgetting an update likewise (it names no user).
    ("api", "claim_notifications"): "EACH",
    ("api", "finish_notifications"): "EACH",
    ("api", "forget_update"): "EACH",
    # Issue 19 (0013): a group's membership and opt-in go to the calling player's partition,
    # the group sender drains every partition. Groups, gifts between players and the global
    # leaderboards are per partition until groups are routed by chat (docs/SCALING.md).
    ("api", "register_group_member"): "telegram_id",
    ("api", "set_group_events"): "telegram_id",
    ("api", "claim_group_messages"): "EACH",
    ("api", "finish_group_messages"): "EACH",
    # 0014: a group's language where its opt-in is (the caller's partition); the sender asks
    # every partition it drains. The card photo cache (bot_id first, VOLATILE) is written to
    # all partitions by the default rule, and read with the player's stats.
    ("api", "set_group_language"): "telegram_id",
    ("api", "group_languages"): "EACH",
}
# Routes whose wrapper picks the partition itself (the PL/Proxy call gets its number).
PICKED_ROUTES = frozenset({"ANY", "EACH"})

# The fixed SQL of the layer, in files of their own (db/proxy/*.sql; tests/proxy/test_sql.py
# applies and checks them): what `setup_partition` runs on each partition, what
# `setup_proxy` runs on the proxy, and the fixed parts of the generated proxy SQL.
SQL_DIR = Path(__file__).resolve().parent / "proxy"
SQL_FILES = ("partition.sql", "partition_roles.sql", "proxy.sql", "relation_rows.sql", "partitions_view.sql",
             "admin_writes.sql")


def sql_file(name: str) -> str:
    return (SQL_DIR / name).read_text()


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
        cur.execute(sql_file("partition.sql"))
        cur.execute("INSERT INTO partition.identity (index, count) VALUES (%s, %s) "
                    "ON CONFLICT (one) DO UPDATE SET index = excluded.index, count = excluded.count", (index, count))
        cur.execute(sql_file("partition_roles.sql"))
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
    out.append(sql_file("relation_rows.sql"))
    if admin_writes:
        out.append(sql_file("admin_writes.sql"))
    for schema, name, cols, per_partition in relations:
        if schema == "cron":  # the type only: the view comes with db/proxy/admin_writes.sql
            fields = ", ".join(f"{_ident(c)} {t}" for c, t in cols)
            out.insert(6, f"CREATE TYPE partition_types.cron__job AS ({fields});")
            continue
        out.append(_relation_sql(schema, name, cols, per_partition, admin_writes))
    out.append(sql_file("partitions_view.sql"))
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
    # PL/Proxy takes an explicit SELECT only for a plain result (not a record of OUT
    # arguments, not a set): other ANY functions keep PL/Proxy's own random pick.
    plain = not f.returns_set and f.result.strip().lower() != "record" and not f.result.startswith("TABLE(")
    picked = route in PICKED_ROUTES and plain
    if route == "EACH" and not picked:
        raise SystemExit(f"{f.schema}.{f.name}: EACH needs a plain result to combine")
    if route == "telegram_id":
        # PL/Proxy: bare names; the argument named telegram_id (first unless OVERRIDES says so)
        run = f"RUN ON proxy.player_hash({'telegram_id' if 'telegram_id' in names else names[0]})"
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
        declare += "\n    n integer := proxy.partition_count();"
        if route == "ANY":
            declare += "\n    k integer;\n    first integer := floor(random() * n)::integer;"
        else:
            declare += f"\n    results {f.result}[] := '{{}}'::{f.result}[];"
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
    password = proxy_password or _proxy_password()
    admin = urlsplit(partitions[0])
    servers = {CLUSTER: {"user": PROXY_ROLE, **({"password": password} if password else {})},
               NOCLOCK_CLUSTER: {"user": NOCLOCK_ROLE, **({"password": password} if password else {})}}
    if admin_writes:
        servers[ADMIN_CLUSTER] = {"user": admin.username or "postgres",
                                  **({"password": unquote(admin.password)} if admin.password else {})}
    options = {f"p{k}": _connstr(url) for k, url in enumerate(partitions)}
    with _connect(proxy_url) as conn, conn.cursor() as cur:
        cur.execute(sql_file("proxy.sql"))
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
