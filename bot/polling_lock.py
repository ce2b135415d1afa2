"""One long-polling process per bot: a session lock in the game database.

Telegram allows one getUpdates consumer per token: a second poller makes the two
terminate each other's requests with 409 Conflict, forever (aiogram retries). So a
poller first takes the bot's polling lock (`api.try_polling_lock(bot_id)`: a session
advisory lock the database takes for it, since the bot's role may take none itself) on
a connection it keeps; a second process finds it taken and stops at once with a clear message
(several processes: webhook mode, see docs/SCALING.md). The lock lives in whichever
database DATABASE_URL names (the PL/Proxy database included). If that connection is
lost, the lock is gone: the process stops polling rather than risk a second poller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

EX_TEMPFAIL = 75  # exit status: another poller holds the lock (a supervisor may retry later)


class AnotherPoller(RuntimeError):
    """Another process polls for this bot."""


def bot_id(bot_token: str) -> int:
    """The bot's id (the token's public part): two bots sharing a database do not block each other."""
    return int(bot_token.split(":", 1)[0])


class PollingLock:
    def __init__(self, conn: asyncpg.Connection, on_lost: Callable[[object], None]) -> None:
        self._conn = conn
        self._on_lost = on_lost

    @classmethod
    async def acquire(cls, database_url: str, bot_token: str, on_lost: Callable[[], object]) -> PollingLock:
        """Take the lock or raise AnotherPoller; `on_lost` is called if the connection drops."""
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            taken = await conn.fetchval("SELECT api.try_polling_lock($1)", bot_id(bot_token))
        except BaseException:
            await conn.close()
            raise
        if not taken:
            await conn.close()
            raise AnotherPoller("another process is already polling Telegram for this bot (a second poller "
                                "would make both fail with 409 Conflict); run one poller, or use webhook mode "
                                "(WEBHOOK_URL) for several processes")

        def lost(_: object) -> None:
            log.error("lost the polling lock's database connection; stopping polling")
            on_lost()

        conn.add_termination_listener(lost)
        return cls(conn, lost)

    async def release(self) -> None:
        # Closing on purpose is no loss: asyncpg calls termination listeners on close too.
        self._conn.remove_termination_listener(self._on_lost)
        if not self._conn.is_closed():
            with_timeout = asyncio.wait_for(self._conn.close(), 5)
            try:
                await with_timeout
            except (OSError, TimeoutError, asyncpg.PostgresError):
                self._conn.terminate()
