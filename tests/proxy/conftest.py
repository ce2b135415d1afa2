"""A proxy database over 2 partitions for the routing tests (its own, whatever
WAIFU_TEST_PARTITIONS says), reset before each test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from db.localdb import BOT_ROLE, with_user
from tests import seed_snapshot
from tests.conftest import RESET_SQL, init_connection
from tests.proxy.harness import PartitionSet, execute_everywhere, partition_set


@pytest.fixture(scope="session")
def pset() -> Iterator[PartitionSet]:
    with partition_set(f"proxy-{os.getpid()}", 2) as s:
        for url in s.partition_urls:
            seed_snapshot.take(url)  # what RESET_SQL returns to
        yield s


async def _connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    return conn


@pytest.fixture
async def proxy_admin(pset: PartitionSet) -> AsyncIterator[asyncpg.Connection]:
    """Superuser on the proxy, after a reset of every partition."""
    await execute_everywhere(pset.partition_urls, RESET_SQL)
    conn = await _connect(pset.proxy_url)
    yield conn
    await conn.close()


@pytest.fixture
async def proxy_bot(pset: PartitionSet, proxy_admin: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """The bot's role on the proxy (its password: .localdb/pgpass, PGPASSFILE)."""
    conn = await _connect(with_user(pset.proxy_url, BOT_ROLE))
    yield conn
    await conn.close()


@pytest.fixture
async def parts(pset: PartitionSet, proxy_admin: asyncpg.Connection) -> AsyncIterator[list[asyncpg.Connection]]:
    """Superuser connections straight to partition 0 and 1."""
    conns = [await _connect(url) for url in pset.partition_urls]
    yield conns
    for c in conns:
        await c.close()
