"""The webhook endpoint: aiogram's SimpleRequestHandler, refusing what is not an update.

aiogram's handler parses the body inside the request (malformed JSON: a 500) and
validates it as an Update inside a background task (an invalid update: 200, then "Task
exception was never retrieved"). Here both happen before anything is handed on:
malformed JSON or a body that is not an update is answered 400 (Telegram never sends
one); something that carries an update_id but cannot be read as an update, or is of a
kind aiogram does not know, is answered 200 and skipped (a refusal would only make
Telegram deliver it again); a background task that fails is logged, never left
unretrieved. Refusals and skips are logged at a bounded rate. Only background handling
(SimpleRequestHandler's default) is used here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from bot.ratelimit import BoundedLog

log = logging.getLogger("bot.webhook")


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
        task = asyncio.create_task(self._feed(bot, update))
        self._background_feed_update_tasks.add(task)
        task.add_done_callback(self._done)
        return web.json_response({})

    async def _feed(self, bot: Any, update: Update) -> None:
        result = await self.dispatcher.feed_update(bot, update, **self.data)
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
