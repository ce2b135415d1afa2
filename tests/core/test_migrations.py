"""Migrations: applying twice is a no-op, rolling everything back and applying again
gives the same schema and a working game, released migrations never change, the
committed schema dump (db/schema.sql) is what the migrations build, a database pg_cron
does not serve is refused with a clear error, and the yoyo command line works as the
README says.

Where they run. Everything that rolls back, dumps or runs yoyo uses a throwaway local
cluster of its own (`scratch`: db/localdb.py, cluster `migrations-<pid>`, removed at
the end), never the session's database, so no test has to repair what it broke for
the others. Why a second cluster rather than a second database (cloned from a
migrated template) in the session's cluster: pg_cron's extension can only be created
in the database named by `cron.database_name`, one per cluster, and migration 0001
refuses any other database (the last test here checks that it does), so no second
database of the same cluster can hold the game. A cluster costs about a second to
start, and it is also what a new deployment looks like: an empty server migrated from
nothing. Needs the local PostgreSQL 15 + pg_cron install
(skipped without it, e.g. when only a Docker engine serves the tests).
"""

from __future__ import annotations

import hashlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg2
import pytest

from db import localdb, migrate, schema
from tests.conftest import ROOT, init_connection

RELEASED = migrate.MIGRATIONS_DIR / "RELEASED.sha256"
YOYO = str(Path(sys.executable).parent / "yoyo")

# Everything the migrations define, as text: functions (source, privileges, settings,
# comments), tables and views (columns, definitions, privileges), indexes, cron jobs.
FINGERPRINT_SQL = """
SELECT 'function', p.oid::regprocedure::text,
       concat_ws(' | ', md5(p.prosrc), p.proacl::text, p.proconfig::text, p.prosecdef,
                 p.provolatile, obj_description(p.oid, 'pg_proc'))
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('game', 'api', 'ops')
UNION ALL
SELECT 'relation', c.oid::regclass::text,
       concat_ws(' | ', c.relkind, c.relacl::text, obj_description(c.oid, 'pg_class'),
                 CASE WHEN c.relkind = 'v' THEN md5(pg_get_viewdef(c.oid)) END,
                 (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                                    ORDER BY a.attnum)
                  FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname IN ('game', 'api', 'ops') AND c.relkind IN ('r', 'v', 'i', 'S', 'p', 'I')
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace IN (SELECT oid FROM pg_namespace WHERE nspname IN ('game', 'api', 'ops'))
UNION ALL
SELECT 'schema', nspname, concat_ws(' | ', nspacl::text, obj_description(oid, 'pg_namespace'))
FROM pg_namespace WHERE nspname IN ('game', 'api', 'ops')
UNION ALL
SELECT 'cron', jobname, concat_ws(' | ', schedule, command, database, username, active) FROM cron.job
UNION ALL
SELECT 'role', rolname, concat_ws(' | ', rolcanlogin, rolsuper, shobj_description(oid, 'pg_authid'))
FROM pg_roles WHERE rolname LIKE 'waifu\\_%'
ORDER BY 1, 2
"""


def fingerprint(url: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(FINGERPRINT_SQL)
        rows = cur.fetchall()
    conn.close()
    return rows


def migration_ids() -> list[str]:
    """Every migration in db/migrations, oldest first (what yoyo applies)."""
    return sorted(p.name.removesuffix(".sql") for p in migrate.MIGRATIONS_DIR.glob("[0-9]*.sql")
                  if not p.name.endswith(".rollback.sql"))


def env_without_database() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "MIGRATION_DATABASE_URL"}


@pytest.fixture(scope="module")
def scratch() -> Iterator[localdb.Cluster]:
    """A throwaway cluster of this module's own (see the module docstring)."""
    try:
        localdb._pg_bindir()
    except localdb.LocalDbError as exc:
        pytest.skip(f"needs a local PostgreSQL 15 + pg_cron: {exc}")
    cluster = localdb.cluster(f"migrations-{os.getpid()}")
    cluster.settings = {"shared_buffers": "'32MB'", "max_connections": "30"}  # small and short-lived
    cluster.destroy()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def migrated(scratch: localdb.Cluster) -> str:
    """The scratch cluster's superuser URL, every migration applied."""
    migrate.apply(scratch.url())
    return scratch.url()


def test_applying_twice_is_a_no_op(database):
    before = fingerprint(database.admin_url)
    assert migrate.apply(database.admin_url) == []
    assert fingerprint(database.admin_url) == before


async def test_roll_back_everything_then_apply_again(scratch, migrated):
    ids = migration_ids()
    before = fingerprint(migrated)
    assert migrate.rollback_all(migrated) == ids[::-1]
    admin = await asyncpg.connect(migrated)
    try:
        assert await admin.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('game', 'api', 'ops')") == 0
        assert await admin.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'") == 0
    finally:
        await admin.close()
    assert migrate.rollback_all(migrated) == []

    # `python -m db.migrate apply` (docker-compose's migrate service) names what it applied.
    out = subprocess.run([sys.executable, "-m", "db.migrate", "apply", "--database", migrated],
                         cwd=ROOT, env=env_without_database(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"applied {i}" for i in ids] + [f"{len(ids)} migration(s) applied"]
    assert fingerprint(migrated) == before

    # The game works again, as the bot's role (its password: .localdb/pgpass).
    bot = await asyncpg.connect(scratch.url(user=localdb.BOT_ROLE))
    admin = await asyncpg.connect(migrated)
    try:
        await init_connection(bot)
        await init_connection(admin)
        await bot.fetchval("SELECT api.register_player(1, 'u', 'U', 'en')")
        wid = await bot.fetchval("SELECT api.adopt_waifu(1, 'sakura')")
        assert (await bot.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'k')", wid))["energy"] == 90
        assert await admin.fetchval("SELECT api.restore_energy(now() + interval '3 minutes')") == 0
        assert await admin.fetchval("SELECT api.restore_energy(now() + interval '10 minutes')") == 1
        assert len(await bot.fetchval("SELECT api.waifu_templates()")) == 5
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await bot.execute("DELETE FROM game.waifus")
    finally:
        await bot.close()
        await admin.close()


def test_released_migrations_never_change():
    """db/migrations/RELEASED.sha256 lists every file of a tagged release (0001-0005:
    v0.1.0). A released migration has run on servers: changing it changes nothing there
    and splits the schema in two. Write a new migration instead (`make release-migrations`
    adds the next release's files when it is tagged)."""
    entries = [line.split(maxsplit=1) for line in RELEASED.read_text().splitlines() if line.strip()]
    names = [name.strip() for _, name in entries]
    assert {f"000{n}.{kind}" for n in range(1, 6) for kind in ("sql", "rollback.sql")} <= {
        n.split(".", 1)[0] + "." + ("rollback.sql" if n.endswith(".rollback.sql") else "sql") for n in names}
    changed = [name for (digest, name) in zip([d for d, _ in entries], names, strict=True)
               if not (migrate.MIGRATIONS_DIR / name).exists()
               or hashlib.sha256((migrate.MIGRATIONS_DIR / name).read_bytes()).hexdigest() != digest]
    assert not changed, (f"released migrations changed or removed: {changed}. Put the change in a new "
                         "migration; released files stay as they were tagged.")


def test_schema_dump_is_what_the_migrations_build(migrated):
    """db/schema.sql is the schema of a database migrated from scratch (`make schema`
    regenerates it; commit it with the migration that changes it)."""
    expected = schema.SCHEMA_FILE.read_text()
    actual = schema.dump(migrated)
    if actual != expected:
        pytest.fail("db/schema.sql differs from the migrated database: run `make schema` and commit it.\n"
                    + schema.diff(expected, actual)[:6000])


def test_yoyo_without_a_database_says_so():
    """No --database and no URL anywhere: one clear line, no configparser traceback."""
    out = subprocess.run([YOYO, "list"], cwd=ROOT, env=env_without_database(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert "Please specify a database uri" in out.stderr
    assert "Traceback" not in out.stderr


def test_yoyo_with_only_the_database_option(migrated):
    out = subprocess.run([YOYO, "list", "--database", migrated], cwd=ROOT, env=env_without_database(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    listed = {line.split()[1]: line.split()[0] for line in out.stdout.splitlines()[2:] if line.strip()}
    assert listed == {i: "A" for i in migration_ids()}


def run_in_terminal(args: list[str], prompt: bytes, answer: bytes, timeout: float = 60) -> tuple[int, str]:
    """Run `args` on a pseudo-terminal (as a person would), answer `prompt` once."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env_without_database())
    os.close(slave)
    output, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if not answered and prompt in output:
                    os.write(master, answer)
                    answered = True
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"{args[0]} did not finish: {output.decode(errors='replace')}")
        return proc.wait(timeout=10), output.decode(errors="replace")
    finally:
        os.close(master)


def test_yoyo_rollback_asks_first(migrated):
    """batch_mode is off in yoyo.ini: a rollback asks, and `q` leaves everything applied."""
    code, output = run_in_terminal([YOYO, "rollback", "--database", migrated],
                                   b"Shall I rollback this migration?", b"q")
    assert "Shall I rollback this migration?" in output, output
    assert migrate.apply(migrated) == []  # nothing was rolled back
    assert code == 0, output


def test_database_without_pg_cron_is_refused_with_a_clear_error(scratch, migrated):
    other = "core_test_other"
    other_url = urlunsplit(urlsplit(migrated)._replace(path=f"/{other}"))
    conn = psycopg2.connect(migrated)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('cron.database_name')")
            (cron_db,) = cur.fetchone()
            cur.execute(f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")
            cur.execute(f"CREATE DATABASE {other}")
        try:
            with pytest.raises(psycopg2.Error) as info:
                migrate.apply(other_url)
            message = str(info.value)
            assert f'pg_cron runs its jobs in database "{cron_db}", but the game is being installed in "{other}"' \
                in message
            assert f"Set cron.database_name = '{other}'" in message  # the hint says how to fix it
            with psycopg2.connect(other_url) as oc, oc.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname IN ('game', 'api', 'ops')")
                assert cur.fetchone() == (0,)
            oc.close()
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE {other} WITH (FORCE)")  # yoyo may still hold a connection
    finally:
        conn.close()


MIGRATE = [sys.executable, "-m", "db.migrate"]


def test_migrate_rollback_without_a_terminal_refuses_in_one_line(migrated):
    """yoyo's prompt needs a terminal (a termios traceback without one): db.migrate asks
    only on a terminal, and without one refuses unless --yes, in one line."""
    out = subprocess.run([*MIGRATE, "rollback", "--database", migrated], stdin=subprocess.DEVNULL, cwd=ROOT,
                         env=env_without_database(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 64, out
    assert out.stderr.strip() == f"not rolling back {migration_ids()[-1]}: no terminal to confirm on (pass --yes)"
    assert migrate.apply(migrated) == []  # nothing was rolled back


def test_migrate_rollback_asks_on_a_terminal_and_never_prints_the_password(migrated):
    newest = migration_ids()[-1]
    password = localdb.password(localdb.SUPERUSER)
    with_password = localdb.with_user(migrated, localdb.SUPERUSER, password)
    code, output = run_in_terminal([*MIGRATE, "rollback", "--database", with_password], b"[y/N]", b"n\n")
    assert code == 0, output
    assert password not in output
    assert f"Roll back {newest} on {migrate.shown(with_password)}? [y/N]" in output, output
    assert ":***@" in migrate.shown(with_password) and "nothing rolled back" in output
    assert "the database URL holds a password" in output  # the note, once
    assert migrate.apply(migrated) == []

    out = subprocess.run([*MIGRATE, "rollback", "--yes", "--database", migrated], stdin=subprocess.DEVNULL,
                         cwd=ROOT, env=env_without_database(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"rolled back {newest}", "1 migration(s) rolled back"]
    listed = subprocess.run([*MIGRATE, "list", "--database", migrated], cwd=ROOT, env=env_without_database(),
                            capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    assert listed == [f"{'U' if i == newest else 'A'}  {i}" for i in migration_ids()]
    assert migrate.apply(migrated) == [newest]


def test_yoyo_takes_the_password_from_libpq_s_environment(migrated):
    """The URLs the docs show hold no password: libpq's PGPASSWORD (or a password file)
    gives it to yoyo's psycopg2 backend, so yoyo's prompt cannot print it."""
    assert urlsplit(migrated).password is None
    password = localdb.password(localdb.SUPERUSER)
    base = {**env_without_database(), "PGPASSFILE": "/nonexistent"}
    out = subprocess.run([YOYO, "list", "--database", migrated], cwd=ROOT, env={**base, "PGPASSWORD": password},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert password not in out.stdout + out.stderr
    out = subprocess.run([YOYO, "list", "--database", migrated], cwd=ROOT, env=base, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "password" in out.stderr  # so it was PGPASSWORD that let it in
