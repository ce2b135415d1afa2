"""Apply or roll back the migrations in db/migrations with yoyo's API.

`python -m db.migrate` is the command-line way, in a terminal or not:

    apply            apply every pending migration (no question: applying is what deploys do)
    list             each migration, applied (A) or not (U)
    rollback         roll back the newest applied migration: asks on a terminal; without
                     one it refuses unless --yes (yoyo's own prompt needs a terminal and
                     fails with a termios traceback without one)
    rollback-all     roll back every applied migration (the same confirmation)
    set-bot-password the bot role's password from $BOT_DB_PASSWORD

The database is --database or $MIGRATION_DATABASE_URL: a superuser URL without a
password in it; libpq finds the password in PGPASSWORD or a password file (PGPASSFILE,
~/.pgpass: `python -m db.localdb env` sets one for the local database). A URL that holds
a password works, but this command never prints it, and says so once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

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
    return _rollback(url, lambda applied: applied)


def rollback(url: str, count: int = 1) -> list[str]:
    """Roll back the newest `count` applied migrations; returns their ids, newest first."""
    return _rollback(url, lambda applied: applied[:count])


def status(url: str) -> list[tuple[str, bool]]:
    """(id, applied?) of every migration, oldest first."""
    backend = _backend(url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        applied = {m.id for m in backend.to_rollback(migrations)}
    return [(m.id, m.id in applied) for m in migrations]


def pending_rollback(url: str, count: int | None) -> list[str]:
    """The ids `rollback(url, count)` (None: every applied one) would roll back."""
    backend = _backend(url)
    ids = [m.id for m in backend.to_rollback(read_migrations(str(MIGRATIONS_DIR)))]
    return ids if count is None else ids[:count]


def _rollback(url: str, choose: Callable[[Any], Any]) -> list[str]:
    backend = _backend(url)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        chosen = choose(backend.to_rollback(migrations))
        backend.rollback_migrations(chosen)
    return [m.id for m in chosen]


def shown(url: str) -> str:
    """The URL as it may be printed: a password in it replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def confirm(question: str, stdin: TextIO, stdout: TextIO) -> bool | None:
    """The answer on a terminal (y/N); None when stdin is not a terminal (nobody to ask)."""
    if not stdin.isatty():
        return None
    stdout.write(f"{question} [y/N] ")
    stdout.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


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

    parser = argparse.ArgumentParser(prog="python -m db.migrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["apply", "list", "rollback", "rollback-all", "set-bot-password"],
                        help="set-bot-password reads the password from $BOT_DB_PASSWORD")
    parser.add_argument("--database", default=os.environ.get("MIGRATION_DATABASE_URL"),
                        help="superuser URL (default: $MIGRATION_DATABASE_URL); its password from PGPASSWORD or "
                             "a password file (PGPASSFILE, ~/.pgpass), not the URL")
    parser.add_argument("--yes", action="store_true", help="rollback: no question (scripts, no terminal)")
    args = parser.parse_args(argv)
    if not args.database:
        parser.error("set MIGRATION_DATABASE_URL or pass --database")
    if urlsplit(args.database).password is not None:
        print("note: the database URL holds a password (it shows in process lists and shell history); "
              "PGPASSWORD or a password file keeps it out", file=sys.stderr)
    if args.command == "apply":
        applied = apply(args.database)
        for migration_id in applied:
            print(f"applied {migration_id}")
        print(f"{len(applied)} migration(s) applied" if applied else "nothing to apply: the database is up to date")
    elif args.command == "list":
        for migration_id, applied_ in status(args.database):
            print(f"{'A' if applied_ else 'U'}  {migration_id}")
    elif args.command == "set-bot-password":
        password = os.environ.get("BOT_DB_PASSWORD")
        if not password:
            parser.error("set BOT_DB_PASSWORD")
        set_bot_password(args.database, password)
        print("password of role waifu_bot set")
    else:
        count = None if args.command == "rollback-all" else 1
        ids = pending_rollback(args.database, count)
        if not ids:
            print("nothing to roll back")
            return 0
        if not args.yes:
            answer = confirm(f"Roll back {', '.join(ids)} on {shown(args.database)}?", sys.stdin, sys.stdout)
            if answer is None:
                print(f"not rolling back {', '.join(ids)}: no terminal to confirm on (pass --yes)",
                      file=sys.stderr)
                return EX_USAGE
            if not answer:
                print("nothing rolled back")
                return 0
        rolled_back = rollback_all(args.database) if count is None else rollback(args.database, count)
        for migration_id in rolled_back:
            print(f"rolled back {migration_id}")
        print(f"{len(rolled_back)} migration(s) rolled back")
    return 0


EX_USAGE = 64  # sysexits.h: the command was used the wrong way


if __name__ == "__main__":
    sys.exit(main())
