"""Telegram Mini App initData, signed the way Telegram signs it (for tests and benchmarks).

secret = HMAC_SHA256(key="WebAppData", msg=bot_token)
hash   = hex(HMAC_SHA256(key=secret, msg=data_check_string)), where data_check_string is
         every other field as `key=value`, sorted by key, joined with newlines.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

TEST_TOKEN = "123456:TEST-token-for-the-web-app"


def sign_fields(fields: dict[str, str], token: str) -> str:
    data_check_string = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    digest = hmac.new(secret, data_check_string.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest})


def user_fields(telegram_id: int, first_name: str = "Ann", *, auth_date: int | str | None = "now",
                **extra: Any) -> dict[str, str]:
    """The fields Telegram sends for a user opening the app; auth_date=None leaves it out."""
    user = {"id": telegram_id, "first_name": first_name, "language_code": "en", "allows_write_to_pm": True}
    fields = {"query_id": f"AAF{telegram_id}", "user": json.dumps(user, separators=(",", ":"))}
    if auth_date == "now":
        auth_date = int(time.time())
    if auth_date is not None:
        fields["auth_date"] = str(auth_date)
    fields.update({k: str(v) for k, v in extra.items()})
    return fields


def init_data(telegram_id: int, first_name: str = "Ann", *, token: str = TEST_TOKEN,
              auth_date: int | str | None = "now") -> str:
    return sign_fields(user_fields(telegram_id, first_name, auth_date=auth_date), token)


def auth_header(telegram_id: int, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"tma {init_data(telegram_id, **kwargs)}"}
