"""The server runs with db/postgresql.tuning.conf (the local cluster and the Docker image
both include that one file) and with PostgreSQL's durability defaults."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

TUNING_FILE = ROOT / "db" / "postgresql.tuning.conf"


def tuning() -> dict[str, str]:
    """name -> value of every setting line in the tuning file."""
    out = {}
    for line in TUNING_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip().strip("'")
    return out


def test_every_setting_is_explained_in_one_comment_line() -> None:
    lines = TUNING_FILE.read_text().splitlines()
    settings = [i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    assert settings, "no settings"
    for i in settings:
        assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 20, f"explain {lines[i]!r} on the line above"
    assert not {"fsync", "synchronous_commit", "full_page_writes"} & set(tuning()), "durability stays default"


def test_the_docker_image_includes_the_same_file() -> None:
    dockerfile = (ROOT / "db" / "Dockerfile").read_text()
    assert re.search(r"^COPY postgresql\.tuning\.conf (\S+)$", dockerfile, re.M)
    target = re.search(r"^COPY postgresql\.tuning\.conf (\S+)$", dockerfile, re.M).group(1)  # type: ignore[union-attr]
    assert f"include '{target}'" in dockerfile
    for name in tuning():
        assert f"{name}=" not in dockerfile, f"{name} is set in the tuning file, not on the command line"


async def test_the_server_runs_with_the_tuning_and_default_durability(admin, database) -> None:
    durability = await admin.fetch(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')")
    assert {r["name"]: r["setting"] for r in durability} == {
        "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    if database.source == "TEST_DATABASE_URL" or database.partition_urls:
        pytest.skip("a server configured elsewhere, or a proxy sized on purpose (db.localdb PROXY_SETTINGS)")
    for name, value in tuning().items():
        assert await admin.fetchval("SELECT current_setting($1)", name) == value, name
