"""The bot's handlers, one module per feature; `build_routers` assembles them in order.

Each module has `make_router()` returning a fresh `Router`: a router can belong to one
dispatcher only, and tests, the terminal chat and the benchmark each build their own.
"""

from __future__ import annotations

from aiogram import Router

from bot.handlers import collection, daily, errors, events, fallback, groups, menu, settings, start, stats


def build_routers() -> list[Router]:
    # fallback last: it takes every callback and private message the others did not.
    return [errors.make_router(), start.make_router(), menu.make_router(), stats.make_router(),
            events.make_router(), daily.make_router(), settings.make_router(), collection.make_router(),
            groups.make_router(), fallback.make_router()]
