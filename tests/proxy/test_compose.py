"""docker-compose.partitions.yml read as a file (no Docker engine here): the layout the
partitions profile starts is the one db.partitions expects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.partitions.yml").read_text())


def env(service: str) -> dict[str, str]:
    return dict(e.split("=", 1) for e in COMPOSE["services"][service]["environment"])


def test_partitions_and_proxy_start_only_with_the_profile() -> None:
    services = COMPOSE["services"]
    parts = sorted(s for s in services if re.fullmatch(r"part\d+", s))
    assert parts == [f"part{k}" for k in range(len(parts))] and len(parts) & (len(parts) - 1) == 0
    for name in [*parts, "proxy", "partitions-migrate", "notify-relay"]:
        assert services[name]["profiles"] == ["partitions"], name
    for name in parts:
        assert services[name]["build"] == "./db"  # the game image: PostgreSQL + pg_cron
    assert services["proxy"]["build"] == {"context": "./db", "dockerfile": "proxy/Dockerfile"}  # db/'s entrypoint
    assert "postgresql-15-plproxy" in (ROOT / "db/proxy/Dockerfile").read_text()


def test_migrate_lists_every_partition_in_order_and_the_bot_uses_the_proxy() -> None:
    command = " ".join(COMPOSE["services"]["partitions-migrate"]["command"])
    listed = re.findall(r'--partition "\$\$(PART\d+)_URL"', command)
    parts = sorted(s for s in COMPOSE["services"] if re.fullmatch(r"part\d+", s))
    assert listed == [p.upper() for p in parts]
    variables = env("partitions-migrate")
    for p in parts:
        assert f"@{p}:5432/waifu" in variables[f"{p.upper()}_URL"]
    assert "@proxy:5432/waifu" in variables["PROXY_URL"]
    assert "WAIFU_PROXY_PASSWORD" in variables
    assert "@proxy:5432/waifu" in env("bot")["DATABASE_URL"]
    assert env("bot")["DATABASE_URL"].startswith("postgresql://waifu_bot:")
    assert "partitions-migrate" in COMPOSE["services"]["bot"]["depends_on"]


def test_the_notify_relay_runs_against_the_proxy() -> None:
    relay = COMPOSE["services"]["notify-relay"]
    assert "relay-notify" in " ".join(relay["command"])
    assert "@proxy:5432/waifu" in env("notify-relay")["PROXY_URL"]
    assert relay["restart"] == "unless-stopped"
