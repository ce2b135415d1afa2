"""The webhook endpoint over real HTTP: with the right secret, malformed JSON and bodies
that are not updates are answered 400, never 500; an update aiogram cannot read is
answered and skipped; no background task is left failing unretrieved; refusals are
logged at a bounded rate; real updates are still handled; a button's answer rides in the
webhook's response (Telegram carries it out: the stand-in's `deliver`), and an answer
too late for the response, or for a request already gone, is a request of its own."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram.types import Update
from aiohttp import web
from prometheus_client import REGISTRY

from bot import webhook as bot_webhook
from bot.app import create_dispatcher, create_web_app
from bot.dev.local_botapi import callback_id_of
from bot.texts import Texts
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


async def _waifus_of(h: Harness, owner: int, timeout: float = 5.0) -> int:
    """The player's waifus once the handler (still running after the answer) has adopted."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        count = int(await h.admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = $1", owner))
        if count or asyncio.get_running_loop().time() > deadline:
            return count
        await asyncio.sleep(0.05)


def _answer_calls(h: Harness, tap: dict[str, Any]) -> list[Any]:
    return [c for c in h.stub.calls_of("answerCallbackQuery")
            if c.params.get("callback_query_id") == callback_id_of(tap)]


def _webhook_replies() -> float:
    return REGISTRY.get_sample_value("waifu_telegram_requests_total",
                                     {"method": "AnswerCallbackQuery", "outcome": "webhook_reply"}) or 0.0


async def test_a_buttons_answer_rides_in_the_webhook_response(webhook: Webhook, harness: Harness) -> None:
    url, loop_errors = webhook
    h = harness
    ann = h.stub.user(3102, "Ann")
    assert await h.stub.deliver(url, ann.message("/start"), SECRET) == 200
    await h.stub.wait_for(lambda: h.stub.bot_messages(ann.chat_id), timeout=10)
    replies = _webhook_replies()

    tap = ann.press("Sakura")
    assert await h.stub.deliver(url, tap, SECRET) == 200
    # Carried out from the response: no request of its own, and answered once.
    calls = _answer_calls(h, tap)
    assert [(c.via_webhook, c.status) for c in calls] == [(True, 200)], calls
    assert h.stub.answers(callback_id_of(tap)) == [calls[0].params]
    assert _webhook_replies() == replies + 1
    assert await _waifus_of(h, 3102) == 1

    # A refusal's alert rides the same way (the error handlers answer through the responder).
    forged = ann.press(data="a:sakura:again0001")
    assert await h.stub.deliver(url, forged, SECRET) == 200
    calls = _answer_calls(h, forged)
    assert [(c.via_webhook, c.params.get("show_alert"), c.params.get("text")) for c in calls] == \
        [(True, True, Texts("en")("err_already_adopted"))], calls
    assert await _waifus_of(h, 3102) == 1
    assert not loop_errors


async def test_an_answer_later_than_the_response_is_a_request_of_its_own(
        webhook: Webhook, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    url, loop_errors = webhook
    h = harness
    ann = h.stub.user(3103, "Ann")
    assert await h.stub.deliver(url, ann.message("/start"), SECRET) == 200
    await h.stub.wait_for(lambda: h.stub.bot_messages(ann.chat_id), timeout=10)
    monkeypatch.setattr(bot_webhook, "REPLY_WITHIN_SECONDS", 0.0)  # the response never waits

    tap = ann.press("Sakura")
    assert await h.stub.deliver(url, tap, SECRET) == 200
    await h.stub.wait_for(lambda: h.stub.answers(callback_id_of(tap)), timeout=10)
    assert [c.via_webhook for c in _answer_calls(h, tap)] == [False]
    assert len(h.stub.answers(callback_id_of(tap))) == 1
    assert await _waifus_of(h, 3103) == 1
    assert not loop_errors


async def test_a_request_gone_before_the_answer_still_gets_the_button_answered(harness: Harness) -> None:
    """Telegram hung up (or the server is stopping) while the response waited: the
    handling goes on, and its answer goes as a request."""
    h = harness
    settings = make_settings(h.stub, webhook_url=f"https://bot.example.test{PATH}", webhook_secret=SECRET)
    dp = create_dispatcher(h.game, settings, webhook_secret=SECRET)
    handler = bot_webhook.ValidatingRequestHandler(dispatcher=dp, bot=h.bot, secret_token=SECRET)
    ann = h.stub.user(3104, "Ann")
    await h.send(ann.message("/start"))
    tap = ann.press("Sakura")
    waiting = asyncio.create_task(handler.feed_with_reply(h.bot, Update.model_validate(tap, context={"bot": h.bot})))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await h.stub.wait_for(lambda: h.stub.answers(callback_id_of(tap)), timeout=10)
    assert [c.via_webhook for c in _answer_calls(h, tap)] == [False]
    assert await _waifus_of(h, 3104) == 1
    await asyncio.gather(*handler._background_feed_update_tasks)
