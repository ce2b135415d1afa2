"""Test database: a real PostgreSQL 15 with pg_cron, migrated once per session.

Where it comes from, in order:
1. TEST_DATABASE_URL (a superuser URL of a database the tests may wipe, in a server
   with pg_cron preloaded and cron.database_name naming that database);
2. testcontainers, when a Docker engine answers (the image waifu-bot/db when
   WAIFU_TEST_DB_IMAGE names it, as `make test-containers` does after building it once;
   else built once for this session from db/Dockerfile and removed after);
   TEST_REQUIRE_DOCKER=1 makes a missing engine an error instead of a fallback;
3. a throwaway local cluster (db/localdb.py), created for this run and removed after.
The first lines of pytest's header say which one runs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from bot.game import init_connection as init_connection  # the bot's own: tests decode as it does
from db import localdb, migrate
from tests import seed_snapshot

ROOT = Path(__file__).resolve().parent.parent
# tests/compose drives a whole docker-compose stack (minutes, a Docker engine and the images
# of `make images`): only `make test-compose` runs it.
collect_ignore = [] if os.environ.get("WAIFU_TEST_COMPOSE") == "1" else ["compose"]
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


def _database_path() -> str:
    """Which database the session's `database` fixture will use: partitions, url, docker or local."""
    if int(os.environ.get("WAIFU_TEST_PARTITIONS") or 0):
        return "partitions"
    if os.environ.get("TEST_DATABASE_URL"):
        return "url"
    if os.environ.get("TEST_NO_DOCKER") != "1" and _docker_engine_answers():
        return "docker"
    if os.environ.get("TEST_REQUIRE_DOCKER") == "1":
        pytest.exit(
            "TEST_REQUIRE_DOCKER=1 but no Docker engine answers"
            + (f" at DOCKER_HOST={os.environ['DOCKER_HOST']}" if os.environ.get("DOCKER_HOST") else "")
            + ": run `make docker-engine` and export the DOCKER_HOST it prints (or use `make test-containers`)",
            returncode=pytest.ExitCode.USAGE_ERROR)
    return "local"


def pytest_report_header(config: pytest.Config) -> str:
    if os.environ.get("WAIFU_TEST_COMPOSE") == "1":
        return "database: docker-compose stacks of their own (tests/compose: db, or PL/Proxy + partitions)"
    path = _database_path()
    if path == "docker":
        image = os.environ.get("WAIFU_TEST_DB_IMAGE") or "built from db/Dockerfile for this run"
        engine = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return f"database: testcontainers (image {image}, engine {engine})"
    return {"partitions": f"database: PL/Proxy over {os.environ.get('WAIFU_TEST_PARTITIONS')} local partitions",
            "url": "database: TEST_DATABASE_URL",
            "local": "database: a throwaway local cluster (db/localdb.py)"
                     + (" - TEST_NO_DOCKER=1" if os.environ.get("TEST_NO_DOCKER") == "1" else "")}[path]


def _configure_testcontainers() -> None:
    """Settings of testcontainers, where the user did not set them (its environment variables).

    Ryuk (its reaper container) is an image pulled from Docker Hub, which does not answer
    everywhere: off, and the fixture removes its container itself, by id, whatever happens.
    The connection mode: testcontainers takes a machine with /.dockerenv for a container of
    the engine it talks to and connects through the bridge's gateway, which an engine started
    on this very machine (make docker-engine) refuses; its published ports are on our
    loopback (docker_host). Set on the configuration object too: 4.9.0 reads neither
    variable after import.
    """
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    if "TESTCONTAINERS_CONNECTION_MODE" not in os.environ and Path("/.dockerenv").exists():
        import socket

        import docker

        client = docker.from_env(timeout=10)
        try:
            ours = client.containers.list(all=True, filters={"id": socket.gethostname()})
        finally:
            client.close()
        if not ours:  # not a container of this engine: its ports are published on our host
            os.environ["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    testcontainers_config.ryuk_disabled = os.environ["TESTCONTAINERS_RYUK_DISABLED"].lower() == "true"
    if mode := os.environ.get("TESTCONTAINERS_CONNECTION_MODE"):
        testcontainers_config.connection_mode_override = ConnectionMode(mode)


@contextmanager
def _postgres_container() -> Iterator[str]:
    """A superuser URL of a fresh PostgreSQL + pg_cron container; removed by id at the end."""
    _configure_testcontainers()
    try:  # testcontainers >= 4.15 moved it (the old module still works but warns)
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer  # type: ignore[no-redef]

    with ExitStack() as stack:
        image = os.environ.get("WAIFU_TEST_DB_IMAGE")
        if not image:
            from testcontainers.core.image import DockerImage

            image = f"waifu-bot-db:test-{os.getpid()}"
            DockerImage(path=str(ROOT / "db"), tag=image, clean_up=False).build()
            # Untagged by name at the end, not removed by id: the same layers may be tagged
            # waifu-bot/db too, and in use by another session's container.
            stack.callback(_untag, image)
        container = PostgresContainer(image, username="postgres", password="postgres", dbname="waifu")
        # Published on the loopback only, whatever the engine's default address.
        # (docker-py's form: with_bind_ports takes no address.)
        container.ports = {5432: ("127.0.0.1", None)}
        stack.callback(container.stop)  # by id, also when start or a test fails
        container.start()
        host = container.get_container_host_ip()
        if host == "localhost":
            host = "127.0.0.1"  # the port is bound there, not on ::1
        yield f"postgresql://postgres:postgres@{host}:{container.get_exposed_port(5432)}/waifu"


def _untag(image: str) -> None:
    import docker

    client = docker.from_env(timeout=30)
    try:
        client.images.remove(image)
    finally:
        client.close()


@pytest.fixture(scope="session")
def database() -> Iterator[TestDatabase]:
    path = _database_path()
    if path == "partitions":
        count = int(os.environ["WAIFU_TEST_PARTITIONS"])
        from tests.proxy.harness import partition_set

        with partition_set(f"test-{os.getpid()}", count) as pset:
            yield _prepare(pset.proxy_url, f"PL/Proxy over {count} partitions", tuple(pset.partition_urls))
    elif path == "url":
        yield _prepare(os.environ["TEST_DATABASE_URL"], "TEST_DATABASE_URL")
    elif path == "docker":
        with _postgres_container() as url:
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
