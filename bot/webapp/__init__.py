"""The Telegram Mini App: the page under /webapp/, its JSON API under /api/, and /healthz.

`setup_webapp` mounts all three on the bot's own aiohttp application (the one that also
serves the webhook), so the web app runs in the same process in webhook and polling mode.
"""

from bot.webapp.routes import setup_webapp

__all__ = ["setup_webapp"]
