"""Telegram Mini App authentication: `Authorization: tma <initData>`.

The signature is checked with aiogram's `safe_parse_webapp_init_data` (HMAC-SHA256 with
a key derived from the bot token). That helper does not look at `auth_date`, so the age
check is here: signed data is a bearer credential, and without a limit a leaked copy
would work forever. The user id is taken only from data that passed both checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from aiogram.utils.web_app import WebAppUser, check_webapp_signature, safe_parse_webapp_init_data

AUTH_SCHEME = "tma"
# initData is a query string of well under 2 KB; anything far larger is not ours.
MAX_INIT_DATA_LENGTH = 4096
# Clocks of Telegram's servers and ours may disagree a little.
ALLOWED_CLOCK_SKEW_SECONDS = 60


class AuthError(Exception):
    """The request is not authenticated; answered 401 (503 when the server lacks a token)."""

    code: ClassVar[str] = "unauthorized"
    http_status: ClassVar[int] = 401

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthMissing(AuthError):
    code = "auth_missing"


class AuthMalformed(AuthError):
    code = "auth_malformed"


class AuthInvalid(AuthError):
    code = "auth_invalid"


class AuthExpired(AuthError):
    code = "auth_expired"


@dataclass(frozen=True)
class WebAppIdentity:
    user: WebAppUser
    auth_date: int  # epoch seconds

    @property
    def telegram_id(self) -> int:
        return self.user.id


def init_data_from_header(header: str | None) -> str:
    """The raw initData of an `Authorization: tma <initData>` header."""
    if not header:
        raise AuthMissing("Authorization header is missing: send `Authorization: tma <initData>`.")
    scheme, _, init_data = header.strip().partition(" ")
    if scheme.lower() != AUTH_SCHEME or not init_data.strip():
        raise AuthMalformed("Authorization header must be `tma <initData>`.")
    init_data = init_data.strip()
    if len(init_data) > MAX_INIT_DATA_LENGTH:
        raise AuthMalformed("initData is too long.")
    return init_data


def validate_init_data(init_data: str, bot_token: str, *, max_age_seconds: int,
                       now: float | None = None) -> WebAppIdentity:
    """Check signature, age and user of raw initData; raise an AuthError otherwise."""
    try:
        signed = check_webapp_signature(bot_token, init_data)
    except (ValueError, TypeError):
        signed = False
    if not signed:
        raise AuthInvalid("initData signature is not valid for this bot.")
    try:
        parsed = safe_parse_webapp_init_data(bot_token, init_data)
        auth_date = int(parsed.auth_date.timestamp())
    except (ValueError, TypeError, OverflowError):
        # Signed but unusable: no auth_date, a user that is not a JSON object...
        # (pydantic's ValidationError and json's JSONDecodeError are ValueErrors).
        raise AuthMalformed("initData could not be parsed (auth_date and user are required).") from None

    now = time.time() if now is None else now
    if auth_date > now + ALLOWED_CLOCK_SKEW_SECONDS:
        raise AuthInvalid("initData auth_date is in the future.")
    if now - auth_date > max_age_seconds:
        raise AuthExpired("initData is too old: close the app and open it again from the bot.")
    if parsed.user is None or parsed.user.id <= 0:
        raise AuthMalformed("initData carries no user.")
    return WebAppIdentity(parsed.user, auth_date)


class Authenticator:
    """Checks `Authorization: tma <initData>` headers for one bot token.

    A page sends the same initData with every call for as long as it is open, so data
    that passed the signature check is remembered (keyed by the exact raw string, hash
    included: anything altered is a miss and is checked in full). The age is checked
    on every request, hit or miss. Bounded: the oldest entries go first.
    """

    def __init__(self, bot_token: str, max_age_seconds: int, cache_size: int = 10_000) -> None:
        self._token = bot_token
        self._max_age = max_age_seconds
        self._cache_size = cache_size
        self._verified: dict[str, WebAppIdentity] = {}

    def __call__(self, header: str | None, now: float | None = None) -> WebAppIdentity:
        init_data = init_data_from_header(header)
        now = time.time() if now is None else now
        identity = self._verified.get(init_data)
        if identity is None:
            identity = validate_init_data(init_data, self._token, max_age_seconds=self._max_age, now=now)
            if len(self._verified) >= self._cache_size:
                del self._verified[next(iter(self._verified))]
            self._verified[init_data] = identity
        elif now - identity.auth_date > self._max_age:
            del self._verified[init_data]
            raise AuthExpired("initData is too old: close the app and open it again from the bot.")
        return identity

