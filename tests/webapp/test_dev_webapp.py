"""`make webapp` (bot/dev/webapp.py): initData signed for the Telegram stand-in, in the
URL where Telegram puts it. (The page it serves, opened in Chromium: test_browser.py.)"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from bot.dev.webapp import page_url, sign_init_data
from bot.webapp.auth import AuthInvalid, validate_init_data


def test_the_signed_init_data_is_what_the_server_accepts() -> None:
    token = "123456:TEST-token_for-the-stand-in"
    init = sign_init_data(token, {"id": 42, "first_name": "Вера", "language_code": "ru"})
    identity = validate_init_data(init, token, max_age_seconds=60)
    assert identity.telegram_id == 42
    # Telegram's place for it: the fragment, which the browser never sends to a server.
    url = page_url("http://127.0.0.1:8080", init)
    parts = urlsplit(url)
    assert (parts.path, parts.query) == ("/webapp/", "")
    assert parse_qs(parts.fragment)["tgWebAppData"] == [init]
    tampered = init.replace("%D0%92", "%D0%93")  # another first name, the same hash
    assert tampered != init
    with pytest.raises(AuthInvalid):
        validate_init_data(tampered, token, max_age_seconds=60)
    with pytest.raises(AuthInvalid):  # another bot's token
        validate_init_data(init, "654321:another-bot", max_age_seconds=60)
