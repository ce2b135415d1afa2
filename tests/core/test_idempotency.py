"""A request key applies its action once; a repeat answers from the ledger."""

from datetime import timedelta

from tests.core.conftest import (
    T0,
    adopt,
    at,
    create_event,
    participate,
    player_with_waifu,
    refused,
    register,
    set_stored,
    snapshot,
    stats,
)


async def test_same_request_key_twice_applies_once_and_replays_the_result(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    first = await participate(bot_conn, 1, wid, "walk", "tap-1", T0)
    assert first["replayed"] is False
    before = await snapshot(admin)
    # later, with energy restored: the recorded action, with her stats as they are now
    again = await participate(bot_conn, 1, wid, "walk", "tap-1", at(minutes=45))
    assert again == first | await stats(bot_conn, wid, at(minutes=45)) | {"replayed": True}
    assert again["energy"] == 100 and again["changes"]["energy"] == -10
    assert await snapshot(admin) == before


async def test_replay_is_answered_even_when_the_action_would_now_be_refused(admin, bot_conn):
    await create_event(admin, "tea", 20, xp=35, cooldown=timedelta(minutes=30))
    wid = await player_with_waifu(bot_conn)
    first = await participate(bot_conn, 1, wid, "tea", "k", T0)
    await set_stored(admin, wid, energy=0, clock=T0)
    await admin.execute("SELECT ops.close_event('tea', $1)", at(minutes=1))
    before = await snapshot(admin)
    # on cooldown, out of energy and closed: a redelivered update still gets its answer
    assert await participate(bot_conn, 1, wid, "tea", "k", at(minutes=2)) == (
        first | await stats(bot_conn, wid, at(minutes=2)) | {"replayed": True})
    assert await snapshot(admin) == before


async def test_request_keys_belong_to_a_player(admin, bot_conn):
    await register(bot_conn, 1)
    await register(bot_conn, 2)
    a, b = await adopt(bot_conn, 1), await adopt(bot_conn, 2)
    ra = await participate(bot_conn, 1, a, "walk", "same", T0)
    rb = await participate(bot_conn, 2, b, "walk", "same", T0)
    assert ra["replayed"] is False and rb["replayed"] is False
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 2


async def test_same_key_for_a_different_action_is_refused_and_the_original_still_replays(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    first = await participate(bot_conn, 1, wid, "walk", "k", T0)
    await refused(admin, "WF007", participate(bot_conn, 1, wid, "gift", "k", T0))
    assert await participate(bot_conn, 1, wid, "walk", "k", T0) == first | {"replayed": True}  # same moment


async def test_a_refused_action_does_not_use_up_its_key(admin, bot_conn):
    wid = await player_with_waifu(bot_conn)
    await set_stored(admin, wid, energy=5, clock=T0)
    await refused(admin, "WF001", participate(bot_conn, 1, wid, "walk", "k", T0))
    await set_stored(admin, wid, energy=50)
    r = await participate(bot_conn, 1, wid, "walk", "k", T0)
    assert r["replayed"] is False and r["energy"] == 40


async def test_a_key_is_one_across_the_ledgers_weeks(admin, bot_conn):
    # Sunday 23:59:59 and Monday 00:00:01 are two weekly partitions of the ledger: the key
    # still names one action (game.request_keys, no partitions).
    await register(bot_conn, 1)
    a, b = await adopt(bot_conn, 1, "sakura"), await adopt(bot_conn, 1, "yuki")
    sunday = T0.replace(day=3, hour=23, minute=59, second=59)  # 2100-01-03 is a Sunday
    first = await participate(bot_conn, 1, a, "walk", "k", sunday)
    await refused(admin, "WF007", participate(bot_conn, 1, b, "walk", "k", sunday + timedelta(seconds=2)))
    again = await participate(bot_conn, 1, a, "walk", "k", sunday + timedelta(seconds=2))
    assert again["replayed"] is True and again["participated_at"] == first["participated_at"]
    weeks = await admin.fetchval("SELECT count(DISTINCT tableoid) FROM game.participations")
    assert weeks == 1


async def test_twin_keys_racing_on_two_waifus_apply_once(admin, database):
    import asyncio

    import asyncpg

    await register(admin, 1)
    a, b = await adopt(admin, 1, "sakura"), await adopt(admin, 1, "yuki")
    conns = [await asyncpg.connect(database.clock_bot_url) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(c.fetchval("SELECT api.participate_in_event(1, $1, 'walk', 'twin', $2)::text", w, T0)
              for c, w in zip(conns, (a, b), strict=True)), return_exceptions=True)
    finally:
        for c in conns:
            await c.close()
    refusals = [r for r in results if isinstance(r, asyncpg.PostgresError)]
    assert len(refusals) == 1 and refusals[0].sqlstate == "WF007"
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 1
