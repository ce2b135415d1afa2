"""Make time pass for one player's energy, in development (`make play --fast-clock`, `:rest`).

The game's clock is the server's: the bot's role may not pass another `now`, and "she is
rested" is staged only by pg_cron's tick (`restore-energy`, every minute: `CALL
game.restore_energy_job()`). So time is made to pass the way the tests make it pass: a
superuser moves the stored energy clocks (`last_restore`) of the player's regenerating
waifus back. Their energy then reads higher at once (every read is as of now), and the
tick finds those that reached the cap and stages their message. A clock is never moved
past the moment she is full (`full_at` stays at or after now), so the tick's cursor,
which is at most the last tick's time, still sees her: no `ops.reset_tick()` is needed.
Cooldowns and the daily reward keep real time.

Needs a superuser URL of the game's database: the local one (`.localdb/dev`) is used
when playing on it; otherwise pass one.
"""

from __future__ import annotations

import asyncpg

# Moves every regenerating waifu of the player by $2 seconds, at most to the moment her
# energy reaches the cap; returns the waifus that reached it.
_ADVANCE = """
UPDATE game.waifus AS w
SET dynamic = jsonb_set(w.dynamic, '{last_restore}', to_jsonb(
        (w.dynamic ->> 'last_restore')::numeric - least($2::numeric, w.full_at - extract(epoch FROM now()))))
WHERE w.owner_id = $1
  AND (w.dynamic ->> 'energy')::integer < game.max_energy()
  AND w.full_at > extract(epoch FROM now())
RETURNING w.id, w.full_at <= extract(epoch FROM now()) AS rested
"""


class DevClock:
    """Energy time for one player, N times faster or at once; and a manual tick."""

    def __init__(self, admin_url: str, telegram_id: int) -> None:
        self.admin_url = admin_url
        self.telegram_id = telegram_id
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.admin_url, timeout=10)
        return self._conn

    async def advance(self, seconds: float) -> int:
        """Let `seconds` of energy time pass; returns how many waifus reached the cap."""
        rows = await (await self._connection()).fetch(_ADVANCE, self.telegram_id, seconds)
        return sum(1 for r in rows if r["rested"])

    async def rest(self) -> int:
        """Every regenerating waifu of the player reaches the cap now."""
        return await self.advance(10**9)

    async def tick(self) -> None:
        """One restore tick now, batched as pg_cron runs it (what an operator's manual tick does)."""
        await (await self._connection()).execute("CALL game.restore_energy_job()")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
