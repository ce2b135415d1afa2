"""`python -m bot`: run the bot (long polling, or a webhook when WEBHOOK_URL is set).

Settings come from the environment or `.env` (see .env.example). Without DATABASE_URL
the local database (.localdb/dev) is started and migrated first.
"""

from __future__ import annotations

import asyncio
import sys

from bot.config import Settings
from bot.logs import setup_logging

NO_TOKEN = (
    "BOT_TOKEN is not set. Create a bot with @BotFather in Telegram (send it /newbot), "
    "then put the token it gives you in .env (BOT_TOKEN=123456:ABC...) or in the environment."
)


def main() -> int:
    settings = Settings()
    token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
    if not token:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    from aiogram.utils.token import TokenValidationError, validate_token  # after the check: a slow import

    try:
        validate_token(token)
    except TokenValidationError:
        print("BOT_TOKEN does not look like a bot token (expected digits, a colon, then letters, "
              "e.g. 123456:ABC-DEF...). @BotFather in Telegram shows it (/mybots > API Token).", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)

    from bot.app import run

    database_url = settings.database_url
    if not database_url:
        from db.migrate import ensure_local_database

        print("DATABASE_URL is not set: starting the local database (.localdb/dev)...", file=sys.stderr)
        database_url = ensure_local_database()
    asyncio.run(run(settings, database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
