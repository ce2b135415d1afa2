"""Limits of the Mini App API over real HTTP: actions per player, requests per address
before authentication (429 JSON with Retry-After, no database call), oversized bodies
refused with 413 before they are read, refusals logged at a bounded rate; and text the
database cannot store is a clean 400."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.webapp.conftest import CountingGame, make_app, make_settings, new_player, set_limit
from tests.webapp.initdata import auth_header

ANN, BOB = 1101, 1102
Client = TestClient[web.Request, web.Application]


async def error_of(response: Any) -> dict[str, Any]:
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "detail"}, body
    assert response.headers["Cache-Control"] == "no-store"
    error: dict[str, Any] = body["error"]
    return error


async def serve(game: CountingGame, **settings: Any) -> Client:
    client = TestClient(TestServer(make_app(game, make_settings(**settings)), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def limited(game: CountingGame, admin: asyncpg.Connection) -> AsyncIterator[Client]:
    await set_limit(admin, "web_action", 1.0, 3)
    await set_limit(admin, "web_address", 1000.0, 1000)
    client = await serve(game)
    yield client
    await client.close()


def act(client: Client, user: int, waifu_id: int, n: int) -> Any:
    headers = {**auth_header(user), "Idempotency-Key": f"limit-test-{user}-{n:04d}"}
    return client.post(f"/api/waifus/{waifu_id}/events/walk", headers=headers)


async def test_actions_per_player_are_limited_with_retry_after_and_no_database_call(
        limited: Client, game: CountingGame, admin: asyncpg.Connection) -> None:
    ann, bob = await new_player(game, ANN), await new_player(game, BOB, "Bob")
    statuses = [(await act(limited, ANN, ann, n)).status for n in range(3)]
    assert statuses == [200, 200, 200]  # the burst
    calls = game.calls
    refused = await act(limited, ANN, ann, 3)
    assert refused.status == 429
    err = await error_of(refused)
    assert err["code"] == "rate_limited" and err["detail"]["scope"] == "player"
    assert refused.headers["Retry-After"] == "1" == str(err["detail"]["retry_after"])
    assert game.calls == calls  # refused before the database
    assert await admin.fetchval("SELECT count(*) FROM game.participations WHERE telegram_id = $1", ANN) == 3
    # Another player has a budget of their own; reading is not an action.
    assert (await act(limited, BOB, bob, 0)).status == 200
    assert (await limited.get("/api/me", headers=auth_header(ANN))).status == 200
    await asyncio.sleep(1.05)  # Retry-After honoured: the next action is accepted
    assert (await act(limited, ANN, ann, 4)).status == 200


async def test_two_thousand_requests_in_two_seconds_mostly_refused(
        limited: Client, game: CountingGame, admin: asyncpg.Connection) -> None:
    """The observed attack: one user firing as fast as possible."""
    wid = await new_player(game, ANN)
    started = time.monotonic()
    statuses: list[int] = []
    n = 0
    while time.monotonic() - started < 2.0 and n < 2000:
        batch = await asyncio.gather(*(act(limited, ANN, wid, n + i) for i in range(50)))
        statuses += [r.status for r in batch]
        n += 50
    elapsed = time.monotonic() - started
    accepted = statuses.count(200)
    assert set(statuses) <= {200, 409, 429}
    assert accepted <= 3 + elapsed * 1.0 + 1, (accepted, elapsed)
    assert statuses.count(429) >= len(statuses) - accepted - statuses.count(409)
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == accepted


async def test_addresses_are_limited_before_authentication(game: CountingGame, admin: asyncpg.Connection) -> None:
    await set_limit(admin, "web_address", 1.0, 5)
    client = await serve(game)
    try:
        statuses = [(await client.get("/api/me", headers={"Authorization": "tma garbage"})).status
                    for _ in range(5)]
        assert statuses == [401] * 5
        refused = await client.get("/api/me", headers=auth_header(ANN))  # even a valid one now
        assert refused.status == 429 and refused.headers["Retry-After"] == "1"
        err = await error_of(refused)
        assert (err["code"], err["detail"]["scope"]) == ("rate_limited", "address")
        assert game.calls == 0
        # One question to the shared limiter per request until the refusal; after it,
        # the refusal is remembered here until its Retry-After.
        assert game.limit_calls == 6
        assert (await client.get("/api/me")).status == 429 and game.limit_calls == 6
        # The page itself and /healthz are not part of the API's budget.
        assert (await client.get("/webapp/")).status == 200
    finally:
        await client.close()


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_budget(
        game: CountingGame, admin: asyncpg.Connection) -> None:
    await set_limit(admin, "web_address", 0.01, 2)
    client = await serve(game, webapp_trusted_proxies=1)
    try:
        def get(forwarded: str) -> Any:
            return client.get("/api/me", headers={"X-Forwarded-For": forwarded, "Authorization": "tma x"})

        assert [(await get("203.0.113.7")).status for _ in range(3)] == [401, 401, 429]
        assert (await get("203.0.113.8")).status == 401  # another client behind the same proxy
        # What the client wrote itself (left of the proxy's entry) does not buy a new budget.
        assert (await get("1.1.1.1, 203.0.113.7")).status == 429
        assert (await get("9.9.9.9, 203.0.113.7")).status == 429
    finally:
        await client.close()


async def raw_request(client: Client, head: str, body: bytes = b"") -> tuple[str, float]:
    """Send raw bytes; return the status line and the seconds until it arrived."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        started = time.monotonic()
        writer.write(head.encode() + body)
        await writer.drain()
        status = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
        return status, time.monotonic() - started
    finally:
        writer.close()


async def test_oversized_bodies_are_413_without_being_read(client: Client, game: CountingGame) -> None:
    wid = await new_player(game, ANN)
    headers = {**auth_header(ANN), "Idempotency-Key": "big-body-01"}
    big = await client.post(f"/api/waifus/{wid}/events/walk", data=b"x" * 16385, headers=headers)
    assert big.status == 413
    err = await error_of(big)
    assert (err["code"], err["detail"]) == ("payload_too_large", {"max_bytes": 16384})
    assert game.calls == 2  # only new_player's

    # A body announced as 1 GB of which a few bytes arrive: the answer comes at once,
    # without waiting for (or reading) the rest.
    head = (f"POST /api/waifus/{wid}/events/walk HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n"
            f"Authorization: {headers['Authorization']}\r\nIdempotency-Key: big-body-02\r\n\r\n")
    status, seconds = await raw_request(client, head, b"x" * 200_000)
    assert status.startswith("HTTP/1.1 413") and seconds < 2

    chunked = head.replace("Content-Length: 1000000000", "Transfer-Encoding: chunked")
    status, _ = await raw_request(client, chunked, b"5\r\nhello\r\n")
    assert status.startswith("HTTP/1.1 411")
    # A small body is fine (the API ignores it).
    ok = await client.post(f"/api/waifus/{wid}/events/walk", data=b"{}",
                           headers={**auth_header(ANN), "Idempotency-Key": "small-body-1"})
    assert ok.status == 200


async def test_refusals_are_logged_at_a_bounded_rate(game: CountingGame, caplog: pytest.LogCaptureFixture,
                                                     admin: asyncpg.Connection) -> None:
    caplog.set_level(logging.INFO, logger="bot.webapp")
    await set_limit(admin, "web_address", 1.0, 50)
    client = await serve(game)
    try:
        for _ in range(200):
            await client.get("/api/me", headers={"Authorization": "tma forged"})
    finally:
        await client.close()
    auth_lines = [r for r in caplog.records if r.getMessage() == "webapp auth refused"]
    limit_lines = [r for r in caplog.records if r.getMessage() == "webapp rate limited"]
    assert len(auth_lines) == 1 and len(limit_lines) == 1, caplog.text
    assert len(caplog.records) <= 3


async def test_text_the_database_cannot_store_is_a_clean_400(client: Client, game: CountingGame,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """22021 (a NUL byte) from the real database through bot.game: the API's 400 shape."""
    await new_player(game, ANN)
    real_call = game._call

    async def profile_with_a_nul(telegram_id: int) -> Any:
        return await real_call("SELECT api.register_player($1, $2, 'Ann', 'en')", telegram_id, "ann\x00")

    monkeypatch.setattr(game, "player_profile_json", profile_with_a_nul)
    resp = await client.get("/api/me", headers=auth_header(ANN))
    assert resp.status == 400
    err = await error_of(resp)
    assert err["code"] == "invalid_argument" and "\x00" not in str(err)


async def test_every_action_route_is_limited_per_player(game: CountingGame, admin: asyncpg.Connection) -> None:
    """Every POST under /api/ (participation, settings, daily, any added later) spends
    the player's action budget before doing anything else."""
    await set_limit(admin, "web_action", 0.01, 2)
    app = make_app(game, make_settings())
    [api] = [r.get_info()["app"] for r in app.router.resources() if isinstance(r, web.PrefixedSubAppResource)]
    examples = {"{waifu_id}": "1", "{event_code}": "walk", "{item_code}": "flowers", "{template_code}": "yuki"}
    paths = sorted({r.resource.canonical for r in api.router.routes() if r.method == "POST" and r.resource is not None})
    for placeholder, example in examples.items():
        paths = [path.replace(placeholder, example) for path in paths]
    assert not any("{" in path for path in paths), paths  # a new placeholder: add an example above
    assert len(paths) >= 7, paths  # participation, settings, daily; active, adopt, buy, gift (issue 19)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        for n, path in enumerate(paths):
            user = 1200 + n  # a budget of its own per route
            statuses = [(await client.post(path, json={}, headers={**auth_header(user),
                                                                  "Idempotency-Key": f"route-limit-{i:04d}"})).status
                        for i in range(3)]
            assert statuses[2] == 429 and 429 not in statuses[:2], (path, statuses)
    finally:
        await client.close()


async def test_two_processes_share_one_budget(database, admin: asyncpg.Connection) -> None:
    """Two web processes (two apps, each with its own pool) draw on one budget: an
    attacker gets no more by spreading requests over them."""
    await set_limit(admin, "web_action", 0.01, 4)
    games = [await CountingGame.connect(database.bot_url, min_size=1, max_size=2) for _ in range(2)]
    clients = [await serve(g) for g in games]
    try:
        wid = await new_player(games[0], ANN)
        statuses = [(await act(clients[n % 2], ANN, wid, n)).status for n in range(8)]
        assert statuses.count(200) == 4 and statuses.count(429) == 4, statuses
    finally:
        for c in clients:
            await c.close()
        for g in games:
            await g.close()
