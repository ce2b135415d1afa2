"""bot.webapp.auth without the server: the checks, and the cache of verified initData."""

from __future__ import annotations

import time

import pytest

from bot.webapp.auth import (
    ALLOWED_CLOCK_SKEW_SECONDS,
    Authenticator,
    AuthExpired,
    AuthInvalid,
    AuthMalformed,
    AuthMissing,
    validate_init_data,
)
from tests.webapp.initdata import TEST_TOKEN, init_data

DAY = 86400


def test_valid_data_gives_the_user_from_the_signed_fields():
    now = time.time()
    identity = validate_init_data(init_data(5, "Eve", auth_date=int(now)), TEST_TOKEN, max_age_seconds=DAY, now=now)
    assert (identity.telegram_id, identity.user.first_name, identity.auth_date) == (5, "Eve", int(now))


def test_age_limits_at_the_edges():
    signed_at = 1_700_000_000
    data = init_data(5, auth_date=signed_at)
    assert validate_init_data(data, TEST_TOKEN, max_age_seconds=DAY, now=signed_at + DAY).auth_date == signed_at
    with pytest.raises(AuthExpired):
        validate_init_data(data, TEST_TOKEN, max_age_seconds=DAY, now=signed_at + DAY + 1)
    # Telegram's clock a little ahead of ours is fine; far ahead is not.
    validate_init_data(data, TEST_TOKEN, max_age_seconds=DAY, now=signed_at - ALLOWED_CLOCK_SKEW_SECONDS)
    with pytest.raises(AuthInvalid):
        validate_init_data(data, TEST_TOKEN, max_age_seconds=DAY, now=signed_at - ALLOWED_CLOCK_SKEW_SECONDS - 1)


def test_cache_keeps_checking_age_and_never_accepts_altered_data():
    signed_at = 1_700_000_000
    auth = Authenticator(TEST_TOKEN, max_age_seconds=100, cache_size=2)
    header = f"tma {init_data(5, auth_date=signed_at)}"
    assert auth(header, now=signed_at + 1).telegram_id == 5
    assert auth(header, now=signed_at + 100).telegram_id == 5  # a hit, still young enough
    with pytest.raises(AuthExpired):
        auth(header, now=signed_at + 101)  # a hit, too old now
    assert header.removeprefix("tma ") not in auth._verified  # forgotten
    with pytest.raises(AuthExpired):
        auth(header, now=signed_at + 102)  # ...so checked in full again
    fresh = f"tma {init_data(5, auth_date=signed_at + 1000)}"
    assert auth(fresh, now=signed_at + 1000).telegram_id == 5
    with pytest.raises(AuthInvalid):
        auth(fresh[:-1] + ("0" if fresh[-1] != "0" else "1"), now=signed_at + 1000)
    # Bounded: old entries make way.
    for user in range(10, 20):
        auth(f"tma {init_data(user, auth_date=signed_at + 1000)}", now=signed_at + 1000)
    assert len(auth._verified) == 2


@pytest.mark.parametrize("header, error", [
    (None, AuthMissing), ("", AuthMissing), ("tma", AuthMalformed), ("Basic abc", AuthMalformed),
    ("tma a=b", AuthInvalid),
])
def test_header_shapes(header, error):
    with pytest.raises(error):
        Authenticator(TEST_TOKEN, DAY)(header)

