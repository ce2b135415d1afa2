"""A throwaway local PostgreSQL 15 cluster with pg_cron, kept in `.localdb/<name>/`.

Used by `make db`, by the bot when DATABASE_URL is not set, and by the tests when
neither TEST_DATABASE_URL nor a Docker engine is available. Standard library only, so
it works before anything else is installed.

PostgreSQL refuses to run as root: when we are root the server runs as the `postgres`
OS user, and the cluster lives in a folder that user can reach.

Logins need passwords (scram-sha-256, over TCP and the socket alike): `postgres`, the
bot's role and the proxy's roles get passwords generated once per checkout and kept in
`.localdb/passwords.json`; `.localdb/pgpass` (libpq's password file, both mode 0600)
lists them for each cluster's port, and this module points PGPASSFILE at it, so the
URLs it gives carry no password. Nothing prints a password. pg_cron's role `waifu_cron`
has none: its jobs run in background workers, which do not log in.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "waifu"
SUPERUSER = "postgres"
BOT_ROLE = "waifu_bot"
# Login roles that get a generated password (the same in every local cluster of this
# checkout); any other role has none and cannot log in (waifu_cron: background workers).
PASSWORD_ROLES = (SUPERUSER, BOT_ROLE, "waifu_proxy")  # waifu_proxy_noclock: db.partitions gives it waifu_proxy's
SECRETS_DIR = PROJECT_ROOT / ".localdb"
PASSWORDS_FILE = SECRETS_DIR / "passwords.json"
PGPASS_FILE = SECRETS_DIR / "pgpass"

# Server settings the game needs; the rest is PostgreSQL's defaults (fsync and
# synchronous_commit on, as in production) plus TUNING_FILE below.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "shared_preload_libraries": "'pg_cron'",
    "cron.database_name": f"'{DB_NAME}'",
    # Jobs run in background workers: no libpq connection, so no pg_hba entry needed.
    "cron.use_background_workers": "on",
    "cron.max_running_jobs": "4",
    "max_worker_processes": "16",
    "max_connections": "200",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}
# Performance settings, the same file the Docker image includes (each line says why).
TUNING_FILE = PROJECT_ROOT / "db" / "postgresql.tuning.conf"


# Partitioned layout (docs/SCALING.md): each partition is a cluster of its own (pg_cron
# runs in one database per cluster, and migration 0001 insists on being in it), so they
# are kept small; the proxy holds no game data at all.
PARTITION_SETTINGS = {"shared_buffers": "'128MB'", "max_connections": "100"}
PROXY_SETTINGS = {"shared_buffers": "'64MB'", "max_connections": "100"}


def with_user(url: str, user: str, password: str | None = None) -> str:
    """`url` with its user (and password) replaced."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    netloc = credentials + "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class LocalDbError(RuntimeError):
    """A problem the user can fix; the message says how."""


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (created so: never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def passwords() -> dict[str, str]:
    """The generated password of each of PASSWORD_ROLES (made on first use)."""
    try:
        known: dict[str, str] = json.loads(PASSWORDS_FILE.read_text())
    except (OSError, ValueError):
        known = {}
    if any(role not in known for role in PASSWORD_ROLES):
        known = {role: known.get(role) or secrets.token_urlsafe(24) for role in PASSWORD_ROLES}
        _write_private(PASSWORDS_FILE, json.dumps(known, indent=1) + "\n")
    return known


def password(role: str) -> str:
    return passwords()[role]


def use_passfile() -> Path:
    """Point libpq and asyncpg (PGPASSFILE) at .localdb/pgpass, unless the caller chose one."""
    os.environ.setdefault("PGPASSFILE", str(PGPASS_FILE))
    return PGPASS_FILE


def _pgpass_entries(port: int, add: bool) -> None:
    """Add (or remove) the lines of one cluster's port to .localdb/pgpass."""
    try:
        lines = PGPASS_FILE.read_text().splitlines()
    except OSError:
        lines = []
    lines = [line for line in lines if line.split(":")[1:2] != [str(port)]]
    if add:
        # "localhost" is what libpq compares with for a Unix socket connection.
        lines += [f"{host}:{port}:*:{role}:{pw}" for host in ("127.0.0.1", "localhost")
                  for role, pw in passwords().items()]
    _write_private(PGPASS_FILE, "".join(line + "\n" for line in lines))


def _pg_bindir() -> Path:
    if env := os.environ.get("PG_BINDIR"):
        return Path(env)
    for candidate in (Path("/usr/lib/postgresql/15/bin"),):
        if (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise LocalDbError(
        "PostgreSQL 15 server binaries not found. On Debian/Ubuntu: "
        "apt-get install postgresql-15 postgresql-15-cron (or set PG_BINDIR)."
    )


def _pg_sharedir(bindir: Path) -> Path:
    out = subprocess.run(
        [str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True
    )
    if out.returncode == 0:
        return Path(out.stdout.strip())
    return Path("/usr/share/postgresql/15")


def _is_root() -> bool:
    return os.geteuid() == 0


def _can_enter(user: str, path: Path) -> bool:
    """True if `user` can enter `path` (and so every folder above it)."""
    probe = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(path)], capture_output=True
    )
    return probe.returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Cluster:
    name: str
    home: Path  # holds data/, run/ (socket), server.log, port
    settings: dict[str, str] = field(default_factory=dict)  # over SERVER_SETTINGS, at init

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def port(self) -> int:
        return int((self.home / "port").read_text().strip())

    def url(self, user: str = SUPERUSER, database: str = DB_NAME) -> str:
        """A URL without password (.localdb/pgpass has it: PGPASSFILE). For a role of
        PASSWORD_ROLES that a migration created since the start, its password is set now."""
        use_passfile()
        if user != SUPERUSER and user in PASSWORD_ROLES and self.running():
            self.set_passwords([user])
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def set_passwords(self, roles: list[str] | None = None) -> None:
        """Give the existing roles of PASSWORD_ROLES (or of `roles`) that have no password theirs."""
        known = passwords()
        for role in roles or [r for r in PASSWORD_ROLES if r != SUPERUSER]:
            # A DO block: the role may not exist yet (migrations create it). The password
            # is a literal of the statement: it goes over the socket, never into a log
            # (log_statement is off; a failing statement is not logged with it either: it
            # does not fail).
            # Only a role without one: a password someone set on purpose (the tests' for
            # the bot role) stays.
            self._psql(f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_authid WHERE rolname = '{role}' "
                       f"AND rolpassword IS NULL) THEN ALTER ROLE {role} PASSWORD '{known[role]}'; END IF; END $$",
                       database="postgres")

    # -- running commands as the server's OS user -------------------------------------
    def _server_user(self) -> str | None:
        return SUPERUSER if _is_root() else None

    def _run(self, args: list[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
        user = self._server_user()
        cmd = (["runuser", "-u", user, "--"] if user else []) + args
        result = subprocess.run(cmd, capture_output=True, text=True, **kw)
        if check and result.returncode != 0:
            raise LocalDbError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                + self._log_tail()
            )
        return result

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            return ""
        return "\n--- server log (last lines) ---\n" + "\n".join(lines)

    # -- lifecycle ----------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.exists():
            return False
        bindir = _pg_bindir()
        return self._run([str(bindir / "pg_ctl"), "-D", str(self.data), "status"], check=False).returncode == 0

    def init(self) -> None:
        bindir = _pg_bindir()
        if not (_pg_sharedir(bindir) / "extension" / "pg_cron.control").exists():
            raise LocalDbError(
                "pg_cron is not installed for PostgreSQL 15. On Debian/Ubuntu run as root: "
                "apt-get update && apt-get install -y postgresql-15-cron"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        user = self._server_user()
        if user:
            shutil.chown(self.home, user, user)
            shutil.chown(self.socket_dir, user, user)
        # Every login needs its password, over TCP and the socket alike (any local OS user
        # can reach both). The superuser's comes in a file only the server's user can read.
        pwfile = self.home / "initdb.pw"
        _write_private(pwfile, password(SUPERUSER) + "\n")
        if user:
            shutil.chown(pwfile, user, user)
        try:
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D", str(self.data),
                    "-U", SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        port = int(os.environ.get("LOCALDB_PORT") or _free_port())
        settings = dict(SERVER_SETTINGS, **self.settings, port=str(port),
                        unix_socket_directories=f"'{self.socket_dir}'")
        # The tuning first, so a cluster's own settings (self.settings) override it.
        shutil.copyfile(TUNING_FILE, self.data / TUNING_FILE.name)
        conf = (f"\n# waifu-bot local cluster\ninclude '{TUNING_FILE.name}'\n"
                + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(conf)
        (self.home / "port").write_text(f"{port}\n")

    def _trusts(self) -> bool:
        try:
            hba = (self.data / "pg_hba.conf").read_text()
        except OSError:
            return False
        return any(line.split()[-1:] == ["trust"] for line in hba.splitlines() if not line.startswith("#"))

    def start(self) -> None:
        if not self.exists():
            self.init()
        _pgpass_entries(self.port, add=True)
        use_passfile()
        if self._trusts():
            print(f"warning: the local cluster {self.name} was made before logins needed passwords and still "
                  f"trusts every local user: python -m db.localdb destroy --name {self.name}, then start it "
                  "again", file=sys.stderr)
        if not self.running():
            bindir = _pg_bindir()
            self._run(
                [str(bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"]
            )
        self._ensure_database()

    def _psql(self, sql: str, database: str = "postgres") -> str:
        bindir = _pg_bindir()
        # The statement on stdin and the superuser's password in the child's environment:
        # neither shows on a command line (ps), which every local user can read.
        out = self._run(
            [str(bindir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER,
             "-d", database, "-XAtq", "-v", "ON_ERROR_STOP=1", "-f", "-"],
            input=sql, env=dict(os.environ, PGPASSWORD=password(SUPERUSER)),
        )
        return out.stdout.strip()

    def _ensure_database(self) -> None:
        for _ in range(50):
            try:
                present = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'")
                break
            except LocalDbError:
                time.sleep(0.1)
        else:
            raise LocalDbError("server started but does not accept connections" + self._log_tail())
        if present != "1":
            self._psql(f"CREATE DATABASE {DB_NAME}")
        self.set_passwords()  # roles migrations made in an earlier run
        self._wait_for_cron_scheduler()

    def _wait_for_cron_scheduler(self) -> None:
        """Wait until pg_cron's scheduler is connected to the game's database.

        Until the database exists the launcher exits and is restarted about once a
        second. Measured here: jobs scheduled by migrations that committed while it was
        restarting were not picked up until the next change to cron.job, so the restore
        tick never ran. Migrating only once it runs avoids that window.
        """
        query = (f"SELECT count(*) FROM pg_stat_activity "
                 f"WHERE backend_type = 'pg_cron launcher' AND datname = '{DB_NAME}'")
        for _ in range(100):
            if self._psql(query) == "1":
                return
            time.sleep(0.1)
        raise LocalDbError("pg_cron's scheduler did not start within 10 s" + self._log_tail())

    def stop(self) -> None:
        if self.running():
            bindir = _pg_bindir()
            self._run([str(bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def destroy(self) -> None:
        self.stop()
        try:
            _pgpass_entries(self.port, add=False)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.home, ignore_errors=True)
        link = PROJECT_ROOT / ".localdb" / self.name
        if link.is_symlink():
            link.unlink()


def cluster(name: str = "dev") -> Cluster:
    """The cluster called `name`, in `.localdb/<name>` when the server user can reach it.

    As root, a project under a folder the `postgres` user cannot enter (such as /root)
    gets its cluster in the system temp dir instead, linked from `.localdb/<name>`.
    """
    base = PROJECT_ROOT / ".localdb"
    base.mkdir(exist_ok=True)
    local = base / name
    if local.is_symlink():
        return Cluster(name, local.resolve())
    if not _is_root() or local.exists() or _can_enter(SUPERUSER, base):
        return Cluster(name, local)
    digest = hashlib.sha1(str(PROJECT_ROOT).encode()).hexdigest()[:10]
    home = Path(tempfile.gettempdir()) / f"waifu-localdb-{digest}" / name
    home.parent.mkdir(parents=True, exist_ok=True)
    home.parent.chmod(0o755)
    local.symlink_to(home)
    return Cluster(name, home)


def partition_count(name: str) -> int:
    """How many partitions the set `name` has (0: a plain single database)."""
    try:
        return int((cluster(name).home / "partitions").read_text())
    except (OSError, ValueError):
        return 0


def partition_set(name: str, partitions: int | None = None) -> tuple[Cluster, list[Cluster]]:
    """The proxy cluster `name` and its partition clusters `name-p0`, `name-p1`, ..."""
    count = partition_count(name) if partitions is None else partitions
    proxy = cluster(name)
    if count:
        proxy.settings = dict(PROXY_SETTINGS)
    parts = [cluster(f"{name}-p{k}") for k in range(count)]
    for part in parts:
        part.settings = dict(PARTITION_SETTINGS)
    return proxy, parts


def start_partition_set(name: str, partitions: int) -> tuple[Cluster, list[Cluster]]:
    if partitions < 1 or partitions & (partitions - 1):
        raise LocalDbError("--partitions must be a power of two (PL/Proxy maps hash & (N-1))")
    if (existing := partition_count(name)) and existing != partitions:
        raise LocalDbError(f"{name} already has {existing} partitions (destroy it first)")
    proxy, parts = partition_set(name, partitions)
    for c in [proxy, *parts]:
        c.start()
    (proxy.home / "partitions").write_text(f"{partitions}\n")
    return proxy, parts


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m db.localdb",
        description="Throwaway local PostgreSQL 15 + pg_cron for development and tests.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "url", "env", "destroy"])
    parser.add_argument("--name", default="dev", help="cluster name (default: dev)")
    parser.add_argument("--partitions", type=int, default=0,
                        help="start: a proxy database and N partitions (python -m db.partitions migrate sets them up)")
    parser.add_argument("--partition", type=int, default=None, help="url/env: partition K instead of the proxy")
    args = parser.parse_args(argv)
    proxy, parts = partition_set(args.name)
    c = proxy
    try:
        if args.partition is not None:
            if not 0 <= args.partition < len(parts):
                raise LocalDbError(f"{args.name} has {len(parts)} partition(s)")
            c = parts[args.partition]
        if args.command == "start" and args.partitions:
            proxy, parts = start_partition_set(args.name, args.partitions)
            for k, part in enumerate(parts):
                print(f"partition {k}: {part.url()}  (data: {part.home})")
            print(f"proxy: {proxy.url()}  (next: python -m db.partitions migrate --name {args.name})")
        elif args.command == "start":
            c.start()
            print(f"PostgreSQL running: {c.url()}  (data: {c.home}, user {getpass.getuser()})")
        elif args.command == "stop":
            for part in parts if c is proxy else []:
                part.stop()
            c.stop()
            print("stopped")
        elif args.command == "status":
            print("running" if c.running() else ("stopped" if c.exists() else "not created"))
            return 0 if c.running() else 3
        elif args.command == "url":
            print(c.url())
        elif args.command == "env":
            # No password in the URLs: they are in the password file libpq and asyncpg read.
            print(f"export PGPASSFILE={use_passfile()}")
            print(f"export MIGRATION_DATABASE_URL={c.url()}")
            print(f"export DATABASE_URL={c.url(user=BOT_ROLE)}")
        elif args.command == "destroy":
            for part in parts if c is proxy else []:
                part.destroy()
            c.destroy()
            print("destroyed")
    except LocalDbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
