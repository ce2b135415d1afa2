"""`python -m bot`: run the bot (long polling, or a webhook when WEBHOOK_URL is set).

Settings come from the environment or `.env` (see .env.example). Without DATABASE_URL
the local database (.localdb/dev) is started and migrated first.

`python -m bot --check-config` only checks the settings: exit 0, or EX_CONFIG (78) with
what to set. A configuration error stops the bot the same way, at once (docker-compose
runs the check as a one-shot service before the bot: see docker-compose.yml).
"""

from __future__ import annotations

import asyncio
import sys

from bot.config import EX_CONFIG, ConfigError, load_settings


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
    asyncio.run(run(settings, database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
