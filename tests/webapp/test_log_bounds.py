"""Logs anyone can grow stay bounded: 200 requests with an oversized header write one
short line (not 200 tracebacks), and a refusal of the bot's role writes one line to the
server's log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from bot.logs import SERVER_LOGGERS, setup_logging
from tests.webapp.conftest import CountingGame, make_app, make_settings


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The bot's own logging set-up (bot/logs.py), writing to a buffer; restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).filters[:] for n in SERVER_LOGGERS}
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, filters in saved[2].items():
            logging.getLogger(name).filters[:] = filters


async def raw_request(port: int, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await reader.read(200)
    finally:
        writer.close()


async def test_oversized_headers_write_a_bounded_log(game: CountingGame, log_stream: io.StringIO) -> None:
    runner = web.AppRunner(make_app(game, make_settings()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        big = b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        answers = [await raw_request(port, big) for _ in range(200)]
        assert all(a.startswith(b"HTTP/1.0 400") for a in answers)
    finally:
        await runner.cleanup()
    text = log_stream.getvalue()
    assert "Traceback" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    refused = [line for line in lines if line["msg"] == "malformed request refused"]
    assert len(refused) == 1, lines
    assert refused[0]["level"] == "warning"
    assert refused[0]["error"].startswith("LineTooLong") and len(refused[0]["error"]) <= 200
    assert len(text.encode()) < 2_000  # was 808 bytes a request: 160 KB for these 200
    assert game.calls == 0 and game.limit_calls == 0


def server_log(admin_url: str) -> Path | None:
    """The local test cluster's server log (db/localdb.py: beside its data directory)."""
    import psycopg2

    with psycopg2.connect(admin_url) as conn, conn.cursor() as cur:
        cur.execute("SHOW data_directory")
        row = cur.fetchone()
    conn.close()
    path = Path(row[0]).parent / "server.log" if row else None
    return path if path is not None and path.exists() else None


async def test_a_refusal_of_the_bot_writes_one_short_server_log_line(database) -> None:
    log = server_log(database.admin_url)
    if log is None:  # a container or TEST_DATABASE_URL: the role's settings are test_no_stall's
        pytest.skip("the server's log is not readable from here (not a local cluster)")
    before = log.stat().st_size
    conn = await asyncpg.connect(database.bot_url)
    try:
        for k in range(50):
            with pytest.raises(asyncpg.PostgresError):
                await conn.fetchval("SELECT api.adopt_waifu($1, $2, $3)", 900_000 + k, "x" * 100_000, f"key-{k}")
    finally:
        await conn.close()
    await asyncio.sleep(0.2)
    added = log.read_bytes()[before:].decode(errors="replace")
    lines = [line for line in added.splitlines() if "waifu_bot@" in line]
    assert len(lines) == 50, added[-2000:]
    assert all("ERROR:" in line and len(line) < 200 for line in lines)
    assert "STATEMENT:" not in added and "CONTEXT:" not in added and "DETAIL:" not in added


class FailingGame(CountingGame):
    """The real Game, with a bug: the profile always fails unexpectedly."""

    async def player_profile_json(self, telegram_id: int) -> str:
        raise RuntimeError("a bug " + "x" * 500)


async def test_an_internal_error_per_request_logs_one_traceback_a_minute(database, admin,
                                                                         log_stream: io.StringIO) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from tests.webapp.initdata import auth_header

    game = await FailingGame.connect(database.bot_url, min_size=1, max_size=2)
    client = TestClient(TestServer(make_app(game, make_settings()), host="127.0.0.1"))
    await client.start_server()
    try:
        statuses = [(await client.get("/api/me", headers=auth_header(3001))).status for _ in range(100)]
    finally:
        await client.close()
        await game.close()
    assert statuses == [500] * 100 or set(statuses) == {500, 429}  # the address limit may refuse the tail
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1 and "RuntimeError: a bug" in errors[0]["exc"], errors
    assert len(log_stream.getvalue().encode()) < 6_000
