"""Fixtures for the bot's end-to-end tests: the real dispatcher and handlers, the real
database (as the bot's role), and the Bot API stand-in reached over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.app import create_bot, create_dispatcher
from bot.config import Settings
from bot.dev.local_botapi import TelegramStub
from bot.game import Game

WEBAPP_URL = "https://waifu.example.test/webapp/"


def make_settings(stub: TelegramStub, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"bot_token": stub.token, "telegram_api_url": stub.url, "webapp_url": WEBAPP_URL}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Harness:
    stub: TelegramStub
    game: Game
    bot: Bot
    dp: Dispatcher
    settings: Settings
    admin: asyncpg.Connection

    async def send(self, update: dict[str, Any]) -> Any:
        """Deliver an update the way polling does: through the whole dispatcher."""
        return await self.dp.feed_raw_update(self.bot, update)

    def fresh_dispatcher(self) -> Dispatcher:
        """A new dispatcher on the same bot and database: the bot after a restart."""
        return create_dispatcher(self.game, self.settings)


@pytest.fixture
async def stub() -> AsyncIterator[TelegramStub]:
    s = TelegramStub()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def game(database, admin) -> AsyncIterator[Game]:
    g = await Game.connect(database.bot_url, min_size=1, max_size=4)
    yield g
    await g.close()


@pytest.fixture
async def harness(stub: TelegramStub, game: Game, admin) -> AsyncIterator[Harness]:
    settings = make_settings(stub)
    bot = create_bot(settings, session=AiohttpSession(api=TelegramAPIServer.from_base(stub.url)))
    dp = create_dispatcher(game, settings)
    yield Harness(stub, game, bot, dp, settings, admin)
    await bot.session.close()
