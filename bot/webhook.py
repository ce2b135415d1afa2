"""The webhook endpoint: aiogram's SimpleRequestHandler, refusing what is not an update.

aiogram's handler parses the body inside the request (malformed JSON: a 500) and
validates it as an Update inside a background task (an invalid update: 200, then "Task
exception was never retrieved"). Here both happen before anything is handed on:
malformed JSON or a body that is not an update is answered 400 (Telegram never sends
one); something that carries an update_id but cannot be read as an update, or is of a
kind aiogram does not know, is answered 200 and skipped (a refusal would only make
Telegram deliver it again); a background task that fails is logged, never left
unretrieved. Refusals and skips are logged at a bounded rate.

Updates are handled in the background (SimpleRequestHandler's default), with one
exception that saves a request per button press: a button's answer (answerCallbackQuery)
rides in the webhook's HTTP response, which Telegram carries out as if it were a request.
For a callback query the response waits until the handler answers the button or ends, at
most `REPLY_WITHIN_SECONDS`; after that it goes empty and the answer, when it comes, is a
request of its own. The handler goes on in the background either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from bot import metrics
from bot.ratelimit import BoundedLog

log = logging.getLogger("bot.webhook")

# How long a callback query's webhook response waits for the button's answer. Telegram
# holds one of the bot's webhook connections (40 by default) meanwhile; an answer later
# than this is sent as a request of its own.
REPLY_WITHIN_SECONDS = 2.0


def reply_body(method: TelegramMethod[Any]) -> dict[str, Any]:
    """A call as a webhook's JSON response: {"method": name, parameters...}. Lighter than
    aiogram's multipart form; fit for calls with no files and no bot-wide defaults (a
    button's answer), which is all the responder offers."""
    return {"method": method.__api_method__, **method.model_dump(exclude_none=True, warnings=False)}


class WebhookReply:
    """Room for one Bot API call in a webhook's HTTP response, open until the response goes.

    `offer` parks a call there (the responder's answer to a button, bot/responder.py) and is
    refused once the response has gone or holds a call already: the caller then makes the
    request itself."""

    def __init__(self) -> None:
        self._method: TelegramMethod[Any] | None = None
        self._open = True
        self._settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def offer(self, method: TelegramMethod[Any]) -> bool:
        if not self._open or self._method is not None:
            return False
        self._method = method
        self.settle()
        return True

    def settle(self, *_: Any) -> None:
        """The response can go now (a call was parked, or the handling ended)."""
        if not self._settled.done():
            self._settled.set_result(None)

    def close(self) -> TelegramMethod[Any] | None:
        """No more offers; the call parked, if any, for the response to carry."""
        self._open = False
        method, self._method = self._method, None
        return method

    async def take(self, timeout: float) -> TelegramMethod[Any] | None:
        """Wait (at most `timeout`) for a call or the end of the handling, then close."""
        try:
            await asyncio.wait_for(self._settled, timeout)
        except TimeoutError:
            pass
        return self.close()


def _event_kind(update: Update) -> str | None:
    try:
        return update.event_type
    except Exception:  # noqa: BLE001 - aiogram raises its lookup error for unknown kinds
        return None


class ValidatingRequestHandler(SimpleRequestHandler):
    """SimpleRequestHandler with parsing and validation moved before the answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refusals = BoundedLog(log, interval=60.0)

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot):
            return web.Response(body="Unauthorized", status=401)
        try:
            raw = await request.json(loads=bot.session.json_loads)
        except (ValueError, LookupError):  # JSONDecodeError, UnicodeDecodeError, an unknown charset
            return self._refuse("malformed_json", "the body is not JSON")
        try:
            update = Update.model_validate(raw, context={"bot": bot})
        except ValidationError:
            if isinstance(raw, dict) and type(raw.get("update_id")) is int:
                # Shaped like an update (Telegram's, in a form this aiogram cannot read):
                # refusing it would only make Telegram deliver it again and again.
                return self._skip(raw["update_id"], "invalid_update")
            return self._refuse("not_an_update", "the body is not a Telegram update")
        if _event_kind(update) is None:
            return self._skip(update.update_id, "unknown_kind")
        method = await self.feed_with_reply(bot, update)
        return web.json_response({} if method is None else reply_body(method))

    async def feed_with_reply(self, bot: Bot, update: Update) -> TelegramMethod[Any] | None:
        """Start handling `update` in the background; for a button press, wait for its
        answer to put in the response (None: the response goes empty)."""
        if update.callback_query is None:
            self._start(bot, update, None)
            return None
        reply = WebhookReply()
        self._start(bot, update, reply).add_done_callback(reply.settle)
        try:
            method = await reply.take(REPLY_WITHIN_SECONDS)
        except asyncio.CancelledError:
            # The request is gone (shutdown, or Telegram hung up): send a parked answer as
            # a request so the button is still answered.
            if (parked := reply.close()) is not None:
                self._start_call(bot, parked)
            raise
        if method is not None:
            metrics.telegram_request(type(method).__name__, "webhook_reply")
        return method

    def _start(self, bot: Bot, update: Update, reply: WebhookReply | None) -> asyncio.Task[None]:
        task = asyncio.create_task(self._feed(bot, update, reply))
        self._background_feed_update_tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _start_call(self, bot: Bot, method: TelegramMethod[Any]) -> None:
        task = asyncio.create_task(self.dispatcher.silent_call_request(bot=bot, result=method))
        self._background_feed_update_tasks.add(task)
        task.add_done_callback(self._done)

    async def _feed(self, bot: Bot, update: Update, reply: WebhookReply | None) -> None:
        extra = {} if reply is None else {"webhook_reply": reply}
        result = await self.dispatcher.feed_update(bot, update, **self.data, **extra)
        if isinstance(result, TelegramMethod):
            await self.dispatcher.silent_call_request(bot=bot, result=result)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._background_feed_update_tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("webhook update failed", exc_info=exc)

    def _skip(self, update_id: int, reason: str) -> web.Response:
        self.refusals.log(("skipped", reason), "webhook update skipped", logging.WARNING,
                          update_id=update_id, reason=reason)
        return web.json_response({})

    def _refuse(self, reason: str, message: str) -> web.Response:
        self.refusals.log(("refused", reason), "webhook request refused", logging.WARNING, reason=reason)
        return web.json_response({"ok": False, "error": reason, "description": message}, status=400)
