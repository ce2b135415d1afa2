"""A throwaway proxy database over N partitions (db.localdb + db.partitions), for tests.

Used by tests/conftest.py when WAIFU_TEST_PARTITIONS=N (the core tests then run
against the proxy) and by tests/proxy (routing tests, always 2 partitions).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg

from db import localdb, partitions


@dataclass(frozen=True)
class PartitionSet:
    name: str
    proxy_url: str  # superuser
    partition_urls: list[str]  # superuser, in partition order

    def clusters(self) -> list[localdb.Cluster]:
        return localdb.partition_set(self.name)[1]


@contextmanager
def partition_set(name: str, count: int) -> Iterator[PartitionSet]:
    """Start a fresh proxy + `count` partitions, migrate them; destroy them on exit."""
    proxy, parts = localdb.partition_set(name, count)
    for c in [proxy, *parts]:
        c.destroy()
    try:
        proxy, parts = localdb.start_partition_set(name, count)
        urls = [p.url() for p in parts]
        partitions.apply_local(name, admin_writes=True)  # set-ups UPDATE game.* on the proxy
        # The partitions' NOTIFY reaches the bot's LISTEN on the proxy, as in production.
        stop = threading.Event()
        relay = threading.Thread(target=partitions.relay_notifications, args=(proxy.url(), urls),
                                 kwargs={"stop": stop}, daemon=True)
        relay.start()
        try:
            yield PartitionSet(name, proxy.url(), urls)
        finally:
            stop.set()
            relay.join(5)
    finally:
        for c in [proxy, *parts]:
            c.destroy()


async def execute_everywhere(urls: list[str], sql: str) -> None:
    """Run `sql` on each partition directly (test set-up such as the reset)."""
    for url in urls:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
