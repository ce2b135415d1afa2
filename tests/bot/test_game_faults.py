"""bot.game at the edges: every connection-level failure is GameUnavailable, bad text is a
clean InvalidArgument, WF008 is LimitReached - and a PostgreSQL restart under load loses
nothing and applies nothing twice when each unavailable call is retried with its key."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from bot import game as g
from bot.texts import Texts
from db import localdb, migrate
from tests.bot.conftest import Harness
from tests.conftest import TestDatabase as Database

# -- the mapping, class by class ------------------------------------------------------------


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    asyncpg.exceptions.ProtocolError("unexpected message"),
    asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.exceptions.InterfaceError("pool is closing"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.ConnectionFailureError("connection failure"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CrashShutdownError("crash"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute UPDATE in a read-only transaction"),
    ConnectionResetError(104, "Connection reset by peer"),
    ConnectionRefusedError(111, "Connection refused"),
    OSError("Network is unreachable"),
    TimeoutError(),
    TimeoutError(),
], ids=lambda e: type(e).__name__)
def test_connection_level_failures_are_unavailable(exc: BaseException) -> None:
    translated = g._translate(exc)
    assert isinstance(translated, g.GameUnavailable)
    assert translated.http_status == 503 and translated.code == "unavailable"


def test_bugs_are_not_disguised() -> None:
    """A failure that is not the connection's (a bug in SQL or Python) is raised as it is."""
    assert g._translate(asyncpg.exceptions.UndefinedFunctionError("function api.nope() does not exist")) is None
    assert g._translate(asyncpg.exceptions.NotNullViolationError("null value")) is None
    assert g._translate(KeyError("x")) is None


def test_wf008_is_limit_reached_with_its_detail() -> None:
    exc = asyncpg.exceptions.PostgresError.new(
        {"C": "WF008", "M": "limit reached", "D": '{"template_code": "sakura", "waifu_id": 3, "limit": 1}'})
    translated = g._translate(exc)
    assert isinstance(translated, g.LimitReached)
    assert (translated.code, translated.http_status) == ("limit_reached", 409)
    assert translated.detail == {"template_code": "sakura", "waifu_id": 3, "limit": 1}


@pytest.fixture
async def client(database: Database, admin: asyncpg.Connection) -> AsyncIterator[g.Game]:
    c = await g.Game.connect(database.bot_url, min_size=1, max_size=2)
    yield c
    await c.close()


@pytest.mark.parametrize("bad", ["Ann\x00", "\x00", "\ud800", "A\udfffB"], ids=["nul", "only-nul", "surrogate",
                                                                              "low-surrogate"])
async def test_text_the_server_cannot_store_is_invalid_argument(client: g.Game, admin: asyncpg.Connection,
                                                                 bad: str) -> None:
    """NUL (22021 from the server) and lone surrogates (asyncpg cannot encode them) are a
    clean refusal, and the connection stays usable."""
    with pytest.raises(g.InvalidArgument) as refused:
        await client.register_player(4242, "ann", bad, "en")
    assert refused.value.http_status == 400
    assert "\x00" not in str(refused.value) and bad not in str(refused.value.detail)
    assert await admin.fetchval("SELECT count(*) FROM game.players WHERE telegram_id = 4242") == 0
    assert (await client.register_player(4242, "ann", "Ann", "en"))["first_name"] == "Ann"


async def test_in_chat_a_nul_in_a_name_is_a_clean_refusal(harness: Harness) -> None:
    h = harness
    nul = h.stub.user(4243, "Ann\x00")
    await h.send(nul.message("/start"))
    assert nul.last()["text"] == Texts("en")("err_invalid_argument")
    assert await h.admin.fetchval("SELECT count(*) FROM game.players WHERE telegram_id = 4243") == 0


async def test_ids_beyond_bigint_are_invalid_argument(client: g.Game) -> None:
    with pytest.raises(g.InvalidArgument):
        await client.player_profile(2**70)


async def test_a_closed_pool_is_unavailable(client: g.Game) -> None:
    await client.pool.close()
    with pytest.raises(g.GameUnavailable):
        await client.waifu_templates()


# -- a real server restart under load -----------------------------------------------------------

EVENT = "restart_probe"
PLAYERS = 12
WORKERS = 40


@pytest.fixture(scope="module")
def restart_cluster() -> Iterator[localdb.Cluster]:
    """A cluster of its own: the test stops and starts it, the session database stays up."""
    cluster = localdb.cluster(f"restart-{os.getpid()}")
    cluster.destroy()
    cluster.start()
    try:
        migrate.apply(cluster.url())
        yield cluster
    finally:
        cluster.destroy()


async def test_restart_under_load_every_call_succeeds_or_is_unavailable_and_retries_apply_once(
        restart_cluster: localdb.Cluster) -> None:
    cluster = restart_cluster
    admin = await asyncpg.connect(cluster.url())
    try:
        # Costs no energy and has no cooldown: no call is ever refused by a rule, so any
        # outcome other than success or GameUnavailable is a fault of the edge.
        await admin.execute("SELECT ops.create_event($1, 'Restart probe', 0, 1, 0, 0, interval '0', NULL, NULL)", EVENT)
    finally:
        await admin.close()

    game = await g.Game.connect(cluster.url(user=localdb.BOT_ROLE), min_size=2, max_size=10)
    waifus: dict[int, int] = {}
    for player in range(1, PLAYERS + 1):
        await game.register_player(player, None, f"P{player}", "en")
        waifus[player] = await game.adopt_waifu(player, "sakura", f"adopt-{player}")

    outcomes: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    pending: list[tuple[int, str]] = []  # (player, key) of calls that were unavailable
    applied: set[tuple[int, str]] = set()
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            player = 1 + (n + i) % PLAYERS
            key = f"w{n}-{i}"
            i += 1
            try:
                if i % 5 == 0:
                    await game.player_profile(player)  # reads go through the same edge
                    outcomes["read"] += 1
                    continue
                await game.participate(player, waifus[player], EVENT, key)
                outcomes["ok"] += 1
                applied.add((player, key))
            except g.GameUnavailable:
                outcomes["unavailable"] += 1
                if i % 5 != 0:
                    pending.append((player, key))
                await asyncio.sleep(0.01)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                unexpected.append(exc)

    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(worker(n)) for n in range(WORKERS)]
    try:
        await asyncio.sleep(1.0)
        before_restart = outcomes["ok"]
        # pg_ctl -m fast: sessions are terminated mid-call, then the server comes back.
        await loop.run_in_executor(None, cluster.stop)
        await asyncio.sleep(0.3)
        await loop.run_in_executor(None, cluster.start)
        # Until the pool works again, and a little longer.
        deadline = time.monotonic() + 30
        while outcomes["ok"] < before_restart + 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        stop.set()

    assert not unexpected, [f"{type(e).__name__}: {e}" for e in unexpected[:5]]
    assert outcomes["unavailable"] > 0, "the restart was not felt: nothing proven"
    assert outcomes["ok"] > before_restart, "the pool did not recover after the restart"

    # Retry every unavailable call with its key until it answers.
    replayed = 0
    for player, key in pending:
        for _ in range(100):
            try:
                result = await game.participate(player, waifus[player], EVENT, key)
                break
            except g.GameUnavailable:
                await asyncio.sleep(0.1)
        else:
            pytest.fail(f"retrying {key} stayed unavailable")
        replayed += bool(result["replayed"])
        applied.add((player, key))
    await game.close()

    admin = await asyncpg.connect(cluster.url())
    try:
        rows = await admin.fetch("SELECT telegram_id, request_key, count(*) AS n FROM game.participations "
                                 "WHERE event_code = $1 GROUP BY 1, 2", EVENT)
        ledger = {(r["telegram_id"], r["request_key"]): r["n"] for r in rows}
        stored = await admin.fetch("SELECT id, (dynamic ->> 'xp')::bigint AS xp FROM game.waifus")
        xp = {r["id"]: r["xp"] for r in stored}
    finally:
        await admin.close()
    # Exactly once: every call that answered (first time or on retry) is in the ledger
    # once, and nothing else is; each participation is +1 XP, so XP counts them too.
    assert set(ledger) == applied and set(ledger.values()) == {1}
    per_player = Counter(player for player, _ in applied)
    assert {wid: xp[wid] for wid in waifus.values()} == {waifus[p]: per_player[p] for p in waifus}
    print(f"calls: {dict(outcomes)}; unavailable participations retried: {len(pending)} "
          f"(of which already applied, answered as replays: {replayed})")
