"""Apply or roll back the migrations in db/migrations with yoyo's API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _backend(url: str) -> Any:
    # yoyo picks psycopg2 for postgresql:// URLs; asyncpg-style URLs are the same form.
    return get_backend(url.replace("postgres://", "postgresql://", 1))


def apply(url: str, upto: str | None = None) -> list[str]:
    """Apply pending migrations (only those up to the id `upto`, if given); returns the ids
    applied, in order (empty: nothing to do)."""
    backend = _backend(url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    if upto:
        migrations = migrations.filter(lambda m: m.id <= upto)
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [m.id for m in pending]


def rollback_all(url: str) -> list[str]:
    """Roll back every applied migration; returns the ids rolled back, newest first."""
    backend = _backend(url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        applied = backend.to_rollback(migrations)
        backend.rollback_migrations(applied)
    return [m.id for m in applied]


def set_bot_password(url: str, password: str) -> None:
    """Give the bot's login role a password (deployments with password authentication)."""
    import psycopg2
    from psycopg2 import sql

    from db.localdb import BOT_ROLE

    conn = psycopg2.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        with conn, conn.cursor() as cur:
            # ALTER ROLE takes no bind parameters: quote the literal on the client.
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(BOT_ROLE), sql.Literal(password)))
    finally:
        conn.close()


def ensure_local_database(name: str = "dev") -> str:
    """Start the local cluster `name`, migrate it, and return the bot role's URL."""
    from db import localdb

    cluster = localdb.cluster(name)
    cluster.start()
    apply(cluster.url())
    return cluster.url(user=localdb.BOT_ROLE)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m db.migrate", description=__doc__)
    parser.add_argument("command", choices=["apply", "rollback-all", "set-bot-password"],
                        help="set-bot-password reads the password from $BOT_DB_PASSWORD")
    parser.add_argument("--database", default=os.environ.get("MIGRATION_DATABASE_URL"),
                        help="superuser URL (default: $MIGRATION_DATABASE_URL)")
    args = parser.parse_args(argv)
    if not args.database:
        parser.error("set MIGRATION_DATABASE_URL or pass --database")
    if args.command == "apply":
        applied = apply(args.database)
        for migration_id in applied:
            print(f"applied {migration_id}")
        print(f"{len(applied)} migration(s) applied" if applied else "nothing to apply: the database is up to date")
    elif args.command == "set-bot-password":
        password = os.environ.get("BOT_DB_PASSWORD")
        if not password:
            parser.error("set BOT_DB_PASSWORD")
        set_bot_password(args.database, password)
        print("password of role waifu_bot set")
    else:
        rolled_back = rollback_all(args.database)
        for migration_id in rolled_back:
            print(f"rolled back {migration_id}")
        print(f"{len(rolled_back)} migration(s) rolled back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
