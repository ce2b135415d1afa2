"""`python -m db.backup`: pgBackRest for the local cluster (see db/backup/__init__.py).

    python -m db.backup setup   [--name dev] [--repo DIR]   WAL archiving on, stanza, check
    python -m db.backup backup  [--name dev] [--type full|diff|incr]
    python -m db.backup restore [--name dev] --time '2026-12-07 12:00:00+00' [--into NAME]
    python -m db.backup info    [--name dev]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from db import backup, localdb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db.backup", description="pgBackRest for the local cluster.")
    parser.add_argument("command", choices=["setup", "backup", "restore", "info"])
    parser.add_argument("--name", default="dev", help="the local cluster (default: dev)")
    parser.add_argument("--repo", type=Path, help="setup: the repository directory (default: <cluster>-backup)")
    parser.add_argument("--type", default="incr", choices=["full", "diff", "incr"],
                        help="backup: full, diff or incr (default; a full one when there is none yet)")
    parser.add_argument("--time", help="restore: the moment to recover to, e.g. '2026-12-07 12:00:00+00'")
    parser.add_argument("--into", help="restore: into a new local cluster of this name instead of in place")
    args = parser.parse_args(argv)
    cluster = localdb.cluster(args.name)
    try:
        if args.command == "setup":
            backup.setup(cluster, args.repo)
            print(backup.info(cluster), end="")
        elif args.command == "backup":
            print(f"backup {backup.backup(cluster, args.type)} done")
            print(backup.info(cluster), end="")
        elif args.command == "restore":
            if not args.time:
                parser.error("restore needs --time (make restore TIME='2026-12-07 12:00:00+00')")
            into = localdb.cluster(args.into) if args.into else None
            restored = backup.restore(cluster, args.time, into=into)
            print(f"restored to {args.time}: {restored.url()}")
        else:
            print(backup.info(cluster), end="")
    except (backup.BackupError, localdb.LocalDbError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
