"""The local cluster (db/localdb.py) as an attacker on the same machine meets it: every
login needs its password (scram-sha-256, over TCP and the socket), the passwords are
generated and kept in files only their owner reads, and no command prints them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from db import localdb

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster() -> Iterator[localdb.Cluster]:
    c = localdb.cluster(f"auth-{os.getpid()}")
    c.destroy()
    c.start()
    # What migration 0006 makes of pg_cron's role: LOGIN (background workers need it), no password.
    c._psql("CREATE ROLE waifu_cron LOGIN")  # the cluster's own superuser session
    try:
        yield c
    finally:
        c.destroy()


def psql(cluster: localdb.Cluster, user: str, host: str, *, as_os_user: str | None = None,
         password: str | None = None) -> subprocess.CompletedProcess[str]:
    """psql as `user`, with no password file and no password unless given."""
    env = {"PATH": os.environ["PATH"], "PGCONNECT_TIMEOUT": "5"}
    if password is not None:
        env["PGPASSWORD"] = password
    else:
        env["PGPASSFILE"] = "/nonexistent"
    cmd = ["psql", "-h", host, "-p", str(cluster.port), "-U", user, "-d", "waifu", "-XAtc", "SELECT current_user"]
    if as_os_user:
        cmd = ["runuser", "-u", as_os_user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)


def hosts(cluster: localdb.Cluster) -> list[str]:
    return ["127.0.0.1", str(cluster.socket_dir)]


@pytest.mark.parametrize("user", [localdb.SUPERUSER, "waifu_cron", localdb.BOT_ROLE])
def test_no_login_without_the_password(cluster: localdb.Cluster, user: str) -> None:
    for host in hosts(cluster):
        out = psql(cluster, user, host)
        assert out.returncode != 0 and "no password supplied" in out.stderr, (host, out.stderr)
        out = psql(cluster, user, host, password="wrong-password")
        assert out.returncode != 0 and "password authentication failed" in out.stderr, (host, out.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="trying another OS user needs root (CI runs as root)")
@pytest.mark.parametrize("user", [localdb.SUPERUSER, "waifu_cron"])
def test_another_local_user_cannot_log_in(cluster: localdb.Cluster, user: str) -> None:
    for host in hosts(cluster):
        out = psql(cluster, user, host, as_os_user="nobody")
        assert out.returncode != 0 and "no password supplied" in out.stderr, (host, out.stderr)
    # nor read the passwords
    for path in (localdb.PASSWORDS_FILE, localdb.PGPASS_FILE):
        read = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(path)], capture_output=True, text=True)
        assert read.returncode != 0 and read.stdout == ""


def test_the_right_password_logs_in_and_the_files_are_private(cluster: localdb.Cluster) -> None:
    out = psql(cluster, localdb.SUPERUSER, "127.0.0.1", password=localdb.password(localdb.SUPERUSER))
    assert out.returncode == 0 and out.stdout.strip() == "postgres", out.stderr
    # The URLs carry no password; libpq finds it in the password file (PGPASSFILE).
    assert "@" in cluster.url() and ":" not in cluster.url().split("//")[1].split("@")[0]
    with psycopg2.connect(cluster.url()) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolname FROM pg_authid WHERE rolpassword IS NOT NULL ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["postgres"]  # waifu_cron: none
        cur.execute("SHOW password_encryption")
        assert cur.fetchone() == ("scram-sha-256",)
    conn.close()
    for path in (localdb.PASSWORDS_FILE, localdb.PGPASS_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    hba = (cluster.data / "pg_hba.conf").read_text()
    assert "trust" not in "\n".join(line for line in hba.splitlines() if not line.startswith("#"))


def test_no_command_prints_a_password(cluster: localdb.Cluster) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    printed = ""
    for command in (["url"], ["env"], ["status"], ["start"]):
        out = subprocess.run([sys.executable, "-m", "db.localdb", *command, "--name", cluster.name],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        printed += out.stdout + out.stderr
    assert f"PGPASSFILE={localdb.PGPASS_FILE}" in printed
    for secret in localdb.passwords().values():
        assert secret not in printed


def test_a_cluster_made_with_trust_is_pointed_out(cluster: localdb.Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    hba = cluster.data / "pg_hba.conf"
    original = hba.read_text()
    try:
        hba.write_text(original + "host all all 127.0.0.1/32 trust\n")  # what --auth=trust wrote
        cluster.start()
        assert "still trusts every local user" in capsys.readouterr().err
    finally:
        hba.write_text(original)
    cluster.start()
    assert "trusts" not in capsys.readouterr().err
