"""Static checks of every PL/pgSQL function of the game (extension plpgsql_check)."""

CHECK_SQL = """
SELECT p.oid::regprocedure::text AS function, c.level, c.message, c.lineno, c.statement
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
JOIN pg_language AS l ON l.oid = p.prolang
CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid, fatal_errors => false, {options}) AS c
WHERE n.nspname = ANY($1::text[]) AND l.lanname = 'plpgsql'
ORDER BY 1, c.lineno
"""

SCHEMAS = ["api", "ops", "game"]


async def test_every_plpgsql_function_passes_plpgsql_check_without_errors(admin):
    checked = await admin.fetchval("""
        SELECT count(*) FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace JOIN pg_language AS l ON l.oid = p.prolang
        WHERE n.nspname = ANY($1::text[]) AND l.lanname = 'plpgsql'""", SCHEMAS)
    assert checked >= 13  # every api and ops function, plus the raising helpers in game
    rows = await admin.fetch(CHECK_SQL.format(options="other_warnings => true"), SCHEMAS)
    assert [dict(r) for r in rows if r["level"] == "error"] == []


async def test_no_plpgsql_check_warnings_even_with_all_checks_on(admin):
    # Stricter than asked (no errors): it is clean today, so a new warning is a
    # visible change to look at.
    rows = await admin.fetch(CHECK_SQL.format(options="all_warnings => true"), SCHEMAS)
    assert [dict(r) for r in rows] == []


async def test_the_check_does_find_a_broken_function(admin):
    await admin.execute("CREATE SCHEMA core_test_check")
    try:
        await admin.execute("""
            CREATE FUNCTION core_test_check.broken() RETURNS integer LANGUAGE plpgsql AS $$
            BEGIN
                RETURN (SELECT w.no_such_column FROM game.waifus AS w LIMIT 1);
            END $$""")
        rows = await admin.fetch(CHECK_SQL.format(options="other_warnings => true"), ["core_test_check"])
        assert [r["level"] for r in rows] == ["error"] and "no_such_column" in rows[0]["message"]
    finally:
        await admin.execute("DROP SCHEMA core_test_check CASCADE")
