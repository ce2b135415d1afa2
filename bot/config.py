"""Settings from the environment or `.env` (see .env.example)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
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
    db_pool_min_size: int = 2
    db_pool_max_size: int = 10
    log_level: str = "INFO"
