"""Backups of the local cluster with pgBackRest: WAL archiving, full and incremental
backups, point-in-time restore (in place, or into a fresh cluster for a drill).

`python -m db.backup setup|backup|restore|info` (`make backup`, `make restore TIME=...`).
The cluster is db/localdb.py's; this module only adds to it: a pgbackrest.conf in the
cluster's home (from db/backup/pgbackrest.conf.in), `archive_mode`/`archive_command` by
ALTER SYSTEM (one restart), and the stanza. pgBackRest runs as the server's OS user, like
the server. The repository defaults to `<cluster home>-backup/` (BACKUP_REPO or --repo
elsewhere: another disk, at least).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from db import localdb

STANZA = "waifu"
TEMPLATE = Path(__file__).resolve().parent / "pgbackrest.conf.in"
PGBACKREST = "pgbackrest"


class BackupError(RuntimeError):
    """pgBackRest or the cluster refused; the message has its output."""


def config_path(cluster: localdb.Cluster) -> Path:
    return cluster.home / "pgbackrest.conf"


def default_repo(cluster: localdb.Cluster) -> Path:
    return Path(os.environ.get("BACKUP_REPO") or f"{cluster.home}-backup")


def _as_server_user(args: list[str]) -> list[str]:
    return (["runuser", "-u", localdb.SUPERUSER, "--"] if os.geteuid() == 0 else []) + args


def pgbackrest(cluster: localdb.Cluster, command: str, *options: str, timeout: float = 3600) -> str:
    """Run `pgbackrest <command>` for this cluster's stanza as the server's OS user."""
    args = [PGBACKREST, f"--config={config_path(cluster)}", f"--stanza={STANZA}", *options, command]
    # It logs in as the superuser over the socket: the password in the child's environment
    # (db/localdb.py's way), never on a command line.
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PGPASSWORD=localdb.password(localdb.SUPERUSER)))
    if done.returncode != 0:
        raise BackupError(f"pgbackrest {command} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def _own(path: Path) -> None:
    """Make `path` (a directory) the server user's, as the server's own files are."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, localdb.SUPERUSER, localdb.SUPERUSER)
    path.chmod(0o750)


def configured(cluster: localdb.Cluster) -> bool:
    return config_path(cluster).exists() and (cluster.data / "postgresql.auto.conf").exists() and \
        "archive-push" in (cluster.data / "postgresql.auto.conf").read_text()


def setup(cluster: localdb.Cluster, repo: Path | None = None) -> None:
    """Write the config, turn WAL archiving on (restarts the cluster), create the stanza
    and check that a WAL segment reaches the repository."""
    repo = repo or default_repo(cluster)
    cluster.start()
    _own(repo)
    for sub in ("pgbackrest", "pgbackrest/log", "pgbackrest/lock", "pgbackrest/spool"):
        _own(cluster.home / sub)
    text = TEMPLATE.read_text().format(repo=repo, home=cluster.home, data=cluster.data, port=cluster.port,
                                       socket=cluster.socket_dir)
    config_path(cluster).write_text(text)
    archive = f"{PGBACKREST} --config={config_path(cluster)} --stanza={STANZA} archive-push %p"
    # archive_timeout: a segment at least every minute even when the game is quiet, so
    # the most a lost server can take with it (the RPO) is what was written since.
    for setting in ("archive_mode = 'on'", f"archive_command = '{archive}'", "archive_timeout = '60s'"):
        cluster._psql(f"ALTER SYSTEM SET {setting}")
    cluster.stop()  # archive_mode needs a restart
    cluster.start()
    pgbackrest(cluster, "stanza-create")
    pgbackrest(cluster, "check")


def backup(cluster: localdb.Cluster, kind: str = "incr") -> str:
    """A backup of the running cluster; `incr` (or `diff`) becomes a full one when there
    is none yet. Returns its label."""
    if kind not in ("full", "diff", "incr"):
        raise BackupError("the type of a backup is full, diff or incr")
    if not configured(cluster):
        setup(cluster)
    pgbackrest(cluster, "backup", f"--type={kind}")
    return str(backups(cluster)[-1]["label"])


def backups(cluster: localdb.Cluster) -> list[dict[str, Any]]:
    """The repository's backups of this stanza, oldest first (pgbackrest info's JSON)."""
    stanzas = json.loads(pgbackrest(cluster, "info", "--output=json"))
    return list(stanzas[0]["backup"]) if stanzas else []


def info(cluster: localdb.Cluster) -> str:
    return pgbackrest(cluster, "info")


def restore(source: localdb.Cluster, target_time: str, *, into: localdb.Cluster | None = None,
            timeout: float = 3600) -> localdb.Cluster:
    """Recover to `target_time` (any form PostgreSQL reads, e.g. '2026-12-07 12:00:00+00').

    In place (`into` None): stops the cluster, restores over it (--delta), starts it; it
    goes on archiving on a new timeline. Into a fresh cluster: its own data directory and
    port, archiving off (a drill or a look at the past never writes into the repository).
    Returns the cluster once it accepts writes (recovery done, promoted)."""
    options = ["--type=time", f"--target={target_time}", "--target-action=promote"]
    if into is None:
        target = source
        source.stop()
        options.append("--delta")
        if os.geteuid() == 0:
            # db/localdb.py copies postgresql.tuning.conf into the data directory as root;
            # a delta restore (run as the server user) must be able to rewrite every file.
            for path in [target.data, *target.data.rglob("*")]:
                if not path.is_symlink():
                    shutil.chown(path, localdb.SUPERUSER, localdb.SUPERUSER)
    else:
        target = into
        if target.exists():
            raise BackupError(f"{target.home} already holds a cluster: destroy it first")
        target.home.mkdir(parents=True, exist_ok=True)
        _own(target.home)
        target.data.mkdir(mode=0o700)
        _own(target.data)
        target.data.chmod(0o700)
        _own(target.socket_dir)
        options += [f"--pg1-path={target.data}", "--archive-mode=off"]
    pgbackrest(source, "restore", *options, timeout=timeout)
    if into is not None:
        # The restored postgresql.conf still names the source's port and socket.
        port = int(os.environ.get("RESTORE_PORT") or localdb._free_port())
        with open(target.data / "postgresql.auto.conf", "a") as fh:
            fh.write(f"port = {port}\nunix_socket_directories = '{target.socket_dir}'\n")
        (target.home / "port").write_text(f"{port}\n")
    bindir = localdb._pg_bindir()
    target._run([str(bindir / "pg_ctl"), "-D", str(target.data), "-l", str(target.log), "-w", "-t",
                 str(int(timeout)), "start"])
    deadline = time.monotonic() + timeout
    while True:  # hot standby answers during recovery: wait for the promotion
        try:
            if target._psql("SELECT pg_is_in_recovery()") == "f":
                break
        except localdb.LocalDbError:
            pass
        if time.monotonic() > deadline or not target.running():
            # A target past the last archived WAL ends recovery with a FATAL: the log says so.
            raise BackupError("the restored cluster did not finish recovery" + target._log_tail())
        time.sleep(0.2)
    target.start()  # the game's database and pg_cron's scheduler, as for any start
    return target
