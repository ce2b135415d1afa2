"""Middlewares: the per-update context, and retrying Telegram's 429.

`UpdateContext` (outer, on every update) first admits the update: one handled by this
process or any other (Telegram redelivers a webhook update it thinks was lost, and
several webhook processes may each get it) is skipped, and so is one from a user or
group over the shared chat limits (`api.admit_update`; the database's request keys would
apply an action once anyway, this spares the player a second reply and the game a
flood). A user refused is then refused here, without a database call, until the wait
the database gave. It then gives handlers their `texts`, `responder` and `update_log`,
answers a callback query the handler left unanswered, keeps count of updates in flight
for a graceful shutdown, and writes the one log line per update (skipped updates: at
most one line per user a minute, with a count).

`RetryAfter` (on the bot's session) waits `retry_after` seconds on a 429 and sends the
request again, so a flood limit delays a reply instead of losing it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, Update

from bot import metrics
from bot.game import Game, GameError, GameUnavailable
from bot.languages import PlayerLanguages
from bot.logs import UpdateLog, update_logger
from bot.ratelimit import BoundedLog, Refusals
from bot.responder import Responder
from bot.texts import Texts

log = logging.getLogger("bot.middlewares")

_ACTION_CHARS = re.compile(r"[^a-z0-9_/]")


def describe(update: Update) -> tuple[int | None, str]:
    """(user id, action) of an update, for the log line; never raises on odd input."""
    if update.message is not None:
        user = update.message.from_user
        text = update.message.text or ""
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0].split("@", 1)[0].lower()
            action = _ACTION_CHARS.sub("", command)[:33] or "/"
        else:
            action = "text" if update.message.text is not None else "message"
        return (user.id if user else None), action
    if update.callback_query is not None:
        data = update.callback_query.data or ""
        prefix = _ACTION_CHARS.sub("", data.split(":", 1)[0].lower())[:8]
        return update.callback_query.from_user.id, f"button:{prefix or '?'}"
    return None, update.event_type if _has_event(update) else "unknown"


def _has_event(update: Update) -> bool:
    try:
        update.event_type  # noqa: B018 - raises for update kinds aiogram does not know
    except Exception:  # noqa: BLE001
        return False
    return True


def chat_of(update: Update) -> int | None:
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None and update.callback_query.message is not None:
        return update.callback_query.message.chat.id
    return None


class UpdateContext(BaseMiddleware):
    def __init__(self, remember: int = 10_000) -> None:
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._remember = remember
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.refusals = Refusals()
        self._skipped = BoundedLog(update_logger, interval=60.0)

    def _skip(self, update_log: UpdateLog, outcome: str) -> None:
        """One line per user per minute for updates not handled (a flood is one line)."""
        metrics.update_done(update_log.kind, outcome)
        self._skipped.log((outcome, update_log.user_id), "update", update_id=update_log.update_id,
                          user_id=update_log.user_id, action=update_log.action, outcome=outcome, latency_ms=0)

    async def _admit(self, game: Game, bot: Bot, update: Update, user_id: int | None) -> str | None:
        """None to handle the update, else why not ('duplicate', 'limited')."""
        chat_id = chat_of(update)
        if user_id is not None and self.refusals.wait(("user", user_id)):
            metrics.rate_limited("chat_user")
            return "limited"
        if chat_id is not None and chat_id < 0 and self.refusals.wait(("group", chat_id)):
            metrics.rate_limited("group_chat")
            return "limited"
        try:
            verdict = await game.admit_update(bot.id, update.update_id, user_id, chat_id)
        except GameError:
            return None  # the database is away: the handler meets it too and says so
        if verdict.get("admit"):
            return None
        if verdict.get("reason") == "limited":
            key = ("group", chat_id) if verdict.get("scope") == "group" else ("user", user_id)
            metrics.rate_limited("group_chat" if key[0] == "group" else "chat_user")
            self.refusals.refuse(key, float(verdict.get("retry_after") or 1.0))
            return "limited"
        return "duplicate"

    async def _forget(self, game: Game, bot: Bot, update_id: int) -> None:
        """A handling that failed: let a redelivery (or another process) try again."""
        self._seen.pop(update_id, None)
        try:
            await game.forget_update(bot.id, update_id)
        except GameError:
            pass

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        user_id, action = describe(event)
        update_log = UpdateLog(event.update_id, user_id, action)
        if event.update_id in self._seen:
            self._skip(update_log, "duplicate")
            return None
        self._remember_update(event.update_id)
        game: Game = data["game"]
        bot: Bot = data["bot"]
        if (skipped := await self._admit(game, bot, event, user_id)) is not None:
            self._skip(update_log, skipped)
            return None

        user = None
        if event.message is not None:
            user = event.message.from_user
        elif event.callback_query is not None:
            user = event.callback_query.from_user
        languages: PlayerLanguages | None = data.get("player_languages")
        if user is not None and languages is not None:
            texts = await languages.texts_for(user.id, user.language_code, data["game"])
        else:
            texts = Texts.for_user(user.language_code if user else None)
        responder = Responder(bot, event, texts, reply=data.get("webhook_reply"))
        # The same dict reaches the error handlers (ErrorsMiddleware wraps this one).
        data.update(texts=texts, responder=responder, update_log=update_log)

        self.in_flight += 1
        self._idle.clear()
        try:
            result = await handler(event, data)
            if user is not None and languages is not None:
                languages.learn(user.id, texts)
            await responder.answer()
            update_log.emit("ok")
            return result
        except GameUnavailable as exc:
            await self._forget(game, bot, event.update_id)
            update_log.emit(f"refused:{exc.code}")
            raise
        except GameError as exc:
            # A refusal is the update's answer: a redelivery would be refused the same.
            update_log.emit(f"refused:{exc.code}")
            raise
        except Exception as exc:
            await self._forget(game, bot, event.update_id)
            update_log.emit(f"error:{type(exc).__name__}", logging.WARNING)
            raise
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    def _remember_update(self, update_id: int) -> None:
        self._seen[update_id] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait for the updates being handled to finish; False if some are still running."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class RetryAfter(BaseRequestMiddleware):
    """On 429, wait `retry_after` and send again (up to `attempts` times in all)."""

    def __init__(self, attempts: int = 5, max_wait: float = 60.0) -> None:
        self.attempts = attempts
        self.max_wait = max_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = type(method).__name__
        for attempt in range(1, self.attempts + 1):
            try:
                response = await make_request(bot, method)
            except TelegramRetryAfter as exc:
                metrics.telegram_request(name, "retry_after")
                if attempt == self.attempts or exc.retry_after > self.max_wait:
                    raise
                log.warning("429 from Telegram, retrying", extra={
                    "method": type(method).__name__, "retry_after": exc.retry_after, "attempt": attempt})
                await asyncio.sleep(exc.retry_after)
                continue
            except TelegramForbiddenError:
                metrics.telegram_request(name, "forbidden")
                raise
            except (TelegramBadRequest, TelegramNotFound):
                metrics.telegram_request(name, "bad_request")
                raise
            except TelegramServerError:
                metrics.telegram_request(name, "server_error")
                raise
            except (TelegramNetworkError, OSError, TimeoutError):
                metrics.telegram_request(name, "network_error")
                raise
            except TelegramAPIError:
                metrics.telegram_request(name, "other_error")
                raise
            metrics.telegram_request(name, "ok")
            return response
        raise AssertionError("unreachable")
