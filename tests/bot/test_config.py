"""Settings: the bot token is required and checked once, in bot/config.py; whatever
holds a Settings has a usable token. A configuration error is one clear message and
exit code 78 (EX_CONFIG), which docker-compose's one-shot check stops on for good."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import EX_CONFIG, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("token", [None, "", "   "])
def test_a_missing_or_empty_token_says_where_to_get_one(token):
    values = {} if token is None else {"bot_token": token}
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, **values)
    assert "BOT_TOKEN is not set" in str(info.value) and "@BotFather" in str(info.value)


@pytest.mark.parametrize("token", ["abc", "123456", "12:ab cd", ":abc", "12:"])
def test_a_malformed_token_is_refused(token):
    with pytest.raises(ConfigError, match="BOT_TOKEN does not look like a bot token"):
        load_settings(_env_file=None, bot_token=token)


def test_a_token_is_stripped_and_empty_values_count_as_unset(monkeypatch):
    monkeypatch.setenv("WEB_PORT", "")  # what docker-compose passes for a variable .env leaves out
    monkeypatch.setenv("WEBHOOK_URL", "")
    settings = load_settings(_env_file=None, bot_token=" 123456:ABC-def_1 ")
    assert settings.bot_token.get_secret_value() == "123456:ABC-def_1"
    assert settings.web_port == 8080 and settings.webhook_url is None


def test_other_errors_name_the_variable_but_not_its_value(monkeypatch):
    monkeypatch.setenv("WEB_PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, bot_token="123456:ABC")
    assert "WEB_PORT" in str(info.value) and "eighty" not in str(info.value)


@pytest.mark.parametrize(("token", "code", "said"), [
    ("", EX_CONFIG, "BOT_TOKEN is not set"),
    ("123456:ABC", 0, "configuration OK"),
])
def test_check_config(tmp_path, token, code, said):
    out = subprocess.run([sys.executable, "-m", "bot", "--check-config"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60,
                         env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "BOT_TOKEN": token})
    assert out.returncode == code and said in out.stderr
