"""The Telegram Mini App: the page under /webapp/, its JSON API under /api/, and /healthz.

`setup_webapp` mounts all three on the bot's own aiohttp application (the one that also
serves the webhook), so the web app runs in the same process in webhook and polling mode.
"""

from __future__ import annotations

from aiohttp import web

from bot.config import Settings
from bot.game import Game
from bot.webapp.routes import install


def setup_webapp(app: web.Application, *, game: Game, settings: Settings) -> None:
    """Mount the Mini App page (/webapp/), its API (/api/) and /healthz on `app`."""
    install(app, game=game, settings=settings)


__all__ = ["setup_webapp"]
