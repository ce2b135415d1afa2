"""The polling lock's connection: a release is not a loss, a killed connection is."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.polling_lock import AnotherPoller, PollingLock

TOKEN = "424242:polling-lock-test"


async def test_release_is_not_a_loss_and_a_killed_connection_is(database, admin, caplog) -> None:
    lost: list[str] = []
    lock = await PollingLock.acquire(database.bot_url, TOKEN, on_lost=lambda: lost.append("lost"))
    with pytest.raises(AnotherPoller):
        await PollingLock.acquire(database.bot_url, TOKEN, on_lost=lambda: None)
    with caplog.at_level(logging.INFO, logger="bot.polling_lock"):
        await lock.release()
        await asyncio.sleep(0.1)
    assert lost == [] and not [r for r in caplog.records if r.levelno >= logging.WARNING]

    lock = await PollingLock.acquire(database.bot_url, TOKEN, on_lost=lambda: lost.append("lost"))
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE usename = 'waifu_bot' AND query LIKE '%try_polling_lock%'")
        for _ in range(50):  # the server closes the socket: asyncpg notices without a query
            if lost:
                break
            await asyncio.sleep(0.1)
        assert lost == ["lost"]
    finally:
        await lock.release()
