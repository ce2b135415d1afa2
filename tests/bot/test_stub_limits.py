"""The stand-in's flood limits and blocked players (no database): what the notification
sender is tested against."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter

from bot.dev.local_botapi import Limits, TelegramStub


@pytest.fixture
async def raw_bot(stub: TelegramStub) -> AsyncIterator[Bot]:
    """No retry middleware: each 429 surfaces."""
    bot = Bot(stub.token, session=AiohttpSession(api=TelegramAPIServer.from_base(stub.url)))
    yield bot
    await bot.session.close()


def chats(stub: TelegramStub, first: int, count: int) -> list[int]:
    for n in range(first, first + count):
        stub.user(n, f"P{n}").message("/start")
    return list(range(first, first + count))


async def test_about_30_messages_a_second_overall(stub: TelegramStub, raw_bot: Bot) -> None:
    ids = chats(stub, 1, 31)
    for chat_id in ids[:30]:
        await raw_bot.send_message(chat_id, "hi")
    with pytest.raises(TelegramRetryAfter) as info:
        await raw_bot.send_message(ids[30], "hi")
    assert info.value.retry_after == 1 and stub.rate_limited == 1
    await asyncio.sleep(1.0)
    await raw_bot.send_message(ids[30], "hi")
    assert stub.stats() == {"messages": 31, "chats": 31, "duplicates": 0, "rate_limited": 1, "forbidden": 0}


async def test_a_burst_then_one_a_second_per_chat(stub: TelegramStub, raw_bot: Bot) -> None:
    [chat_id] = chats(stub, 100, 1)
    for _ in range(3):  # refused messages do not count
        with pytest.raises(TelegramBadRequest):
            await raw_bot.send_message(chat_id, "")
    for _ in range(Limits().chat_burst):
        await raw_bot.send_message(chat_id, "hi")
    with pytest.raises(TelegramRetryAfter):
        await raw_bot.send_message(chat_id, "hi")
    # A second later one more goes out, and no more.
    await asyncio.sleep(1.05)
    await raw_bot.send_message(chat_id, "hi")
    with pytest.raises(TelegramRetryAfter):
        await raw_bot.send_message(chat_id, "hi")


async def test_a_blocked_player_gets_403_and_the_limits_can_be_turned_off(stub: TelegramStub, raw_bot: Bot) -> None:
    [chat_id, other] = chats(stub, 200, 2)
    stub.block(chat_id)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await raw_bot.send_message(chat_id, "hi")
    assert stub.forbidden == 1 and stub.sent_per_chat[chat_id] == 0
    stub.limits = None
    for _ in range(40):
        await raw_bot.send_message(other, "hi")
    assert stub.sent_per_chat[other] == 40 and stub.stats()["duplicates"] == 39


def test_lenient_mode_has_no_limits_unless_asked() -> None:
    assert TelegramStub(lenient=True).limits is None
    assert TelegramStub(lenient=True, limits=Limits(per_second=5)).limits == Limits(per_second=5)
    assert TelegramStub().limits == Limits()
