"""Settings from the environment or `.env` (see .env.example).

`load_settings()` is the way in: a missing or malformed setting becomes a `ConfigError`
whose message says what to set (`python -m bot` prints it and exits with EX_CONFIG).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# sysexits.h EX_CONFIG: a configuration error, which restarting never fixes.
EX_CONFIG = 78

NO_TOKEN = (
    "BOT_TOKEN is not set. Create a bot with @BotFather in Telegram (send it /newbot), "
    "then put the token it gives you in .env (BOT_TOKEN=123456:ABC...) or in the environment."
)
BAD_TOKEN = (
    "BOT_TOKEN does not look like a bot token (expected digits, a colon, then letters, "
    "e.g. 123456:ABC-DEF...). @BotFather in Telegram shows it (/mybots > API Token)."
)
# What aiogram's validate_token accepts: digits, a colon, then anything without spaces.
_TOKEN_SHAPE = re.compile(r"\d+:\S+")


class Settings(BaseSettings):
    # Empty values count as unset (docker-compose passes `VAR=` for what .env leaves out).
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      env_ignore_empty=True)

    # Required and checked here, once: whatever holds a Settings has a usable token.
    bot_token: SecretStr
    # The bot's role (waifu_bot). Unset: the local cluster from `python -m db.localdb`,
    # started and migrated on start-up.
    database_url: str | None = None
    # Bot API base URL: Telegram's by default, or a self-hosted Bot API server.
    telegram_api_url: str | None = None
    # Set: receive updates by webhook at this public HTTPS URL; unset: long polling.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # Public HTTPS URL of the Mini App page (…/webapp/); unset hides the web app button.
    webapp_url: str | None = None
    # The bot's own HTTP server: webhook, Mini App page and API, /healthz.
    web_host: str = "0.0.0.0"
    web_port: int = 8080
    # Mini App initData older than this (seconds) is refused.
    webapp_auth_max_age: int = 86400
    # The largest Mini App request body accepted (bytes; the API's bodies are empty or
    # tiny). The rate limits are shared by every process and kept in the database
    # (ops.rate_limits, ops.set_rate_limit).
    webapp_max_body_bytes: int = 16384
    # Proxies in front of the bot that append the client's address to X-Forwarded-For
    # (0: the peer's address is the client's). Behind one proxy set 1, or every player
    # shares the proxy's address budget.
    webapp_trusted_proxies: int = 0
    db_pool_min_size: int = 2
    db_pool_max_size: int = 10
    # The notification sender (bot/notifier.py). Telegram allows ~30 messages/s overall
    # and ~1/s per chat; the rate is per bot process (two processes: set 12.5 each).
    notify_enabled: bool = True
    notify_rate: float = 25.0
    notify_chat_interval: float = 1.0
    notify_batch_size: int = 50
    # A claimed row not finished within the lease (its sender died) is sent again.
    notify_lease_seconds: int = 60
    # Polling fallback when no NOTIFY arrives (the LISTEN connection is down).
    notify_poll_seconds: float = 10.0
    log_level: str = "INFO"
    # Prometheus metrics (bot/metrics.py) on a port of their own, never the public web
    # port; unset or 0: off. Keep the host private (loopback, or a network only the
    # scraper reaches): the figures are no secret, but nobody else needs them.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            raise ValueError(NO_TOKEN)
        if not _TOKEN_SHAPE.fullmatch(token):
            raise ValueError(BAD_TOKEN)
        return SecretStr(token)


    @model_validator(mode="after")
    def _metrics_apart(self) -> Settings:
        if self.metrics_port and self.metrics_port == self.web_port:
            raise ValueError("METRICS_PORT must differ from WEB_PORT: the metrics are never served on the public port")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError("METRICS_PORT must be a TCP port (1-65535), or 0/unset for no metrics")
        return self


class ConfigError(Exception):
    """A setting is missing or malformed; the message says what to set."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, `overrides` on top; ConfigError if invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            if name == "BOT_TOKEN":
                problems.append(NO_TOKEN if error["type"] == "missing" else str(error["ctx"]["error"]))
            else:
                problems.append(f"{name}: {error['msg']}")  # not the value: it may be a secret
        raise ConfigError("\n".join(problems)) from None
