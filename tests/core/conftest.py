"""Helpers for the game-core tests: a fixed clock, table snapshots, refusal checks.

Time: every test passes `now` explicitly. T0 is far in the future so the real pg_cron
tick (api.restore_energy at the real now()) never finds a test waifu due and cannot
change a stored stat in the middle of a test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psycopg2
import pytest

from db.localdb import with_user
from tests.conftest import init_connection

T0 = datetime(2100, 1, 1, 10, 0, 0, tzinfo=UTC)
MAX_ENERGY = 100

GAME_TABLES = ("players", "waifu_templates", "waifus", "events", "participations", "request_keys", "stat_corrections",
               "config", "notifications",
               # 0013
               "economy", "wallets", "coin_ledger", "items", "item_translations", "inventory", "purchases", "gifts",
               "groups", "group_members", "group_events", "group_event_participants", "group_messages",
               # 0014
               "card_photos", "cron_expectations")

OPERATOR_ROLE = "core_test_operator"
OPERATOR_PASSWORD = "operator-test-password"


def at(minutes: float = 0, seconds: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def ts(value: str | None) -> datetime | None:
    """A timestamp as the JSON results carry it."""
    return None if value is None else datetime.fromisoformat(value)


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of every game table, in primary-key order."""
    return {t: [dict(r) for r in await conn.fetch(f"SELECT * FROM game.{t} AS r ORDER BY r::text")]
            for t in GAME_TABLES}


async def refused(admin: asyncpg.Connection, sqlstate: str, call: Awaitable[Any]) -> dict[str, Any]:
    """Await `call` (not started yet), expect SQLSTATE `sqlstate` and no change to any
    game table; return the JSON DETAIL."""
    before = await snapshot(admin)
    with pytest.raises(asyncpg.PostgresError) as info:
        await call
    assert info.value.sqlstate == sqlstate, f"{info.value.sqlstate}: {info.value}"
    assert await snapshot(admin) == before, "a refused call changed a game table"
    return json.loads(info.value.detail) if info.value.detail else {}


async def register(conn: asyncpg.Connection, telegram_id: int = 1, username: str | None = "user") -> dict:
    return await conn.fetchval("SELECT api.register_player($1, $2, 'First', 'en')", telegram_id, username)


async def adopt(conn: asyncpg.Connection, telegram_id: int = 1, template: str | None = None,
                request_key: str | None = None) -> int:
    """Adopt `template`, or (None) the first template by code this player does not own yet."""
    if template is None:
        profile = await conn.fetchval("SELECT api.player_profile($1)", telegram_id)
        owned = {w["template_code"] for w in profile["waifus"]}
        template = min(t["code"] for t in await conn.fetchval("SELECT api.waifu_templates()") if t["code"] not in owned)
    return await conn.fetchval("SELECT api.adopt_waifu($1, $2, $3)", telegram_id, template, request_key)


async def player_with_waifu(conn: asyncpg.Connection, telegram_id: int = 1, template: str | None = "sakura") -> int:
    await register(conn, telegram_id)
    return await adopt(conn, telegram_id, template)


async def set_stored(admin: asyncpg.Connection, waifu_id: int, clock: datetime | None = None, **stats: int) -> None:
    """Overwrite stored stats (and the energy clock) directly, as a test setup."""
    await admin.execute(
        """UPDATE game.waifus SET dynamic = dynamic || $2::jsonb
               || CASE WHEN $3::timestamptz IS NULL THEN '{}'::jsonb
                       ELSE jsonb_build_object('last_restore', extract(epoch FROM $3::timestamptz)) END
           WHERE id = $1""",
        waifu_id, stats, clock)


async def stored(admin: asyncpg.Connection, waifu_id: int) -> dict[str, Any]:
    """Stored stats as the table holds them, with the clock as an exact timestamp."""
    row = await admin.fetchrow(
        """SELECT (dynamic ->> 'xp')::bigint AS xp, (dynamic ->> 'energy')::integer AS energy,
                  (dynamic ->> 'mood')::integer AS mood, (dynamic ->> 'loyalty')::integer AS loyalty,
                  timestamptz 'epoch' + (dynamic ->> 'last_restore')::numeric * interval '1 second' AS clock
           FROM game.waifus WHERE id = $1""", waifu_id)
    return dict(row)


async def stats(conn: asyncpg.Connection, waifu_id: int, now: datetime) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.waifu_stats($1, $2)", waifu_id, now)


async def participate(conn: asyncpg.Connection, telegram_id: int, waifu_id: int, event: str, key: str,
                      now: datetime) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.participate_in_event($1, $2, $3, $4, $5)",
                               telegram_id, waifu_id, event, key, now)


async def restore(admin: asyncpg.Connection, now: datetime) -> int:
    return await admin.fetchval("SELECT api.restore_energy($1)", now)


async def create_event(admin: asyncpg.Connection, code: str, cost: int, xp: int = 0, mood: int = 0,
                       loyalty: int = 0, cooldown: timedelta = timedelta(0), starts_at: datetime | None = None,
                       ends_at: datetime | None = None) -> dict[str, Any]:
    return await admin.fetchval("SELECT ops.create_event($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                                code, code.title(), cost, xp, mood, loyalty, cooldown, starts_at, ends_at)


@pytest.fixture(scope="session")
def operator_url(database) -> Iterator[str]:
    """A login role that is a member of waifu_ops, as a real operator would be."""
    with psycopg2.connect(database.admin_url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {OPERATOR_ROLE}")
        cur.execute(f"CREATE ROLE {OPERATOR_ROLE} LOGIN PASSWORD %s IN ROLE waifu_ops", (OPERATOR_PASSWORD,))
    conn.close()
    yield with_user(database.admin_url, OPERATOR_ROLE, OPERATOR_PASSWORD)
    with psycopg2.connect(database.admin_url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {OPERATOR_ROLE}")
    conn.close()


@pytest.fixture
async def ops_conn(operator_url: str, admin: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    # Again each time: the migrations test may have dropped and recreated waifu_ops.
    await admin.execute(f"GRANT waifu_ops TO {OPERATOR_ROLE}")
    conn = await asyncpg.connect(operator_url)
    await init_connection(conn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def paused_restore_job(admin: asyncpg.Connection) -> AsyncIterator[None]:
    """pg_cron's own restore-energy run, every minute, would stage waifus a test means its
    own tick to find: paused for the test (after a run already started has finished)."""
    toggle = "SELECT cron.alter_job(jobid, active := $1) FROM cron.job WHERE jobname = 'restore-energy'"
    await admin.execute(toggle, False)
    try:
        while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CALL game.restore%' "
                                   "AND pid <> pg_backend_pid() AND state = 'active'"):
            await asyncio.sleep(0.1)
        yield
    finally:
        await admin.execute(toggle, True)
