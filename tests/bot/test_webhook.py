"""The webhook endpoint over real HTTP: with the right secret, malformed JSON and bodies
that are not updates are answered 400, never 500; an update aiogram cannot read is
answered and skipped; no background task is left failing unretrieved; refusals are
logged at a bounded rate; real updates are still handled."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import create_dispatcher, create_web_app
from tests.bot.conftest import Harness, make_settings

SECRET = "webhook-Secret_1"
PATH = "/telegram/webhook"


Webhook = tuple[str, list[dict[str, Any]]]


@pytest.fixture
async def webhook(harness: Harness) -> AsyncIterator[Webhook]:
    """The bot's HTTP server in webhook mode on a real socket: (endpoint URL, loop errors)."""
    h = harness
    settings = make_settings(h.stub, webhook_url=f"https://bot.example.test{PATH}", webhook_secret=SECRET)
    dp = create_dispatcher(h.game, settings, webhook_secret=SECRET)
    app = create_web_app(h.bot, dp, h.game, settings, SECRET)
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}{PATH}", loop_errors
    finally:
        await runner.cleanup()
        gc.collect()  # a task whose exception was never retrieved reports it when collected
        await asyncio.sleep(0)
        loop.set_exception_handler(previous)


async def post(url: str, body: bytes, secret: str | None = SECRET,
               content_type: str = "application/json") -> tuple[int, Any]:
    headers = {"Content-Type": content_type}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as resp:
        text = await resp.text()
        try:
            return resp.status, await resp.json(content_type=None)
        except ValueError:
            return resp.status, text


MALFORMED = [b"", b"{", b'{"update_id": 1,', b"[1, 2", b"\xff\xfe{}", b"nul\x00", b"{'update_id': 1}",
             b'{"update_id": 1}}']
NOT_UPDATES = [b"[]", b'"text"', b"1", b"null", b"{}", b'{"update_id": "one"}', b'{"update_id": null}',
               b'{"message": {"message_id": 1}}', b'{"update_id": 1.5}', b'[{"update_id": 1}]']


async def test_malformed_json_and_non_updates_are_400_never_500(webhook: Webhook, harness: Harness,
                caplog: pytest.LogCaptureFixture) -> None:
    url, loop_errors = webhook
    for body in MALFORMED:
        status, answer = await post(url, body)
        assert status == 400, (body, status, answer)
        assert answer["error"] == "malformed_json"
    status, answer = await post(url, b"{}", content_type="application/json; charset=no-such-charset")
    assert (status, answer["error"]) == (400, "malformed_json")
    for body in NOT_UPDATES:
        status, answer = await post(url, body)
        assert (status, answer["error"]) == (400, "not_an_update"), body
    # Without the secret nothing is even parsed.
    assert (await post(url, b"{", secret=None))[0] == 401
    assert (await post(url, b"{", secret="wrong"))[0] == 401
    await asyncio.sleep(0.2)
    assert not loop_errors
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not harness.stub.calls_of("sendMessage")


async def test_updates_aiogram_cannot_read_are_answered_and_skipped(webhook: Webhook, harness: Harness,
                caplog: pytest.LogCaptureFixture) -> None:
    url, loop_errors = webhook
    # Shaped like updates (an integer update_id): Telegram would redeliver a refusal.
    for body in (b'{"update_id": 77, "message": 5}', b'{"update_id": 78, "callback_query": {"id": []}}',
                 b'{"update_id": 79}', b'{"update_id": 80, "some_future_kind": {"x": 1}}'):
        status, answer = await post(url, body)
        assert (status, answer) == (200, {}), body
    await asyncio.sleep(0.3)
    assert not loop_errors, loop_errors
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert any(getattr(r, "reason", None) == "unknown_kind" for r in caplog.records)
    assert not harness.stub.calls_of("sendMessage")


async def test_refusals_are_logged_at_a_bounded_rate(webhook: Webhook, caplog: pytest.LogCaptureFixture) -> None:
    url, _ = webhook
    caplog.set_level(logging.INFO, logger="bot.webhook")
    for _ in range(30):
        assert (await post(url, b"{"))[0] == 400
    lines = [r for r in caplog.records if r.name == "bot.webhook" and getattr(r, "reason", None) == "malformed_json"]
    assert len(lines) == 1  # one line per reason per minute; the rest are counted


async def test_real_updates_still_work(webhook: Webhook, harness: Harness) -> None:
    url, loop_errors = webhook
    h = harness
    await h.stub.wait_for(lambda: h.stub.webhook, timeout=5)
    ann = h.stub.user(3101, "Ann")
    status, answer = await post(url, json.dumps(ann.message("/start")).encode())
    assert (status, answer) == (200, {})
    await h.stub.wait_for(lambda: h.stub.bot_messages(ann.chat_id), timeout=10)
    assert ann.last()["text"].startswith("Welcome, Ann!")
    assert not loop_errors
