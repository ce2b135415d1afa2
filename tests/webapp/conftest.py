"""The Mini App served by a real aiohttp server, on the real test database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Settings
from bot.game import Game
from bot.portraits import add_portrait_routes
from bot.webapp import setup_webapp
from tests.webapp.initdata import TEST_TOKEN


class CountingGame(Game):
    """The real Game, counting its database calls (to prove refusals make none of the
    game's): the shared rate limiter's own calls are counted apart."""

    calls = 0
    limit_calls = 0

    async def _call(self, sql: str, *args: Any) -> Any:
        if "api.rate_limit" in sql:
            self.limit_calls += 1
        else:
            self.calls += 1
        return await super()._call(sql, *args)


async def set_limit(admin: Any, bucket: str, rate: float, burst: int) -> None:
    """The shared limits live in the database (ops.rate_limits); the admin fixture resets them."""
    await admin.fetchval("SELECT ops.set_rate_limit($1, $2, $3)", bucket, rate, burst)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"bot_token": TEST_TOKEN, "webapp_auth_max_age": 86400}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def game(database, admin) -> AsyncIterator[CountingGame]:
    g = await CountingGame.connect(database.bot_url, min_size=1, max_size=4)
    try:
        yield g
    finally:
        await g.close()


def make_app(game: Game, settings: Settings) -> web.Application:
    """The web app as bot/app.py mounts it: the page, its API and the portraits."""
    app = web.Application()
    setup_webapp(app, game=game, settings=settings)
    add_portrait_routes(app)
    return app


@pytest.fixture
async def client(game) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(make_app(game, make_settings()), host="127.0.0.1")) as c:
        yield c


async def new_player(game: Game, telegram_id: int, name: str = "Ann", template: str = "sakura") -> int:
    """Register a player with one waifu; returns the waifu id."""
    await game.register_player(telegram_id, name.lower(), name, "en")
    return await game.adopt_waifu(telegram_id, template)


@pytest.fixture
async def live_server(game) -> AsyncIterator[str]:
    """The app on a real socket (127.0.0.1, a free port), as the bot serves it; yields its base URL."""
    runner = web.AppRunner(make_app(game, make_settings()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
