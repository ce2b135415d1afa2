"""Test database: a real PostgreSQL 15 with pg_cron, migrated once per session.

Where it comes from, in order:
1. TEST_DATABASE_URL (a superuser URL of a database the tests may wipe, in a server
   with pg_cron preloaded and cron.database_name naming that database);
2. testcontainers, when a Docker engine answers (image built from db/Dockerfile);
3. a throwaway local cluster (db/localdb.py), created for this run and removed after.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from bot.game import init_connection as init_connection  # the bot's own: tests decode as it does
from db import localdb, migrate
from tests import seed_snapshot

ROOT = Path(__file__).resolve().parent.parent
BOT_ROLE = localdb.BOT_ROLE
BOT_PASSWORD = "bot-test-password"
# The bot's role plus waifu_clock: may pass an explicit `now`, so the core tests move
# time without sleeping. The real waifu_bot (bot_url) may not: attacker tests use it.
CLOCK_BOT_ROLE = "waifu_test_clock_bot"
OPS_ROLE = "waifu_ops"


@dataclass(frozen=True)
class TestDatabase:
    admin_url: str  # superuser: migrations, fixtures, assertions
    bot_url: str  # the bot's role: what the application really connects as
    clock_bot_url: str  # a member of waifu_bot and waifu_clock (tests that move time)
    source: str
    # WAIFU_TEST_PARTITIONS=N: admin_url and the others name the PL/Proxy database; these
    # are the partitions' superuser URLs (the reset runs on each).
    partition_urls: tuple[str, ...] = ()


def _docker_engine_answers() -> bool:
    """True if a Docker engine answers a ping (DOCKER_HOST or the default socket)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    import warnings

    import docker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # docker-py leaks its socket on failure
        try:
            client = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - any failure means: no usable engine
            return False


@pytest.fixture(scope="session")
def database() -> Iterator[TestDatabase]:
    if count := int(os.environ.get("WAIFU_TEST_PARTITIONS") or 0):
        from tests.proxy.harness import partition_set

        with partition_set(f"test-{os.getpid()}", count) as pset:
            yield _prepare(pset.proxy_url, f"PL/Proxy over {count} partitions", tuple(pset.partition_urls))
    elif url := os.environ.get("TEST_DATABASE_URL"):
        yield _prepare(url, "TEST_DATABASE_URL")
    elif os.environ.get("TEST_NO_DOCKER") != "1" and _docker_engine_answers():
        from testcontainers.core.image import DockerImage
        from testcontainers.postgres import PostgresContainer

        with DockerImage(path=str(ROOT / "db"), tag="waifu-bot-db:test") as image:
            with PostgresContainer(str(image), username="postgres", password="postgres", dbname="waifu") as pg:
                url = f"postgresql://postgres:postgres@{pg.get_container_host_ip()}:{pg.get_exposed_port(5432)}/waifu"
                yield _prepare(url, "testcontainers")
    else:
        cluster = localdb.cluster(f"test-{os.getpid()}")
        cluster.destroy()
        cluster.start()
        try:
            yield _prepare(cluster.url(), f"local cluster {cluster.home}")
        finally:
            cluster.destroy()


def _prepare(admin_url: str, source: str, partition_urls: tuple[str, ...] = ()) -> TestDatabase:
    if not partition_urls:  # a proxy's partitions are migrated by db.partitions
        seed_snapshot.restore_previous(admin_url)  # a reused database: its seeds, not an earlier run's rows
        migrate.apply(admin_url)
    for url in partition_urls or (admin_url,):
        seed_snapshot.take(url)  # what the migrations seeded: RESET_SQL returns to it
    import psycopg2

    with psycopg2.connect(admin_url) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER ROLE {BOT_ROLE} PASSWORD %s", (BOT_PASSWORD,))
        cur.execute(f"DROP ROLE IF EXISTS {CLOCK_BOT_ROLE}")
        cur.execute(f"CREATE ROLE {CLOCK_BOT_ROLE} LOGIN PASSWORD %s IN ROLE {BOT_ROLE}, waifu_clock", (BOT_PASSWORD,))
        # The owner-blind reads (operators' functions) let tests look at any waifu.
        cur.execute("GRANT EXECUTE ON FUNCTION api.waifu_stats(bigint, timestamptz), "
                    f"api.available_events(bigint, timestamptz) TO {CLOCK_BOT_ROLE}")
        cur.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
    conn.close()
    return TestDatabase(admin_url, localdb.with_user(admin_url, BOT_ROLE, BOT_PASSWORD),
                        localdb.with_user(admin_url, CLOCK_BOT_ROLE, BOT_PASSWORD), source, partition_urls)


# Back to what the migrations seeded: every game table and sequence (tests/seed_snapshot.py).
RESET_SQL = seed_snapshot.RESET_SQL


@pytest.fixture
async def admin(database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to a game with no players (seed catalogue intact)."""
    conn = await asyncpg.connect(database.admin_url)
    await init_connection(conn)
    if database.partition_urls:
        from tests.proxy.harness import execute_everywhere

        await execute_everywhere(list(database.partition_urls), RESET_SQL)
    else:
        await conn.execute(RESET_SQL)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def bot_conn(database: TestDatabase, admin: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """The bot's privileges plus the right to pass `now` (after the reset done by `admin`)."""
    conn = await asyncpg.connect(database.clock_bot_url)
    await init_connection(conn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def real_bot_conn(database: TestDatabase, admin: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """Exactly the bot's role, waifu_bot: what the application (or an attacker holding its
    login) connects as."""
    conn = await asyncpg.connect(database.bot_url)
    await init_connection(conn)
    try:
        yield conn
    finally:
        await conn.close()
