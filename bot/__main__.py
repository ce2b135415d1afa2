"""`python -m bot`: run the bot (long polling, or a webhook when WEBHOOK_URL is set).

Settings come from the environment or `.env` (see .env.example). Without DATABASE_URL
the local database (.localdb/dev) is started and migrated first.

`python -m bot --check-config` only checks the settings: exit 0, or EX_CONFIG (78) with
what to set. A configuration error stops the bot the same way, at once (docker-compose
runs the check as a one-shot service before the bot: see docker-compose.yml).

Telegram out of reach at start-up (no network, a wrong TELEGRAM_API_URL) stops the bot
with one line and EX_UNAVAILABLE (69); a token Telegram refuses, with one line and
EX_CONFIG. Not a traceback: both are the first thing a new user meets.
"""

from __future__ import annotations

import asyncio
import sys

from bot.config import EX_CONFIG, ConfigError, Settings, load_settings

EX_UNAVAILABLE = 69  # sysexits.h: a service the program needs is unavailable


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check-config"]):
        print("usage: python -m bot [--check-config]", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EX_CONFIG
    if args == ["--check-config"]:
        print("configuration OK", file=sys.stderr)
        return 0

    from bot.app import run  # after the check: a slow import
    from bot.logs import setup_logging

    setup_logging(settings.log_level)
    database_url = settings.database_url
    if not database_url:
        from db.migrate import ensure_local_database

        print("DATABASE_URL is not set: starting the local database (.localdb/dev)...", file=sys.stderr)
        database_url = ensure_local_database()
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    try:
        asyncio.run(run(settings, database_url))
    except TelegramNetworkError as exc:
        print(f"cannot reach the Telegram Bot API at {telegram_api(settings)} ({exc.message}): check the "
              "network or TELEGRAM_API_URL; to play without Telegram: make play", file=sys.stderr)
        return EX_UNAVAILABLE
    except TelegramUnauthorizedError:
        print(f"Telegram refused BOT_TOKEN (401 Unauthorized at {telegram_api(settings)}): take the token "
              "@BotFather gave your bot (/mybots, API Token)", file=sys.stderr)
        return EX_CONFIG
    return 0


def telegram_api(settings: Settings) -> str:
    return settings.telegram_api_url or "https://api.telegram.org"


if __name__ == "__main__":
    sys.exit(main())
