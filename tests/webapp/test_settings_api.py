"""The Mini App's settings and daily reward endpoints against the real database."""

from __future__ import annotations

from tests.webapp.conftest import new_player
from tests.webapp.initdata import auth_header

ANN = 1001


async def test_settings_read_and_change(client, game, admin):
    await new_player(game, ANN)
    resp = await client.get("/api/settings", headers=auth_header(ANN))
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    s = await resp.json()
    assert (s["notifications"], s["language"], s["timezone"], s["daily"]["available"]) == (True, "auto", "UTC", True)

    resp = await client.post("/api/settings", json={"name": "notifications", "value": "off"},
                             headers=auth_header(ANN))
    assert resp.status == 200 and (await resp.json())["notifications"] is False
    resp = await client.post("/api/settings", json={"name": "timezone", "value": "Asia/Tokyo"},
                             headers=auth_header(ANN))
    assert (await resp.json())["timezone"] == "Asia/Tokyo"
    row = await admin.fetchrow("SELECT notifications, timezone FROM game.players WHERE telegram_id = $1", ANN)
    assert tuple(row) == (False, "Asia/Tokyo")


async def test_bad_settings_are_400(client, game):
    await new_player(game, ANN)
    for body in ({"name": "colour", "value": "red"}, {"name": "language", "value": "de"}):
        resp = await client.post("/api/settings", json=body, headers=auth_header(ANN))
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_argument"
    for raw in ("not json", "[1, 2]", '{"name": 1, "value": "x"}'):
        calls = game.calls
        resp = await client.post("/api/settings", data=raw, headers={**auth_header(ANN),
                                                                      "Content-Type": "application/json"})
        assert resp.status == 400 and game.calls == calls  # refused before the database


async def test_daily_once_per_day_and_once_per_key(client, game, admin):
    await new_player(game, ANN)
    headers = {**auth_header(ANN), "Idempotency-Key": "daily-0001"}
    first = await client.post("/api/daily", headers=headers)
    assert first.status == 200
    claimed = await first.json()
    assert claimed["streak"] == 1 and claimed["replayed"] is False
    again = await client.post("/api/daily", headers=headers)  # a double submit
    assert again.status == 200 and (await again.json())["replayed"] is True
    other = await client.post("/api/daily", headers={**headers, "Idempotency-Key": "daily-0002"})
    assert other.status == 409
    err = (await other.json())["error"]
    assert err["code"] == "limit_reached" and "available_at" in err["detail"]
    assert await admin.fetchval("SELECT count(*) FROM game.daily_claims WHERE telegram_id = $1", ANN) == 1
    missing = await client.post("/api/daily", headers=auth_header(ANN))
    assert missing.status == 400
