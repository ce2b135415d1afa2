"""docker-compose.yml and the images, read as files: each service gets only its own
settings, the bot's are exactly what bot/config.py reads, a configuration error stops for
good, ports bind the loopback by default, and the image installs the pinned versions.
tests/compose runs the stack for real (make test-compose)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def env_names(service: str) -> set[str]:
    environment = SERVICES[service].get("environment", [])
    assert isinstance(environment, list), f"{service}: environment as a list of NAME=value"
    return {entry.split("=", 1)[0] for entry in environment}


def test_no_service_gets_the_whole_env_file():
    assert not [name for name, service in SERVICES.items() if "env_file" in service]


def test_the_bot_gets_exactly_its_own_settings():
    assert env_names("bot") == {name.upper() for name in Settings.model_fields}
    assert env_names("check-config") == env_names("bot")  # it checks what the bot will get


def test_secrets_go_only_where_they_are_used():
    for service in ("bot", "check-config"):
        assert not {"POSTGRES_PASSWORD", "MIGRATION_DATABASE_URL", "BOT_DB_PASSWORD"} & env_names(service)
        assert "POSTGRES_PASSWORD" not in str(SERVICES[service])
    assert env_names("migrate") == {"MIGRATION_DATABASE_URL", "BOT_DB_PASSWORD"}
    assert env_names("db") == {"POSTGRES_PASSWORD", "POSTGRES_DB"}


def test_a_configuration_error_stops_for_good():
    check = SERVICES["check-config"]
    assert check["command"] == ["python", "-m", "bot", "--check-config"]
    assert check["restart"] == "no"
    assert SERVICES["bot"]["depends_on"]["check-config"] == {"condition": "service_completed_successfully"}
    assert SERVICES["bot"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_every_bot_setting_is_described_in_env_example():
    example = (ROOT / ".env.example").read_text()
    missing = [name for name in sorted(env_names("bot") - {"DATABASE_URL", "WEB_HOST", "WEB_PORT"})
               if f"{name}=" not in example]
    assert not missing, f"describe these in .env.example: {missing}"


def test_the_image_installs_the_pinned_versions():
    dockerfile = (ROOT / "bot" / "Dockerfile").read_text()
    assert "COPY pyproject.toml requirements.lock .localdb/wheelhouse* ./wheels/" in dockerfile
    assert "pip install --quiet -c wheels/requirements.lock -r requirements.txt" in dockerfile
    assert "bot/dev" in (ROOT / ".dockerignore").read_text()  # the Telegram stand-in stays out of the image


COMPOSE_FILES = ["docker-compose.yml", "docker-compose.partitions.yml", "tests/compose/docker-compose.dev.yml"]


def test_compose_1_29_can_read_the_files() -> None:
    for name in COMPOSE_FILES:
        data = yaml.safe_load((ROOT / name).read_text())
        assert "name" not in data, f"{name}: Compose 1.29 refuses a top-level name (COMPOSE_PROJECT_NAME in .env)"
        assert "version" not in data  # obsolete in v2, optional in 1.29
    assert "\nCOMPOSE_PROJECT_NAME=waifu-bot\n" in (ROOT / ".env.example").read_text()  # volume names kept


def test_every_published_port_binds_the_loopback_unless_env_says_otherwise() -> None:
    for name in COMPOSE_FILES:
        services = yaml.safe_load((ROOT / name).read_text())["services"]
        for service, spec in services.items():
            for port in spec.get("ports", []):
                assert port.startswith(("${WEB_BIND_ADDRESS:-127.0.0.1}:", "${DB_BIND_ADDRESS:-127.0.0.1}:",
                                        "127.0.0.1:")), f"{name} {service}: {port}"


def test_the_telegram_stand_in_is_only_in_the_dev_override() -> None:
    assert "telegram" not in SERVICES and "bot/dev" not in (ROOT / "docker-compose.yml").read_text()
    dev = yaml.safe_load((ROOT / "tests/compose/docker-compose.dev.yml").read_text())["services"]
    assert set(dev) == {"telegram", "bot"}


def test_no_wheelhouse_or_registry_frontend_in_the_images() -> None:
    for dockerfile in ["bot/Dockerfile", "db/Dockerfile", "db/proxy/Dockerfile"]:
        text = (ROOT / dockerfile).read_text()
        assert not text.lstrip().startswith("# syntax="), dockerfile  # it would pull a frontend image
        assert "FROM debian:bookworm-slim" in text
    bot = (ROOT / "bot" / "Dockerfile").read_text()
    final_stage = bot.rsplit("\nFROM ", 1)[1]
    assert "COPY --from=build /opt/venv /opt/venv" in final_stage
    assert "wheel" not in final_stage.replace("wheelhouse", "").lower() and "ARG " not in final_stage


def engine_script(*args: str, env: dict[str, str], script: Path | None = None,
                  user: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(script or ROOT / ".ci" / "docker-engine"), *args]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_an_engine_that_does_not_answer_is_named_not_replaced(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock", "WAIFU_DOCKER_DIR": str(tmp_path)}
    done = engine_script("start", env=env)
    assert done.returncode == 1 and done.stdout == ""  # no DOCKER_HOST line to eval
    assert f"DOCKER_HOST=unix://{tmp_path}/nothing.sock does not answer" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "dockerd.pid").exists()


def test_no_engine_and_not_root_says_what_to_install() -> None:
    if os.geteuid() != 0:
        pytest.skip("plays a user without root through runuser: needs root (CI runs as root)")
    # A copy the unprivileged user can reach (the checkout and pytest's tmp dirs may be 0700).
    home = Path(tempfile.mkdtemp(prefix="waifu-engine-"))
    try:
        home.chmod(0o755)
        script = home / "docker-engine"
        shutil.copy(ROOT / ".ci" / "docker-engine", script)
        script.chmod(0o755)
        (home / "engine").mkdir(mode=0o777)
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"} | {"WAIFU_DOCKER_DIR": str(home / "engine")}
        done = engine_script("start", env=env, script=script, user="nobody")
    finally:
        shutil.rmtree(home)
    assert done.returncode == 1 and done.stdout == ""
    assert "starting one needs root" in done.stderr and "apt-get install -y docker.io docker-compose" in done.stderr
