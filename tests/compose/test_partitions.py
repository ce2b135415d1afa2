"""docker-compose.partitions.yml end to end: the PL/Proxy database in front of two game
partitions comes up, and a player's /start and adoption go through the proxy to a
partition. A throwaway project like test_stack.py's, removed with `down -v`."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator

import pytest

from tests.compose.test_stack import DEV_FILE, PLAYER, TOKEN, Stack, free_port, health, wait_for


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ports = {"web": free_port(), "db": free_port(), "proxy": free_port(), "telegram": free_port()}
    env_file = tmp_path_factory.mktemp("partitions") / "env"
    env_file.write_text("\n".join([
        f"POSTGRES_PASSWORD={secrets.token_hex(12)}",
        f"BOT_DB_PASSWORD={secrets.token_hex(12)}",
        f"WAIFU_PROXY_PASSWORD={secrets.token_hex(12)}",
        f"BOT_TOKEN={TOKEN}",
        "TELEGRAM_API_URL=http://telegram:8081",
        f"WEB_PORT={ports['web']}",
        f"DB_PORT={ports['db']}",
        f"PROXY_PORT={ports['proxy']}",
        f"TELEGRAM_STANDIN_PORT={ports['telegram']}",
        "NOTIFY_ENABLED=false",
    ]) + "\n")
    s = Stack(f"waifuparts{os.getpid()}", ["docker-compose.yml", "docker-compose.partitions.yml", DEV_FILE],
              env_file, ports, profile="partitions")
    try:
        started = time.monotonic()
        s.compose("up", "-d", "--no-build", timeout=600)
        wait_for(lambda: health(s, "bot") == "healthy", what="the bot's container to be healthy", timeout=240,
                 every=1)
        print(f"\npartitions up to healthy: {time.monotonic() - started:.1f} s")
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)


def test_partitions_migrate_exits_0_and_the_bot_uses_the_proxy(partitioned: Stack) -> None:
    [state] = [c["State"] for c in partitioned.containers("partitions-migrate")]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    [bot] = partitioned.containers("bot")
    assert next(e for e in bot["Config"]["Env"] if e.startswith("DATABASE_URL=")).endswith("@proxy:5432/waifu")


def test_start_and_adopt_through_the_proxy(partitioned: Stack) -> None:
    welcome = partitioned.send("/start")
    assert welcome["text"].startswith("Welcome, Ann!")
    menu, _ = partitioned.press("Sakura")
    assert "Sakura is now your companion" in menu["text"]
    counts = [int(partitioned.psql(f"SELECT count(*) FROM game.waifus WHERE owner_id = {PLAYER}", service=part))
              for part in ("part0", "part1")]
    assert sorted(counts) == [0, 1]  # on exactly one partition
    assert partitioned.psql(f"SELECT count(*) FROM game.waifus WHERE owner_id = {PLAYER}") == "0"  # not the base db
