"""The PL/Proxy layer's own SQL (db/proxy/*.sql and the wrappers db/partitions.py
generates): every file listed and applied, applying again changes nothing, and every
PL/pgSQL function of the layer passes plpgsql_check on the proxy and on a partition."""

from __future__ import annotations

import asyncpg

from db import partitions

CHECK_SQL = """
SELECT p.oid::regprocedure::text AS function, c.level, c.message, c.lineno, c.statement
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
JOIN pg_language AS l ON l.oid = p.prolang
CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid, fatal_errors => false, {options}) AS c
WHERE n.nspname = ANY($1::text[]) AND l.lanname = 'plpgsql'
  AND NOT EXISTS (SELECT FROM pg_trigger AS t WHERE t.tgfoid = p.oid)  -- triggers: below, with their table
ORDER BY 1, c.lineno
"""
TRIGGER_CHECK_SQL = """
SELECT t.tgfoid::regprocedure::text AS function, c.level, c.message, c.lineno
FROM pg_trigger AS t
JOIN pg_proc AS p ON p.oid = t.tgfoid
JOIN pg_namespace AS n ON n.oid = p.pronamespace
CROSS JOIN LATERAL plpgsql_check_function_tb(t.tgfoid, t.tgrelid, fatal_errors => false,
                                             other_warnings => true) AS c
WHERE n.nspname = ANY($1::text[]) AND NOT t.tgisinternal
"""
PROXY_SCHEMAS = ["proxy", "api", "ops"]
PARTITION_SCHEMAS = ["partition"]


def test_every_sql_file_of_the_layer_is_used() -> None:
    on_disk = {p.name for p in partitions.SQL_DIR.glob("*.sql")}
    assert on_disk == set(partitions.SQL_FILES)
    for name in partitions.SQL_FILES:
        text = partitions.sql_file(name)
        assert text.startswith("--"), f"{name}: say what it is in a leading comment"
        assert "%(" not in text and "{db}" not in text, f"{name}: no placeholders, plain SQL"
    # The waifu id's hash bits are written out in SQL: the same as the Python side's.
    mask = str((1 << partitions.HASH_BITS) - 1)
    assert f"<< {partitions.HASH_BITS})" in partitions.sql_file("partition.sql")
    assert f"& {mask}" in partitions.sql_file("partition.sql") and f"& {mask}" in partitions.sql_file("proxy.sql")


async def _check(conn: asyncpg.Connection, schemas: list[str]) -> list[dict[str, object]]:
    await conn.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
    functions = await conn.fetchval("""
        SELECT count(*) FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace JOIN pg_language AS l ON l.oid = p.prolang
        WHERE n.nspname = ANY($1::text[]) AND l.lanname = 'plpgsql'""", schemas)
    assert functions >= 3
    rows = [dict(r) for r in await conn.fetch(CHECK_SQL.format(options="other_warnings => true"), schemas)]
    rows += [dict(r) for r in await conn.fetch(TRIGGER_CHECK_SQL, schemas)]
    return rows


async def test_the_proxys_functions_pass_plpgsql_check(proxy_admin: asyncpg.Connection) -> None:
    findings = await _check(proxy_admin, PROXY_SCHEMAS)
    assert [f for f in findings if f["level"] == "error"] == []
    assert findings == [], findings  # warnings too: it is clean, so a new one is a change to look at
    # The wrappers with a partition picked in the loop are among the checked.
    assert await proxy_admin.fetchval(
        "SELECT count(*) FROM pg_proc WHERE proname IN ('waifu_templates', 'claim_notifications') "
        "AND pronamespace = 'api'::regnamespace") >= 2


async def test_the_partitions_functions_pass_plpgsql_check(parts: list[asyncpg.Connection]) -> None:
    findings = await _check(parts[0], PARTITION_SCHEMAS)
    # "OUT variable maybe unmodified" of partition.relation_rows is plpgsql_check not
    # following RETURN QUERY EXECUTE into the OUT columns: the only extra warnings.
    assert [f for f in findings if f["level"] != "warning extra"] == [], findings
    assert {f["function"] for f in findings} <= {"partition.relation_rows(text)"}


async def test_applying_the_fixed_files_again_changes_nothing(pset, proxy_admin, parts) -> None:
    query = """SELECT p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid)) FROM pg_proc AS p
               WHERE p.pronamespace = ANY(ARRAY[$1]::regnamespace[]) ORDER BY 1"""
    before = ([tuple(r) for r in await proxy_admin.fetch(query, "proxy")],
              [tuple(r) for r in await parts[0].fetch(query, "partition")])
    for name in ("partition.sql", "partition_roles.sql"):
        await parts[0].execute(partitions.sql_file(name))
    await proxy_admin.execute(partitions.sql_file("proxy.sql"))
    after = ([tuple(r) for r in await proxy_admin.fetch(query, "proxy")],
             [tuple(r) for r in await parts[0].fetch(query, "partition")])
    assert after == before and len(before[0]) >= 8 and len(before[1]) >= 5
    assert await parts[0].fetchval("SELECT index FROM partition.identity") == 0  # left alone
