"""Refusals and failures, handled once for every handler.

A `GameError` becomes a friendly, precise text chosen by its code (from the SQLSTATE)
with the numbers from its detail; anything else is logged with its traceback and the
player gets a short apology. Either way a pressed button is answered.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent

from bot.game import GameError

log = logging.getLogger("bot.errors")


async def on_game_error(event: ErrorEvent, **data: Any) -> bool:
    exc = event.exception
    assert isinstance(exc, GameError)
    responder, texts = data.get("responder"), data.get("texts")
    if responder is None or texts is None:
        return True
    try:
        await responder.refuse(texts.refusal(exc.code, exc.detail))
    except Exception:  # Telegram trouble while refusing: logged, the update is done
        log.exception("could not send a refusal", extra={"update_id": event.update.update_id})
    return True


async def on_unexpected_error(event: ErrorEvent, **data: Any) -> bool:
    log.error("update failed", exc_info=event.exception, extra={"update_id": event.update.update_id})
    responder, texts = data.get("responder"), data.get("texts")
    if responder is not None and texts is not None:
        try:
            await responder.refuse(texts("err_unexpected"))
        except Exception:  # logged; the update is done
            log.exception("could not send the apology", extra={"update_id": event.update.update_id})
    return True


def make_router() -> Router:
    router = Router(name="errors")
    router.errors.register(on_game_error, ExceptionTypeFilter(GameError))
    router.errors.register(on_unexpected_error)
    return router
