"""The daily reward (api.claim_daily) and the settings (api.player_settings,
api.set_player_setting): rules, every error code, idempotency, the streak, the day
boundary in the player's timezone."""

from __future__ import annotations

import asyncio
import itertools
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.core.conftest import T0, adopt, at, refused, register, set_stored, stored, ts

REWARDS = {1: (20, 10, 2, 1), 2: (30, 20, 3, 2), 3: (40, 30, 4, 3), 4: (50, 45, 5, 4), 5: (60, 60, 6, 5),
           6: (80, 80, 8, 6), 7: (100, 120, 10, 8)}


async def claim(conn: asyncpg.Connection, telegram_id: int, key: str, now: datetime) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.claim_daily($1, $2, $3)", telegram_id, key, now)


async def settings(conn: asyncpg.Connection, telegram_id: int, now: datetime = T0) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.player_settings($1, $2)", telegram_id, now)


async def set_setting(conn: asyncpg.Connection, telegram_id: int, name: str | None, value: str | None,
                      now: datetime = T0) -> dict[str, Any]:
    return await conn.fetchval("SELECT api.set_player_setting($1, $2, $3, $4)", telegram_id, name, value, now)


def reward(day: int) -> dict[str, int]:
    energy, xp, mood, loyalty = REWARDS[min(day, 7)]
    # coins since 0013: 10 on day 1, +5 a day, 40 from day 7
    return {"energy": energy, "xp": xp, "mood": mood, "loyalty": loyalty, "coins": 10 + 5 * (min(day, 7) - 1)}


async def test_claim_rewards_every_waifu_up_to_the_caps(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    first = await adopt(bot_conn, 1, "sakura")
    second = await adopt(bot_conn, 1, "yuki")
    # Sakura: 10 energy with a clock 90 s ago (one point pending), mood near the cap.
    await set_stored(admin, first, clock=at(seconds=-90), energy=10, xp=5, mood=99, loyalty=0)
    # Yuki: 95 energy: the reward fills her and no more.
    await set_stored(admin, second, clock=at(seconds=-30), energy=95, xp=0, mood=50, loyalty=100)

    result = await claim(bot_conn, 1, "k1", T0)

    assert result["streak"] == 1 and result["day"] == "2100-01-01" and result["replayed"] is False
    assert result["reward"] == reward(1)
    # The next calendar day, and 20 hours after this claim: 06:00 the next day.
    assert ts(result["claimed_at"]) == T0 and ts(result["next_at"]) == datetime(2100, 1, 2, 6, tzinfo=T0.tzinfo)
    sakura, yuki = result["waifus"]
    assert (sakura["waifu_id"], yuki["waifu_id"]) == (first, second)
    # 10 + 1 restored + 20; xp +10; mood clamped at 100 (+1); loyalty +1.
    assert (sakura["energy"], sakura["xp"], sakura["mood"], sakura["loyalty"]) == (31, 15, 100, 1)
    assert sakura["gained"] == {"energy": 20, "xp": 10, "mood": 1, "loyalty": 1}
    assert (yuki["energy"], yuki["loyalty"]) == (100, 100)
    assert yuki["gained"] == {"energy": 5, "xp": 10, "mood": 2, "loyalty": 0}
    # Stored as returned; Sakura keeps the 30 s of progress towards her next point.
    assert await stored(admin, first) == {"xp": 15, "energy": 31, "mood": 100, "loyalty": 1,
                                          "clock": at(seconds=-30)}
    assert (await stored(admin, second))["energy"] == 100
    player = await admin.fetchrow("SELECT daily_streak, daily_last FROM game.players WHERE telegram_id = 1")
    assert dict(player) == {"daily_streak": 1, "daily_last": date(2100, 1, 1)}
    claims = await admin.fetch("SELECT day, request_key, streak FROM game.daily_claims")
    assert [tuple(c) for c in claims] == [(date(2100, 1, 1), "k1", 1)]


async def test_the_same_key_returns_the_recorded_result_and_changes_nothing(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    waifu = await adopt(bot_conn, 1)
    await set_stored(admin, waifu, clock=T0, energy=50)
    first = await claim(bot_conn, 1, "k1", T0)
    before = await stored(admin, waifu)
    # Later the same day, and even on a later day: the key means "that claim".
    for when in (at(minutes=5), at(hours=30)):
        again = await claim(bot_conn, 1, "k1", when)
        assert again == {**first, "replayed": True}
    assert await stored(admin, waifu) == before
    assert await admin.fetchval("SELECT count(*) FROM game.daily_claims") == 1


async def test_concurrent_claims_apply_once(bot_conn, admin, database) -> None:
    await register(bot_conn, 1)
    waifu = await adopt(bot_conn, 1)
    await set_stored(admin, waifu, clock=T0, energy=0)
    conns = [await asyncpg.connect(database.clock_bot_url) for _ in range(4)]
    try:
        # Same key from two connections, other keys from the other two: one claim applies.
        keys = ["k1", "k1", "k2", "k3"]
        results = await asyncio.gather(*(c.fetchval("SELECT api.claim_daily(1, $1, $2)::text", k, T0)
                                         for c, k in zip(conns, keys, strict=True)), return_exceptions=True)
    finally:
        for c in conns:
            await c.close()
    refusals = [r for r in results if isinstance(r, asyncpg.PostgresError)]
    assert all(r.sqlstate == "WF008" for r in refusals)
    assert len(refusals) in (2, 3)  # k1's twin replays if k1 won, else it is refused too
    assert (await stored(admin, waifu))["energy"] == 20
    assert await admin.fetchval("SELECT count(*) FROM game.daily_claims") == 1


async def test_second_claim_the_same_day_is_refused_until_midnight(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    await adopt(bot_conn, 1)
    await claim(bot_conn, 1, "k1", at(hours=-9, minutes=-59))  # 00:01 UTC
    detail = await refused(admin, "WF008", claim(bot_conn, 1, "k2", at(hours=13, minutes=59)))  # 23:59
    assert detail == {"limit": "daily", "available_at": "2100-01-02T00:00:00+00:00", "day": "2100-01-01",
                      "streak": 1, "timezone": "UTC"}
    assert (await claim(bot_conn, 1, "k2", at(hours=14)))["streak"] == 2  # 00:00 the next day


async def test_the_streak_grows_is_capped_and_starts_again_after_a_missed_day(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    await adopt(bot_conn, 1)
    for day in range(1, 10):
        result = await claim(bot_conn, 1, f"d{day}", at(hours=24 * (day - 1)))
        assert (result["streak"], result["reward"]) == (day, reward(day))
    # Day 10 missed: day 11 starts again at 1.
    result = await claim(bot_conn, 1, "d11", at(hours=24 * 10))
    assert (result["streak"], result["reward"]) == (1, reward(1))
    assert await admin.fetchval("SELECT daily_streak FROM game.players WHERE telegram_id = 1") == 1


async def test_the_day_is_the_players_day_in_their_timezone(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    await adopt(bot_conn, 1)
    await register(bot_conn, 2)
    await adopt(bot_conn, 2)
    await set_setting(bot_conn, 1, "timezone", "Europe/Moscow")  # UTC+3
    # 20:30 UTC is 23:30 in Moscow; 21:30 UTC is 00:30 the next day there.
    evening, after_midnight = datetime(2100, 1, 1, 20, 30, tzinfo=T0.tzinfo), datetime(2100, 1, 1, 21, 30,
                                                                                         tzinfo=T0.tzinfo)
    moscow = await claim(bot_conn, 1, "m1", evening)
    # A new day in Moscow at 21:00 UTC, but 20 hours after the claim first: 16:30 UTC.
    assert moscow["day"] == "2100-01-01" and ts(moscow["next_at"]) == datetime(2100, 1, 2, 16, 30, tzinfo=T0.tzinfo)
    detail = await refused(admin, "WF008", claim(bot_conn, 1, "m2", after_midnight))
    assert detail["available_at"] == "2100-01-02T16:30:00+00:00"
    assert (await claim(bot_conn, 1, "m2", datetime(2100, 1, 2, 16, 30, tzinfo=T0.tzinfo)))["streak"] == 2
    # In UTC both moments are the same day.
    await claim(bot_conn, 2, "u1", evening)
    detail = await refused(admin, "WF008", claim(bot_conn, 2, "u2", after_midnight))
    assert detail["day"] == "2100-01-01" and detail["available_at"] == "2100-01-02T16:30:00+00:00"


async def test_a_timezone_change_never_allows_a_claim_on_a_day_already_claimed(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    await adopt(bot_conn, 1)
    await set_setting(bot_conn, 1, "timezone", "Pacific/Kiritimati")  # UTC+14
    await claim(bot_conn, 1, "k1", T0)  # 10:00 UTC = 00:00 on 2 January there
    await set_setting(bot_conn, 1, "timezone", "Pacific/Pago_Pago")  # UTC-11: still 1 January there
    detail = await refused(admin, "WF008", claim(bot_conn, 1, "k2", at(hours=2)))
    # Claimed for 2 January: the next claim is on 3 January, their time.
    assert detail["day"] == "2100-01-02" and detail["available_at"] == "2100-01-03T11:00:00+00:00"
    status = (await settings(bot_conn, 1, at(hours=2)))["daily"]
    assert status["available"] is False and status["available_at"] == "2100-01-03T11:00:00+00:00"


async def test_a_timezone_moved_east_gives_no_second_claim_minutes_later(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    await adopt(bot_conn, 1)
    await claim(bot_conn, 1, "k1", at(hours=13))  # 23:00 UTC, 1 January
    # Vladivostok (UTC+10) is already in 2 January: a new calendar day, yet no claim.
    await set_setting(bot_conn, 1, "timezone", "Asia/Vladivostok")
    detail = await refused(admin, "WF008", claim(bot_conn, 1, "k2", at(hours=13, minutes=4)))
    assert detail["available_at"] == "2100-01-02T19:00:00+00:00"
    # 20 hours later: 3 January in Vladivostok. 2 January there passed while the 20 hours
    # ran, so the streak starts again (the streak follows calendar days).
    later = await claim(bot_conn, 1, "k2", at(hours=33))
    assert (later["day"], later["streak"]) == ("2100-01-03", 1)


async def test_hopping_timezones_gives_one_claim_in_20_hours(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    await adopt(bot_conn, 1)
    zones = ["Etc/GMT+12", "Pacific/Kiritimati"]  # UTC-12 and UTC+14
    claims = []
    for step in range(0, 24 * 3 * 4):  # every 15 minutes for three days, switching each time
        when = at(minutes=15 * step)
        await set_setting(bot_conn, 1, "timezone", zones[step % 2], when)
        try:
            claims.append(ts((await claim(bot_conn, 1, f"h{step}", when))["claimed_at"]))
        except asyncpg.PostgresError as exc:
            assert exc.sqlstate == "WF008"
    assert len(claims) >= 3
    assert all(later - earlier >= timedelta(hours=20) for earlier, later in itertools.pairwise(claims))


async def test_claim_refusals(bot_conn, real_bot_conn, admin) -> None:
    assert (await refused(admin, "WF005", claim(bot_conn, 1, "k", T0)))["telegram_id"] == 1
    await register(bot_conn, 1)
    # No waifu yet: nothing to reward.
    assert await refused(admin, "WF004", claim(bot_conn, 1, "k", T0)) == {"telegram_id": 1, "waifus": 0}
    await adopt(bot_conn, 1)
    for key in (None, "", "   ", "x" * 129, "a\nb"):
        assert (await refused(admin, "WF006", claim(bot_conn, 1, key, T0)))["argument"] == "request_key"
    for telegram_id in (None, 0, -5):
        assert (await refused(admin, "WF006", claim(bot_conn, telegram_id, "k", T0)))["argument"] == "telegram_id"
    # The bot's own role cannot choose the day.
    assert (await refused(admin, "WF006", claim(real_bot_conn, 1, "k", T0)))["argument"] == "now"
    result = await real_bot_conn.fetchval("SELECT api.claim_daily(1, 'k')")
    assert result["streak"] == 1


async def test_settings_defaults_and_changes(bot_conn, admin) -> None:
    await register(bot_conn, 1)
    s = await settings(bot_conn, 1)
    assert {k: s[k] for k in ("telegram_id", "notifications", "language", "language_code", "timezone")} == {
        "telegram_id": 1, "notifications": True, "language": "auto", "language_code": "en", "timezone": "UTC"}
    assert s["daily"] == {"available": True, "available_at": None, "streak": 0, "last_day": None, "next_streak": 1,
                          "next_reward": reward(1)}

    assert (await set_setting(bot_conn, 1, "notifications", "off"))["notifications"] is False
    assert (await set_setting(bot_conn, 1, "notifications", "on"))["notifications"] is True
    assert (await set_setting(bot_conn, 1, "language", "ru"))["language"] == "ru"
    assert (await set_setting(bot_conn, 1, "timezone", "europe/moscow"))["timezone"] == "Europe/Moscow"
    row = await admin.fetchrow("SELECT notifications, language, timezone FROM game.players WHERE telegram_id = 1")
    assert tuple(row) == (True, "ru", "Europe/Moscow")
    assert (await set_setting(bot_conn, 1, "timezone", "utc"))["timezone"] == "UTC"
    assert await admin.fetchval("SELECT timezone FROM game.players WHERE telegram_id = 1") is None
    assert (await set_setting(bot_conn, 1, "language", "auto"))["language"] == "auto"


async def test_settings_show_the_daily_state(bot_conn) -> None:
    await register(bot_conn, 1)
    await adopt(bot_conn, 1)
    await claim(bot_conn, 1, "k1", T0)
    await claim(bot_conn, 1, "k2", at(hours=24))
    daily = (await settings(bot_conn, 1, at(hours=25)))["daily"]
    assert daily == {"available": False, "available_at": "2100-01-03T06:00:00+00:00", "streak": 2,
                     "last_day": "2100-01-02", "next_streak": 3, "next_reward": reward(3)}
    daily = (await settings(bot_conn, 1, at(hours=48)))["daily"]  # the next day: ready, streak going on
    assert (daily["available"], daily["streak"], daily["next_streak"]) == (True, 2, 3)
    daily = (await settings(bot_conn, 1, at(hours=72)))["daily"]  # a day missed: the streak is gone
    assert (daily["available"], daily["streak"], daily["next_streak"]) == (True, 0, 1)


@pytest.mark.parametrize(("name", "value", "argument"), [
    ("colour", "red", "name"), (None, "on", "name"), ("notifications", "yes", "value"),
    ("notifications", None, "value"), ("language", "de", "value"), ("language", "EN", "value"),
    ("timezone", "Mars/Olympus", "value"), ("timezone", "posix/Europe/Moscow", "value"),
    ("timezone", "UTC+3", "value"), ("timezone", "x" * 65, "value"), ("timezone", "", "value"),
])
async def test_unknown_settings_and_values_are_refused(bot_conn, admin, name, value, argument) -> None:
    await register(bot_conn, 1)
    assert (await refused(admin, "WF006", set_setting(bot_conn, 1, name, value)))["argument"] == argument


async def test_settings_refusals(bot_conn, real_bot_conn, admin) -> None:
    assert (await refused(admin, "WF005", settings(bot_conn, 7)))["telegram_id"] == 7
    assert (await refused(admin, "WF005", set_setting(bot_conn, 7, "language", "en")))["telegram_id"] == 7
    assert (await refused(admin, "WF006", settings(bot_conn, -1)))["argument"] == "telegram_id"
    await register(bot_conn, 1)
    assert (await refused(admin, "WF006", settings(real_bot_conn, 1, T0)))["argument"] == "now"
    assert (await real_bot_conn.fetchval("SELECT api.set_player_setting(1, 'language', 'en')"))["language"] == "en"


async def test_the_reward_table_is_the_database_s(admin, bot_conn) -> None:
    """Operators change rewards in game.daily_rewards; a longer streak gets the last row."""
    await admin.execute("INSERT INTO game.daily_rewards VALUES (8, 0, 500, 0, 0)")
    await register(bot_conn, 1)
    await adopt(bot_conn, 1)
    for day in range(1, 11):
        result = await claim(bot_conn, 1, f"d{day}", at(hours=24 * (day - 1)))
    assert result["streak"] == 10 and result["reward"] == {"energy": 0, "xp": 500, "mood": 0, "loyalty": 0, "coins": 40}
    assert timedelta(0) < ts(result["next_at"]) - ts(result["claimed_at"]) <= timedelta(days=1)
