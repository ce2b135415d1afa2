"""Every refusal: its SQLSTATE, the numbers in its JSON DETAIL, and that it changed nothing."""

from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.core.conftest import T0, adopt, at, create_event, participate, refused, register, set_stored, ts


@dataclass
class World:
    mine: int  # waifu of player 1
    theirs: int  # waifu of player 2


@pytest.fixture
async def world(admin, bot_conn) -> World:
    await register(bot_conn, 1)
    await register(bot_conn, 2)
    mine = await adopt(bot_conn, 1, "sakura")
    theirs = await adopt(bot_conn, 2, "yuki")
    await create_event(admin, "festival", 5, xp=20, starts_at=at(hours=1), ends_at=at(hours=2))
    # some history, so "nothing changed" compares real rows
    await participate(bot_conn, 1, mine, "cafe", "history", at(minutes=-1))
    await admin.execute("SELECT ops.set_stat($1, 'mood', 60, 'setup')", mine)
    return World(mine, theirs)


# WF001 -------------------------------------------------------------------------------
async def test_wf001_not_enough_energy(admin, bot_conn, world):
    await set_stored(admin, world.mine, energy=5, clock=T0)
    detail = await refused(admin, "WF001", participate(bot_conn, 1, world.mine, "walk", "k", at(seconds=30)))
    assert (detail["energy_needed"], detail["energy"]) == (10, 5)
    assert ts(detail["enough_at"]) == at(minutes=5)


async def test_wf001_counts_pending_energy_and_stores_none_of_it(admin, bot_conn, world):
    await set_stored(admin, world.mine, energy=3, clock=T0)
    # 2.5 minutes pending: effective 5, still short of 10; the refusal stores nothing
    detail = await refused(admin, "WF001", participate(bot_conn, 1, world.mine, "walk", "k",
                                                       at(minutes=2, seconds=30)))
    assert (detail["energy_needed"], detail["energy"]) == (10, 5)
    assert ts(detail["enough_at"]) == at(minutes=7)


# WF002 -------------------------------------------------------------------------------
async def test_wf002_unknown_event(admin, bot_conn, world):
    detail = await refused(admin, "WF002", participate(bot_conn, 1, world.mine, "nope", "k", T0))
    assert detail == {"event_code": "nope", "starts_at": None, "ends_at": None}


@pytest.mark.parametrize("now", [at(minutes=59, seconds=59), at(hours=2), at(hours=30)])
async def test_wf002_event_outside_its_window(admin, bot_conn, world, now):
    detail = await refused(admin, "WF002", participate(bot_conn, 1, world.mine, "festival", "k", now))
    assert detail["event_code"] == "festival"
    assert (ts(detail["starts_at"]), ts(detail["ends_at"])) == (at(hours=1), at(hours=2))


async def test_wf002_closed_event(admin, bot_conn, world):
    await admin.execute("SELECT ops.close_event('festival', $1)", at(hours=1, minutes=30))
    detail = await refused(admin, "WF002", participate(bot_conn, 1, world.mine, "festival", "k",
                                                       at(hours=1, minutes=30)))
    assert ts(detail["ends_at"]) == at(hours=1, minutes=30)


async def test_wf002_close_unknown_event(admin, world):
    detail = await refused(admin, "WF002", admin.fetchval("SELECT ops.close_event('nope')"))
    assert detail == {"event_code": "nope"}


# WF003 -------------------------------------------------------------------------------
async def test_wf003_cooldown(admin, bot_conn, world):
    # cafe was played at T0 - 1 min (30 min cooldown)
    detail = await refused(admin, "WF003", participate(bot_conn, 1, world.mine, "cafe", "k", at(minutes=10)))
    assert detail["event_code"] == "cafe"
    assert ts(detail["available_at"]) == at(minutes=29)
    assert detail["remaining_seconds"] == 19 * 60


async def test_wf003_rounds_remaining_seconds_up(admin, bot_conn, world):
    detail = await refused(admin, "WF003", participate(bot_conn, 1, world.mine, "cafe", "k",
                                                       at(minutes=28, seconds=59.5)))
    assert detail["remaining_seconds"] == 1


# WF004 -------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", [
    "SELECT api.waifu_stats(999999)",
    "SELECT api.available_events(999999)",
    "SELECT api.player_waifu_stats(1, 999999)",
    "SELECT api.player_available_events(1, 999999)",
    "SELECT api.participate_in_event(1, 999999, 'walk', 'k')",
])
async def test_wf004_unknown_waifu(admin, bot_conn, world, sql):
    assert await refused(admin, "WF004", bot_conn.fetchval(sql)) == {"waifu_id": 999999}


async def test_wf004_set_stat_unknown_waifu(admin, world):
    assert await refused(admin, "WF004", admin.fetchval("SELECT ops.set_stat(999999, 'mood', 1)")) == {
        "waifu_id": 999999}


@pytest.mark.parametrize("sql", [
    "SELECT api.player_waifu_stats(1, $1)",
    "SELECT api.player_available_events(1, $1)",
    "SELECT api.participate_in_event(1, $1, 'walk', 'k')",
])
async def test_wf004_another_players_waifu(admin, bot_conn, world, sql):
    assert await refused(admin, "WF004", bot_conn.fetchval(sql, world.theirs)) == {"waifu_id": world.theirs}


# WF005 -------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", [
    "SELECT api.player_profile(77)",
    "SELECT api.adopt_waifu(77, 'rin')",
    "SELECT api.adopt_waifu(77, 'rin', 'key')",
    "SELECT api.participate_in_event(77, $1, 'walk', 'k')",
    "SELECT api.player_waifu_stats(77, $1)",
    "SELECT api.player_available_events(77, $1)",
])
async def test_wf005_player_not_registered(admin, bot_conn, world, sql):
    args = (world.mine,) if "$1" in sql else ()
    assert await refused(admin, "WF005", bot_conn.fetchval(sql, *args)) == {"telegram_id": 77}


# WF006 -------------------------------------------------------------------------------
@pytest.mark.parametrize(("sql", "args", "expected"), [
    ("SELECT api.register_player($1, 'u', 'U', 'en')", (0,), {"argument": "telegram_id", "value": 0}),
    ("SELECT api.register_player($1, 'u', 'U', 'en')", (-5,), {"argument": "telegram_id", "value": -5}),
    ("SELECT api.register_player($1, 'u', 'U', 'en')", (None,), {"argument": "telegram_id", "value": None}),
    ("SELECT api.register_player(3, $1, 'U', 'en')", ("u" * 65,),
     {"argument": "username", "max_length": 64, "length": 65}),
    ("SELECT api.register_player(3, 'u', $1, 'en')", ("f" * 257,),
     {"argument": "first_name", "max_length": 256, "length": 257}),
    ("SELECT api.register_player(3, 'u', 'U', $1)", ("x" * 17,),
     {"argument": "language_code", "max_length": 16, "length": 17}),
    ("SELECT api.adopt_waifu(1, $1)", ("nobody",), {"argument": "template_code", "value": "nobody"}),
    ("SELECT api.adopt_waifu(1, $1)", (None,), {"argument": "template_code", "value": None}),
    ("SELECT api.adopt_waifu(1, 'rin', $1)", ("k" * 129,),
     {"argument": "request_key", "max_length": 128, "length": 129}),
])
async def test_wf006_invalid_api_argument(admin, bot_conn, world, sql, args, expected):
    assert await refused(admin, "WF006", bot_conn.fetchval(sql, *args)) == expected


@pytest.mark.parametrize(("key", "expected"), [
    (None, {"argument": "request_key"}),
    ("", {"argument": "request_key"}),
    ("   ", {"argument": "request_key"}),
    ("k" * 129, {"argument": "request_key", "max_length": 128, "length": 129}),
])
async def test_wf006_participate_needs_a_request_key(admin, bot_conn, world, key, expected):
    detail = await refused(admin, "WF006", participate(bot_conn, 1, world.mine, "walk", key, T0))
    assert detail == expected


@pytest.mark.parametrize(("stat", "value", "expected"), [
    ("charm", 5, {"argument": "stat", "value": "charm"}),
    ("last_restore", 5, {"argument": "stat", "value": "last_restore"}),
    (None, 5, {"argument": "stat", "value": None}),
    ("energy", 101, {"argument": "value", "value": "101"}),
    ("energy", -1, {"argument": "value", "value": "-1"}),
    ("mood", 101, {"argument": "value", "value": "101"}),
    ("loyalty", -1, {"argument": "value", "value": "-1"}),
    ("xp", -1, {"argument": "value", "value": "-1"}),
    ("xp", None, {"argument": "value", "value": None}),
])
async def test_wf006_set_stat(admin, world, stat, value, expected):
    detail = await refused(admin, "WF006", admin.fetchval("SELECT ops.set_stat($1, $2, $3)", world.mine, stat, value))
    assert detail == expected


@pytest.mark.parametrize(("change", "argument"), [
    ({"code": "Bad Code"}, "code"),
    ({"code": ""}, "code"),
    ({"code": "x" * 33}, "code"),
    ({"title": ""}, "title"),
    ({"title": None}, "title"),
    ({"title": "t" * 201}, "title"),
    ({"energy_cost": -1}, "energy_cost"),
    ({"energy_cost": 101}, "energy_cost"),
    ({"xp_reward": -1}, "xp_reward"),
    ({"mood_delta": 101}, "mood_delta"),
    ({"loyalty_delta": -101}, "loyalty_delta"),
    ({"cooldown": timedelta(minutes=-1)}, "cooldown"),
    ({"cooldown": None}, "cooldown"),
    ({"starts_at": at(hours=2), "ends_at": at(hours=2)}, "ends_at"),
    ({"starts_at": at(hours=2), "ends_at": at(hours=1)}, "ends_at"),
])
async def test_wf006_create_event(admin, world, change, argument):
    args = {"code": "new_event", "title": "New", "energy_cost": 5, "xp_reward": 5, "mood_delta": 1,
            "loyalty_delta": 1, "cooldown": timedelta(0), "starts_at": None, "ends_at": None} | change
    detail = await refused(admin, "WF006", admin.fetchval(
        "SELECT ops.create_event($1, $2, $3, $4, $5, $6, $7, $8, $9)", *args.values()))
    assert detail["argument"] == argument


async def test_wf006_create_event_never_half_updates_an_existing_event(admin, world):
    detail = await refused(admin, "WF006", admin.fetchval(
        "SELECT ops.create_event('walk', 'Changed', 101, 1, 1, 1, '0')"))
    assert detail == {"argument": "energy_cost", "value": "101"}


# WF007 -------------------------------------------------------------------------------
async def test_wf007_request_key_reused_for_another_event(admin, bot_conn, world):
    detail = await refused(admin, "WF007", participate(bot_conn, 1, world.mine, "walk", "history", T0))
    assert detail == {"request_key": "history", "waifu_id": world.mine, "event_code": "cafe"}


async def test_wf007_request_key_reused_for_another_waifu(admin, bot_conn, world):
    other = await adopt(bot_conn, 1, "rin")
    detail = await refused(admin, "WF007", participate(bot_conn, 1, other, "cafe", "history", T0))
    assert detail == {"request_key": "history", "waifu_id": world.mine, "event_code": "cafe"}


async def test_wf007_adopt_key_reused_for_another_template(admin, bot_conn, world):
    wid = await adopt(bot_conn, 1, "rin", "adopt-key")
    detail = await refused(admin, "WF007", adopt(bot_conn, 1, "hana", "adopt-key"))
    assert detail == {"request_key": "adopt-key", "waifu_id": wid}
