"""The attacker suite (issue 7): the real `waifu_bot` login and a member of `waifu_ops`
try what an attacker holding those credentials would, on the real database.

- Shadowing through pg_temp (types, relations, functions, operators): refused outright,
  since neither role may create temporary objects; and for a role that was given
  TEMPORARY by mistake, the SECURITY DEFINER functions still never resolve a name to the
  caller's objects (a control proves the same objects do take over a function whose
  search_path leaves pg_temp implicit).
- Objects in schema public, api, game, ops; a pg_cron job of one's own: refused.
- Every exposed function the role may execute, called with crafted arguments (NULLs,
  negatives, extremes, blank, oversized, control characters, absurd or explicit `now`):
  it answers, or refuses with a project SQLSTATE (WF...), never a raw error.
- Afterwards no role gained anything: attributes, memberships, ownerships and grants
  are what they were (snapshot before and after every test here).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from db.localdb import with_user
from tests.conftest import init_connection

ATTACKER = "core_test_attacker_tmp"  # a role given TEMPORARY by mistake (defence in depth)
ATTACKER_PASSWORD = "attacker-test-password"
PLAYER, OTHER = 4001, 4002

# -- what "no role gained anything" means -------------------------------------------------------

SNAPSHOT_SQL = r"""
WITH objects AS (
    SELECT 'relation ' || c.oid::regclass::text AS object, c.relowner AS owner, c.relacl::text AS acl
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp'
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text, p.proowner,
           concat_ws(' ', p.proacl::text, p.prosecdef::text, p.proconfig::text)
    FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast_)?temp'
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text, t.typowner, t.typacl::text
    FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp'
    UNION ALL
    SELECT 'schema ' || n.nspname, n.nspowner, n.nspacl::text FROM pg_namespace AS n
    WHERE n.nspname !~ '^pg_(toast_)?temp'
    UNION ALL
    SELECT 'database ' || d.datname, d.datdba, d.datacl::text FROM pg_database AS d
    UNION ALL
    SELECT 'default acl ' || d.defaclrole::regrole::text || ' ' || d.defaclobjtype::text, d.defaclrole,
           d.defaclacl::text
    FROM pg_default_acl AS d
    UNION ALL
    SELECT 'cron job ' || j.jobname, (SELECT r.oid FROM pg_roles AS r WHERE r.rolname = j.username), j.command
    FROM cron.job AS j
)
SELECT jsonb_build_object(
    'roles', (SELECT jsonb_object_agg(r.rolname, jsonb_build_array(r.rolsuper, r.rolinherit, r.rolcreaterole,
                     r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconfig))
              FROM pg_roles AS r),
    'memberships', (SELECT jsonb_agg(jsonb_build_array(r.rolname, m.rolname, a.admin_option)
                                     ORDER BY r.rolname, m.rolname)
                    FROM pg_auth_members AS a JOIN pg_roles AS r ON r.oid = a.roleid
                    JOIN pg_roles AS m ON m.oid = a.member),
    'objects', (SELECT jsonb_object_agg(o.object, jsonb_build_array(pg_get_userbyid(o.owner), o.acl))
                FROM objects AS o))
"""


async def privileges(admin: asyncpg.Connection) -> dict[str, Any]:
    raw = await admin.fetchval(SNAPSHOT_SQL)
    return raw if isinstance(raw, dict) else json.loads(raw)


def gained(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed, as a list of findings. Objects created meanwhile (ledger partitions
    made by game.maintain_ledger) count only if a role other than the owner of the
    schema's objects owns them or holds a grant on them."""
    findings = []
    if before["roles"] != after["roles"]:
        findings += [f"role {name}: {before['roles'].get(name)} -> {attrs}"
                     for name, attrs in after["roles"].items() if before["roles"].get(name) != attrs]
    if before["memberships"] != after["memberships"]:
        findings.append(f"memberships: {before['memberships']} -> {after['memberships']}")
    owners = {owner for owner, _ in before["objects"].values()}
    for name, state in after["objects"].items():
        old = before["objects"].get(name)
        if old is None:
            if state[0] not in owners or _grants_beyond_read(state[0], state[1]):
                findings.append(f"new {name}: {state}")
        elif old != state:
            findings.append(f"{name}: {old} -> {state}")
    findings += [f"dropped {name}" for name in before["objects"] if name not in after["objects"]]
    return findings


def _grants_beyond_read(owner: str, acl: str | None) -> bool:
    """True if an ACL like {postgres=arwdDxt/postgres,waifu_ops=r/postgres} gives anyone
    but the owner more than SELECT."""
    items = (acl or "").strip("{}").split(",") if acl and acl.startswith("{") else []
    for item in items:
        grantee, _, rest = item.partition("=")
        privileges = rest.split("/", 1)[0]
        if grantee.strip('"') != owner and set(privileges) - {"r"}:
            return True
    return False


@pytest.fixture
async def guard(admin: asyncpg.Connection) -> AsyncIterator[None]:
    """Every test here: afterwards no role gained anything."""
    before = await privileges(admin)
    yield
    assert gained(before, await privileges(admin)) == []


# -- the attacker's own objects ----------------------------------------------------------------

EVIL = r"""
CREATE FUNCTION pg_temp.evil() RETURNS boolean LANGUAGE plpgsql AS $evil$
BEGIN
    -- Record who ran it; as a superuser, take over.
    PERFORM pg_catalog.set_config('attack.ran_as',
        pg_catalog.concat_ws(',', pg_catalog.current_setting('attack.ran_as', true), current_user), false);
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', session_user);
    END IF;
    RETURN true;
END
$evil$;
CREATE FUNCTION pg_temp.evil_eq(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT pg_temp.evil()';
CREATE OPERATOR pg_temp.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = pg_temp.evil_eq);
CREATE FUNCTION pg_temp.jsonb_build_object(VARIADIC text[]) RETURNS jsonb LANGUAGE sql
    AS 'SELECT CASE WHEN pg_temp.evil() THEN ''{}''::pg_catalog.jsonb END';
CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE sql
    AS 'SELECT CASE WHEN pg_temp.evil() THEN pg_catalog.now() END';
"""
# Types the functions declare and use; a domain of each, checked by evil().
SHADOW_TYPES = ["jsonb", "text", "bigint", "int8", "integer", "int4", "smallint", "numeric", "boolean", "bool",
                "interval", "timestamptz", "date", "name", "regclass"]
# Relations the functions read, unqualified, would resolve to these views.
SHADOW_RELATIONS = ["players", "waifus", "waifu_templates", "events", "participations", "stat_corrections",
                    "config", "notifications", "template_translations", "event_translations", "pg_roles",
                    "pg_class", "pg_namespace"]


async def plant_shadows(conn: asyncpg.Connection) -> list[str]:
    """Create the attacker's pg_temp objects; returns what could be created."""
    await conn.execute(EVIL)
    planted = ["pg_temp.evil", "operator pg_temp.=", "pg_temp.jsonb_build_object", "pg_temp.now"]
    for t in SHADOW_TYPES:
        try:
            await conn.execute(f"CREATE DOMAIN pg_temp.{t} AS pg_catalog.{t} CHECK (pg_temp.evil())")
            planted.append(f"domain pg_temp.{t}")
        except asyncpg.PostgresError:
            pass
    for r in SHADOW_RELATIONS:
        await conn.execute(f"CREATE VIEW pg_temp.{r} AS SELECT 1 AS x WHERE pg_temp.evil()")
        planted.append(f"view pg_temp.{r}")
    # The caller's own path, pg_temp first: the functions must not care.
    await conn.execute("SET search_path = pg_temp, public, api, game, ops")
    return planted


async def evil_ran(conn: asyncpg.Connection) -> str:
    ran: str = await conn.fetchval("SELECT coalesce(current_setting('attack.ran_as', true), '')")
    return ran


# -- 1. no temporary objects, nothing in anyone's schema ------------------------------------------

CREATE_ATTEMPTS = [
    "CREATE TEMPORARY TABLE t (x int)",
    "CREATE TEMPORARY VIEW v AS SELECT 1",
    "CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (VALUE IS NOT NULL)",
    "CREATE FUNCTION pg_temp.evil() RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE OPERATOR pg_temp.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = int8eq)",
    "CREATE TYPE pg_temp.t AS (x int)",
    "CREATE SEQUENCE pg_temp.s",
    "CREATE TABLE public.t (x int)",
    "CREATE FUNCTION public.jsonb_build_object(VARIADIC text[]) RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'",
    "CREATE DOMAIN public.jsonb AS pg_catalog.jsonb",
    "CREATE FUNCTION api.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION game.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION ops.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE SCHEMA evil",
    "SELECT cron.schedule('evil', '* * * * *', 'SELECT 1')",
    "CREATE ROLE evil",
    "GRANT waifu_ops TO waifu_bot",
    "GRANT waifu_clock TO current_user",
    "ALTER ROLE current_user SUPERUSER",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "ALTER FUNCTION api.player_profile(bigint, timestamptz) RESET search_path",
    "CREATE EXTENSION pg_trgm",  # a trusted extension: needs CREATE on the database
    "COPY (SELECT 1) TO '/tmp/evil'",
    "SELECT pg_read_file('/etc/passwd')",
    "LOAD 'plpgsql'",
]


@pytest.mark.parametrize("who", ["bot", "operator"])
async def test_no_temporary_objects_and_nothing_in_any_schema(guard: None, real_bot_conn: asyncpg.Connection,
                                                              ops_conn: asyncpg.Connection, who: str) -> None:
    conn = real_bot_conn if who == "bot" else ops_conn
    allowed = []
    for sql in CREATE_ATTEMPTS:
        try:
            async with conn.transaction():
                await conn.execute(sql)
            allowed.append(sql)
        except asyncpg.PostgresError as exc:
            # 42501 insufficient privilege; 3F000 no schema (cron is invisible to them).
            if exc.sqlstate not in ("42501", "3F000", "0A000", "58P01"):
                allowed.append(f"{sql}: {exc.sqlstate} {exc}")
    assert allowed == []


# -- 2. a role given TEMPORARY by mistake: the definer functions still ignore pg_temp --------------


@dataclass
class Attacker:
    conn: asyncpg.Connection
    planted: list[str]


@pytest.fixture
async def attacker(database: Any, admin: asyncpg.Connection) -> AsyncIterator[Attacker]:
    """A login in waifu_bot and waifu_ops that was granted TEMPORARY, with its shadows planted."""
    await admin.execute(f"DROP ROLE IF EXISTS {ATTACKER}")
    await admin.execute(f"CREATE ROLE {ATTACKER} LOGIN PASSWORD '{ATTACKER_PASSWORD}' IN ROLE waifu_bot, waifu_ops")
    database_name = await admin.fetchval("SELECT current_database()")
    await admin.execute(f'GRANT TEMPORARY ON DATABASE "{database_name}" TO {ATTACKER}')
    conn = await asyncpg.connect(with_user(database.admin_url, ATTACKER, ATTACKER_PASSWORD))
    await init_connection(conn)
    try:
        yield Attacker(conn, await plant_shadows(conn))
    finally:
        await conn.close()
        await admin.execute(f'REVOKE TEMPORARY ON DATABASE "{database_name}" FROM {ATTACKER}')
        await admin.execute(f"DROP ROLE {ATTACKER}")


async def test_control_the_shadows_do_take_over_a_function_with_pg_temp_left_implicit(
        attacker: Attacker, admin: asyncpg.Connection) -> None:
    """Proves the attack in test 3 is real: the same objects run evil() as the owner of a
    definer function whose search_path is '' (what 0003 had)."""
    await admin.execute("""
        CREATE FUNCTION public.core_test_unsafe(x bigint) RETURNS text
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
        AS $$
        DECLARE
            j jsonb := pg_catalog.jsonb_build_object('x', x);
        BEGIN
            RETURN j::pg_catalog.text;
        END
        $$""")
    await admin.execute(f"GRANT EXECUTE ON FUNCTION public.core_test_unsafe(bigint) TO {ATTACKER}")
    try:
        # The domain pg_temp.jsonb's CHECK ran evil() as the owner. (evil would also have
        # made the attacker a superuser: undone below, the guard of test 3 checks it.)
        await attacker.conn.fetchval("SELECT public.core_test_unsafe(1)")
        assert "postgres" in (await evil_ran(attacker.conn)).split(",")
    finally:
        await admin.execute("DROP FUNCTION public.core_test_unsafe(bigint)")
        await admin.execute(f"ALTER ROLE {ATTACKER} NOSUPERUSER")


async def test_shadows_in_pg_temp_never_run_inside_any_definer_function(
        guard: None, attacker: Attacker, admin: asyncpg.Connection) -> None:
    conn = attacker.conn
    assert {"domain pg_temp.jsonb", "domain pg_temp.timestamptz", "view pg_temp.waifus"} <= set(attacker.planted)
    await conn.fetchval("SELECT api.register_player($1, 'eve', 'Eve', 'en')", PLAYER)
    wid = await conn.fetchval("SELECT api.adopt_waifu($1, 'sakura', 'adopt-1')", PLAYER)
    calls: list[tuple[str, str, list[Any]]] = [
        ("adopt again", "SELECT api.adopt_waifu($1, 'sakura', 'adopt-2')", [PLAYER]),
        ("templates", "SELECT api.waifu_templates()", []),
        ("profile", "SELECT api.player_profile($1)", [PLAYER]),
        ("stats", "SELECT api.player_waifu_stats($1, $2)", [PLAYER, wid]),
        ("events", "SELECT api.player_available_events($1, $2)", [PLAYER, wid]),
        ("participate", "SELECT api.participate_in_event($1, $2, 'walk', 'key-1')", [PLAYER, wid]),
        ("replay", "SELECT api.participate_in_event($1, $2, 'walk', 'key-1')", [PLAYER, wid]),
        ("any stats", "SELECT api.waifu_stats($1)", [wid]),
        ("any events", "SELECT api.available_events($1)", [wid]),
        ("tick", "SELECT api.restore_energy()", []),
        ("set stat", "SELECT ops.set_stat($1, 'mood', 60, 'attacker test')", [wid]),
        ("create event", "SELECT ops.create_event('core_atk', 'Attack', 1, 1, 0, 0, interval '0')", []),
        ("close event", "SELECT ops.close_event('core_atk')", []),
        ("set config", "SELECT ops.set_config(ledger_retention => interval '30 days')", []),
        ("maintain ledger", "SELECT game.maintain_ledger()", []),
        ("purge cron history", "SELECT game.purge_cron_history(interval '14 days')", []),
        ("overview", "SELECT * FROM ops.overview", []),
        ("help", "SELECT * FROM ops.help", []),
    ]
    outcomes = {}
    for label, sql, args in calls:
        try:
            await conn.fetch(sql, *args)
            outcomes[label] = "ok"
        except asyncpg.PostgresError as exc:
            outcomes[label] = exc.sqlstate
    # The calls really ran: answered, or refused by the game's own rules.
    assert outcomes.pop("adopt again") == "WF008"
    assert set(outcomes.values()) == {"ok"}, outcomes
    assert await evil_ran(conn) == ""
    # And every definer function this role may call, with crafted arguments.
    roles_before = await admin.fetchval(ROLES_SQL)
    crafted = await crafted_calls(conn, Context(PLAYER, wid, itertools.count()),
                                  await admin.fetch(FUNCTIONS_SQL, ATTACKER))
    assert crafted.evil_ran_as == ""
    assert crafted.roles == roles_before
    assert not await admin.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1", ATTACKER)


# -- 3. every exposed function, crafted arguments ------------------------------------------------------

FUNCTIONS_SQL = """
SELECT n.nspname AS schema, p.proname AS name, p.oid::regprocedure::text AS signature, p.pronargs AS nargs,
       p.pronargdefaults AS ndefaults, coalesce(p.proargnames, '{}') AS argnames,
       ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) AS argtypes
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('api', 'ops', 'game') AND p.prosecdef AND p.prokind = 'f'
  AND has_function_privilege($1, p.oid, 'EXECUTE')
ORDER BY 3
"""


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# Crafted values per type, as SQL expressions.
CRAFTED: dict[str, list[str]] = {
    "bigint": ["NULL", "0", "-1", "-9223372036854775808", "9223372036854775807", "2147483648"],
    "integer": ["NULL", "0", "-1", "-2147483648", "2147483647"],
    "smallint": ["NULL", "-32768", "32767"],
    "text": ["NULL", "''", "'   '", lit("x" * 100_000), lit("\x01\x02\x1b[31m"), lit("a\nb\rc\td"),
             lit("\u202eevil\u200b"), lit("'); DROP TABLE game.players; --"), lit("%s%n%x"), lit("ñ" * 300),
             lit("\ufeff"), lit("walk "), lit("WALK"), lit("sakura\x7f")],
    "timestamp with time zone": ["NULL", "'infinity'", "'-infinity'", "'1970-01-01 00:00+00'", "'4000-01-01 00:00+00'",
                                 "now() + interval '1 hour'", "now() - interval '1 hour'",
                                 "'1999-12-31 23:59:59+00'", "'2200-01-01 00:00+00'", "clock_timestamp()"],
    "interval": ["NULL", "interval '-1 day'", "interval '0'", "interval '100000000 days'", "interval '1 microsecond'",
                 "interval '-178000000 years'"],
    "boolean": ["NULL", "true", "false"],
    "jsonb": ["NULL", "'{}'", "'[]'", "'null'", "'\"x\"'"],
}


@dataclass
class Context:
    player: int
    waifu: int
    keys: Any  # an iterator of fresh suffixes

    def baseline(self, schema: str, function: str, arg: str, argtype: str) -> str | None:
        """A valid value for an argument without a default (None: leave it out)."""
        n = next(self.keys)
        by_name = {
            "telegram_id": str(self.player), "waifu_id": str(self.waifu), "event_code": "'walk'",
            "template_code": "'sakura'", "request_key": lit(f"crafted-{n}"), "username": "'eve'",
            "first_name": "'Eve'", "language_code": "'en'", "language": "'ru'", "stat": "'mood'", "value": "55",
            "reason": "'attacker test'", "title": "'Title'", "energy_cost": "1", "xp_reward": "1",
            "mood_delta": "0", "loyalty_delta": "0", "cooldown": "interval '0'", "name": "'Name'",
            "kind": "'template'", "keep": "interval '14 days'", "premake": "1",
        }
        if arg == "code":
            return "'walk'" if function in ("close_event", "delete_translation") else lit(f"atk_{n}")
        if arg in by_name:
            return by_name[arg]
        return {"bigint": "1", "integer": "1", "text": "'x'", "boolean": "false", "interval": "interval '1 day'",
                "jsonb": "'{}'"}.get(argtype)


async def call_crafted(conn: asyncpg.Connection, ctx: Context, f: asyncpg.Record) -> list[str]:
    """Each argument in turn takes each crafted value of its type; the others are valid.
    Returns the calls that ended in anything but an answer or a WF... refusal."""
    types = list(f["argtypes"])
    names = list(f["argnames"])[:len(types)]  # the input arguments (OUT / TABLE columns come after them)
    required = f["nargs"] - f["ndefaults"]
    findings = []
    for i, (arg, argtype) in enumerate(zip(names, types, strict=True)):
        for crafted in CRAFTED.get(argtype, ["NULL"]):
            parts = []
            for j, (other, other_type) in enumerate(zip(names, types, strict=True)):
                if j == i:
                    parts.append(f"{other} => ({crafted})::{other_type}")
                elif j < required:
                    base = ctx.baseline(f["schema"], f["name"], other, other_type)
                    parts.append(f"{other} => ({base if base is not None else 'NULL'})::{other_type}")
            sql = f"SELECT {f['schema']}.{f['name']}({', '.join(parts)})"
            try:
                async with conn.transaction():  # a savepoint when inside `crafted_calls`
                    await conn.fetchval(sql)
            except asyncpg.PostgresError as exc:
                if not (exc.sqlstate or "").startswith("WF"):
                    findings.append(f"{f['signature']} {arg} => {crafted[:40]}: {exc.sqlstate} {str(exc)[:120]}")
                elif len(exc.args[0] if exc.args else "") > 300 or len(exc.detail or "") > 600:
                    # A refusal quotes at most a bounded part of what it was sent (issue 18).
                    findings.append(f"{f['signature']} {arg} => {crafted[:40]}: {len(exc.args[0])} characters of "
                                    f"message, {len(exc.detail or '')} of detail")
    return findings


ROLES_SQL = """
SELECT jsonb_build_object(
    'roles', (SELECT jsonb_object_agg(r.rolname, jsonb_build_array(r.rolsuper, r.rolinherit, r.rolcreaterole,
                     r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls)) FROM pg_roles AS r),
    'memberships', (SELECT jsonb_agg(jsonb_build_array(a.roleid::regrole::text, a.member::regrole::text,
                                                       a.admin_option) ORDER BY 1) FROM pg_auth_members AS a))::text
"""


@dataclass
class Crafted:
    findings: list[str]
    roles: str  # ROLES_SQL as seen inside the attacker's transaction
    evil_ran_as: str


async def crafted_calls(conn: asyncpg.Connection, ctx: Context, functions: list[asyncpg.Record]) -> Crafted:
    """Every function with crafted arguments, in one transaction that is rolled back at the
    end (the shared test database keeps its ledger partitions, cron history and events);
    what the calls did to roles is read inside it, before the rollback."""
    await conn.execute("SET statement_timeout = '10s'")  # a crafted argument must not hang a function
    tx = conn.transaction()
    await tx.start()
    try:
        findings = []
        for f in functions:
            findings += await call_crafted(conn, ctx, f)
        roles = await conn.fetchval(ROLES_SQL)
        ran = await evil_ran(conn)
    finally:
        await tx.rollback()
        await conn.execute("RESET statement_timeout")
    return Crafted(findings, roles, ran)


@pytest.fixture
async def victim(admin: asyncpg.Connection) -> Context:
    await admin.execute("SELECT api.register_player($1, 'eve', 'Eve', 'en')", PLAYER)
    waifu = await admin.fetchval("SELECT api.adopt_waifu($1, 'sakura', 'adopt-eve')", PLAYER)
    return Context(PLAYER, waifu, itertools.count())


# This suite found raw 22003/22008 errors in 0006 for extreme operator arguments
# (game.maintain_ledger's premake, purge_cron_history's keep, ops.create_event's
# mood/loyalty_delta = -2^31); they are WF006 now.
@pytest.mark.parametrize("who", ["bot", "operator"])
async def test_every_exposed_function_refuses_crafted_arguments_cleanly(
        guard: None, real_bot_conn: asyncpg.Connection, ops_conn: asyncpg.Connection, admin: asyncpg.Connection,
        victim: Context, who: str) -> None:
    conn = real_bot_conn if who == "bot" else ops_conn
    role = "waifu_bot" if who == "bot" else "waifu_ops"
    functions = await admin.fetch(FUNCTIONS_SQL, role)
    assert len(functions) >= (7 if who == "bot" else 10), [f["signature"] for f in functions]
    roles_before = await admin.fetchval(ROLES_SQL)
    outcome = await crafted_calls(conn, victim, functions)
    assert outcome.findings == [], "\n".join(outcome.findings)
    assert outcome.roles == roles_before


async def test_the_bot_cannot_choose_the_time(guard: None, real_bot_conn: asyncpg.Connection,
                                             admin: asyncpg.Connection, victim: Context) -> None:
    """Any explicit `now` the bot passes is WF006, in every function that takes one; the
    default (the server's time) works. The 50-sessions-in-one-statement trick applies none."""
    conn = real_bot_conn
    rows = await admin.fetch("""
        SELECT n.nspname || '.' || p.proname AS f, p.proargnames AS names
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'api' AND 'now' = ANY (p.proargnames)
          AND has_function_privilege('waifu_bot', p.oid, 'EXECUTE')
        ORDER BY 1""")
    assert {r["f"] for r in rows} >= {"api.participate_in_event", "api.player_profile", "api.player_waifu_stats",
                                      "api.player_available_events"}
    args = {"telegram_id": str(PLAYER), "waifu_id": str(victim.waifu), "event_code": "'walk'",
            # 0007 (settings, daily reward, the notification sender's outbox calls)
            "name": "'language'", "value": "'en'", "worker": "'w'", "batch_size": "10", "lease_seconds": "30",
            "ids": "ARRAY[1]::bigint[]", "outcome": "'sent'", "retry_after_seconds": "NULL",
            # 0013 (shop, gifts, groups, leaderboards)
            "item_code": "'flowers'", "quantity": "1", "chat_id": "-1001", "title": "'Group'",
            "enabled": "true", "is_admin": "true", "event_id": "1", "board": "'all'",
            # 0014 (the stat card, groups' language)
            "bot_id": "1", "language": "'ru'"}
    for r in rows:
        for now in ("now() + interval '1 hour'", "now() - interval '1 day'", "'1970-01-01'", "'infinity'", "NULL",
                    "'2199-12-31'", "clock_timestamp()"):
            named = [f"{a} => {args.get(a, lit('k-' + str(hash(now))))}" for a in r["names"] if a != "now"]
            sql = f"SELECT {r['f']}({', '.join(named)}, now => ({now})::timestamptz)"
            with pytest.raises(asyncpg.PostgresError) as refused:
                await conn.fetchval(sql)
            assert refused.value.sqlstate == "WF006", (sql, refused.value)
            assert json.loads(refused.value.detail or "{}")["argument"] == "now"
    xp = await admin.fetchval("SELECT (dynamic ->> 'xp')::int FROM game.waifus WHERE id = $1", victim.waifu)
    with pytest.raises(asyncpg.PostgresError) as refused:
        await conn.fetch("""SELECT api.participate_in_event($1, $2, 'training', 'burst-' || g,
                                                            now() + g * interval '1 hour')
                            FROM generate_series(1, 50) AS g""", PLAYER, victim.waifu)
    assert refused.value.sqlstate == "WF006"
    assert await admin.fetchval("SELECT (dynamic ->> 'xp')::int FROM game.waifus WHERE id = $1", victim.waifu) == xp
    assert (await conn.fetchval("SELECT api.player_profile($1)", PLAYER))["telegram_id"] == PLAYER


async def test_null_ids_never_reach_another_players_waifu(guard: None, real_bot_conn: asyncpg.Connection,
                                                         admin: asyncpg.Connection, victim: Context) -> None:
    conn = real_bot_conn
    for sql in ("SELECT api.player_waifu_stats(NULL, $1)", "SELECT api.player_available_events(NULL, $1)",
                "SELECT api.participate_in_event(NULL, $1, 'walk', 'null-key')"):
        with pytest.raises(asyncpg.PostgresError) as refused:
            await conn.fetchval(sql, victim.waifu)
        assert refused.value.sqlstate in ("WF004", "WF005", "WF006"), (sql, refused.value)
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 0


async def test_an_operator_cannot_erase_the_ledger_by_moving_the_maintenance_clock(
        guard: None, ops_conn: asyncpg.Connection, admin: asyncpg.Connection, victim: Context) -> None:
    """game.maintain_ledger drops the partitions older than `at` - retention: with `at` a
    year ahead it would drop every current week, and with the ledger the record of which
    request keys were applied (a replayed key would then apply again)."""
    await admin.execute("SELECT game.maintain_ledger()")
    await admin.execute("SELECT api.participate_in_event($1, $2, 'walk', 'ledger-1')", PLAYER, victim.waifu)
    tx = ops_conn.transaction()  # rolled back: the shared test database keeps its partitions
    await tx.start()
    try:
        for at in ("now() + interval '1 year'", "now() + interval '31 days'", "'2199-12-31'"):
            try:
                async with ops_conn.transaction():
                    await ops_conn.fetchval(f"SELECT game.maintain_ledger(at => ({at})::timestamptz)")
            except asyncpg.PostgresError as exc:
                assert exc.sqlstate == "WF006", exc
            assert await ops_conn.fetchval("SELECT count(*) FROM game.participations") == 1, at
    finally:
        await tx.rollback()
