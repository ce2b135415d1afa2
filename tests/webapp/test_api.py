"""The Mini App's HTTP API against the real database: auth, ownership, idempotency, headers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.webapp.conftest import make_app, make_settings, new_player
from tests.webapp.initdata import TEST_TOKEN, auth_header, init_data, sign_fields, user_fields

ANN, BOB = 1001, 1002


def assert_no_store(response) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"].startswith("application/json")


async def error_of(response) -> dict:
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "detail"}, body
    assert body["error"]["message"]
    return body["error"]


async def set_stats(admin, waifu_id: int, *, energy: int, mood: int = 50, loyalty: int = 50, xp: int = 0,
                    clock_age_seconds: float = 0) -> None:
    """Store stats directly (the energy clock started `clock_age_seconds` ago)."""
    await admin.execute(
        """UPDATE game.waifus SET dynamic = jsonb_build_object(
               'xp', $2::bigint, 'energy', $3::int, 'mood', $4::int, 'loyalty', $5::int,
               'last_restore', extract(epoch FROM now()) - $6::numeric)
           WHERE id = $1""", waifu_id, xp, energy, mood, loyalty, clock_age_seconds)


# -- reading -------------------------------------------------------------------------------


async def test_me_shows_the_effective_stats_from_the_database(client, game, admin):
    wid = await new_player(game, ANN)
    # 37 stored, clock started 150 s ago: two points due now, the next in 30 s.
    await set_stats(admin, wid, energy=37, mood=61, loyalty=72, xp=130, clock_age_seconds=150)
    resp = await client.get("/api/me", headers=auth_header(ANN))
    assert resp.status == 200
    assert_no_store(resp)
    assert (resp.content_type, resp.charset) == ("application/json", "utf-8")  # the database's text, passed on
    me = await resp.json()
    assert me["telegram_id"] == ANN and me["first_name"] == "Ann"
    [w] = me["waifus"]
    assert (w["waifu_id"], w["name"], w["energy"], w["mood"], w["loyalty"], w["xp"], w["level"]) == \
        (wid, "Sakura", 39, 61, 72, 130, 2)
    as_of = _epoch(w["as_of"])
    assert 29 <= _epoch(w["next_energy_at"]) - as_of <= 31
    assert 29 + 60 * 60 <= _epoch(w["full_energy_at"]) - as_of <= 31 + 60 * 60


async def test_events_for_own_waifu(client, game):
    wid = await new_player(game, ANN)
    resp = await client.get(f"/api/waifus/{wid}/events", headers=auth_header(ANN))
    assert resp.status == 200
    assert_no_store(resp)
    body = await resp.json()
    assert body["waifu_id"] == wid
    codes = {e["code"] for e in body["events"]}
    assert {"walk", "cafe", "training", "movie", "gift"} <= codes
    walk = next(e for e in body["events"] if e["code"] == "walk")
    assert (walk["energy_cost"], walk["xp_reward"], walk["enough_energy"]) == (10, 15, True)


async def test_validated_user_who_never_pressed_start_is_told_to_open_the_bot(client, game):
    resp = await client.get("/api/me", headers=auth_header(4242))
    assert resp.status == 403
    assert_no_store(resp)
    err = await error_of(resp)
    assert err["code"] == "player_not_registered" and "/start" in err["message"]


# -- authentication ------------------------------------------------------------------------


def _forged_user() -> str:
    """Ann's signed data with the user swapped for Bob's, hash kept."""
    signed = init_data(ANN)
    forged = signed.replace(f"%22id%22%3A{ANN}", f"%22id%22%3A{BOB}")
    assert forged != signed
    return forged


BAD_AUTH = {
    "missing header": (None, "auth_missing"),
    "empty header": ("", "auth_missing"),
    "other scheme": (f"Bearer {init_data(ANN)}", "auth_malformed"),
    "scheme only": ("tma ", "auth_malformed"),
    "not a query string": ("tma %%%=&&=", "auth_invalid"),
    "no hash": ("tma " + "auth_date=1&user=%7B%7D", "auth_invalid"),
    "forged hash": ("tma " + init_data(ANN)[:-4] + "0000", "auth_invalid"),
    "forged user": ("tma " + _forged_user(), "auth_invalid"),
    "wrong token": ("tma " + init_data(ANN, token="654321:another-bot"), "auth_invalid"),
    "expired": ("tma " + init_data(ANN, auth_date=int(time.time()) - 86400 - 5), "auth_expired"),
    "missing auth_date": ("tma " + init_data(ANN, auth_date=None), "auth_malformed"),
    "auth_date in the future": ("tma " + init_data(ANN, auth_date=int(time.time()) + 3600), "auth_invalid"),
    "auth_date not a number": ("tma " + sign_fields(user_fields(ANN, auth_date="soon"), TEST_TOKEN),
                               "auth_malformed"),
    "no user": ("tma " + sign_fields({"auth_date": str(int(time.time())), "query_id": "x"}, TEST_TOKEN),
                "auth_malformed"),
    "user not json": ("tma " + sign_fields({**user_fields(ANN), "user": "{not json}"}, TEST_TOKEN),
                      "auth_malformed"),
    "huge": ("tma " + "a" * 6000, "auth_malformed"),
}


@pytest.mark.parametrize("header, code", BAD_AUTH.values(), ids=BAD_AUTH.keys())
async def test_bad_auth_is_401_json_with_no_database_call(client, game, header, code):
    wid = await new_player(game, ANN)
    await new_player(game, BOB, "Bob")
    calls_before = game.calls
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("GET", "/api/me"), ("GET", f"/api/waifus/{wid}/events"),
                         ("POST", f"/api/waifus/{wid}/events/walk")):
        resp = await client.request(method, path, headers={**headers, "Idempotency-Key": "k" * 16})
        assert resp.status == 401, (method, path, await resp.text())
        assert_no_store(resp)
        assert resp.headers["WWW-Authenticate"] == "tma"
        assert (await error_of(resp))["code"] == code
    assert game.calls == calls_before  # refused before any database call
    # ...and the same request signed properly does reach the database.
    assert (await client.get("/api/me", headers=auth_header(ANN))).status == 200
    assert game.calls == calls_before + 1


async def test_max_age_is_configurable(game):
    await new_player(game, ANN)
    app = make_app(game, make_settings(webapp_auth_max_age=60))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        fresh = await c.get("/api/me", headers=auth_header(ANN, auth_date=int(time.time()) - 30))
        assert fresh.status == 200
        stale = await c.get("/api/me", headers=auth_header(ANN, auth_date=int(time.time()) - 120))
        assert stale.status == 401 and (await error_of(stale))["code"] == "auth_expired"


# -- ownership and paths -------------------------------------------------------------------


async def test_another_players_waifu_is_404_like_an_unknown_one_and_stays_untouched(client, game, admin):
    await new_player(game, ANN)
    bobs = await new_player(game, BOB, "Bob")
    for method, path in (("GET", f"/api/waifus/{bobs}/events"), ("POST", f"/api/waifus/{bobs}/events/walk"),
                         ("GET", f"/api/waifus/{bobs + 100}/events")):
        resp = await client.request(method, path, headers={**auth_header(ANN), "Idempotency-Key": "x" * 16})
        assert resp.status == 404, path
        assert_no_store(resp)
        assert (await error_of(resp))["code"] == "waifu_not_found"
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 0
    assert await admin.fetchval("SELECT (dynamic->>'energy')::int FROM game.waifus WHERE id = $1", bobs) == 100


@pytest.mark.parametrize("waifu_id", ["abc", "0", "-1", "1.5", "99999999999999999999", "%D9%A3", "1%00"])
async def test_bad_waifu_ids_are_json_404_never_500(client, game, waifu_id):
    await new_player(game, ANN)
    for method, path in (("GET", f"/api/waifus/{waifu_id}/events"), ("POST", f"/api/waifus/{waifu_id}/events/walk")):
        resp = await client.request(method, path, headers={**auth_header(ANN), "Idempotency-Key": "x" * 16})
        assert resp.status == 404, (path, await resp.text())
        assert_no_store(resp)
        assert (await error_of(resp))["code"] in {"waifu_not_found", "not_found"}


@pytest.mark.parametrize("code, status, error", [
    ("nope", 409, "event_not_open"),
    ("WALK", 404, "event_not_open"),
    ("walk%00", 404, "event_not_open"),
    ("x" * 40, 404, "event_not_open"),
])
async def test_bad_event_codes(client, game, admin, code, status, error):
    wid = await new_player(game, ANN)
    resp = await client.post(f"/api/waifus/{wid}/events/{code}",
                             headers={**auth_header(ANN), "Idempotency-Key": "y" * 16})
    assert resp.status == status, await resp.text()
    assert (await error_of(resp))["code"] == error
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 0


async def test_unknown_api_paths_are_json_404(client):
    for path in ("/api/nope", "/api/", "/api/me/extra"):
        resp = await client.get(path, headers=auth_header(ANN))
        assert resp.status == 404
        assert_no_store(resp)
        assert (await error_of(resp))["code"] == "not_found"


# -- taking part ---------------------------------------------------------------------------


async def test_participation_returns_new_stats_and_double_submit_applies_once(client, game, admin):
    wid = await new_player(game, ANN)
    headers = {**auth_header(ANN), "Idempotency-Key": "button-0001"}
    # A double click: two requests with the key of one drawn button, at the same time.
    first, second = await asyncio.gather(
        client.post(f"/api/waifus/{wid}/events/walk", headers=headers),
        client.post(f"/api/waifus/{wid}/events/walk", headers=headers))
    assert first.status == second.status == 200
    assert_no_store(first)
    results = [await first.json(), await second.json()]
    assert sorted(r["replayed"] for r in results) == [False, True]
    for r in results:
        assert (r["energy"], r["xp"], r["mood"], r["loyalty"]) == (90, 15, 54, 51)
        assert r["changes"]["energy"] == -10 and r["changes"]["xp"] == 15
    ledger = await admin.fetch("SELECT request_key, event_code FROM game.participations")
    assert [(r["request_key"], r["event_code"]) for r in ledger] == [("web:button-0001", "walk")]
    assert await admin.fetchval("SELECT (dynamic->>'energy')::int FROM game.waifus WHERE id = $1", wid) == 90

    # A freshly drawn button (new key) acts again.
    again = await client.post(f"/api/waifus/{wid}/events/walk", headers={**headers, "Idempotency-Key": "button-0002"})
    assert again.status == 200 and (await again.json())["energy"] == 80
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 2

    # The same key for another action is refused, and changes nothing.
    conflict = await client.post(f"/api/waifus/{wid}/events/gift", headers=headers)
    assert conflict.status == 409 and (await error_of(conflict))["code"] == "request_key_conflict"
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 2


async def test_web_keys_do_not_collide_with_chat_keys(client, game, admin):
    wid = await new_player(game, ANN)
    # The chat bot used the bare key "button-0001" for another event.
    await game.participate(ANN, wid, "gift", "button-0001")
    resp = await client.post(f"/api/waifus/{wid}/events/walk",
                             headers={**auth_header(ANN), "Idempotency-Key": "button-0001"})
    assert resp.status == 200 and (await resp.json())["replayed"] is False
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 2


@pytest.mark.parametrize("key", [None, "", "short", "has space in it", "k" * 65, "ключ-ключ-ключ"])
async def test_participation_needs_a_well_formed_idempotency_key(client, game, admin, key):
    wid = await new_player(game, ANN)
    headers = auth_header(ANN)
    if key is not None:
        headers["Idempotency-Key"] = key
    resp = await client.post(f"/api/waifus/{wid}/events/walk", headers=headers)
    assert resp.status == 400
    err = await error_of(resp)
    assert err["code"] == "invalid_argument" and err["detail"] == {"argument": "Idempotency-Key"}
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 0


async def test_refusals_carry_code_status_and_detail(client, game, admin):
    wid = await new_player(game, ANN)
    await set_stats(admin, wid, energy=3)
    resp = await client.post(f"/api/waifus/{wid}/events/walk",
                             headers={**auth_header(ANN), "Idempotency-Key": "no-energy-1"})
    assert resp.status == 409
    err = await error_of(resp)
    assert err["code"] == "not_enough_energy"
    assert (err["detail"]["energy_needed"], err["detail"]["energy"]) == (10, 3)
    assert err["detail"]["enough_at"]

    await set_stats(admin, wid, energy=100)
    ok = await client.post(f"/api/waifus/{wid}/events/cafe",
                           headers={**auth_header(ANN), "Idempotency-Key": "cafe-0001"})
    assert ok.status == 200
    cooling = await client.post(f"/api/waifus/{wid}/events/cafe",
                                headers={**auth_header(ANN), "Idempotency-Key": "cafe-0002"})
    assert cooling.status == 409
    err = await error_of(cooling)
    assert err["code"] == "on_cooldown" and 1790 <= err["detail"]["remaining_seconds"] <= 1800


# -- health and the page -------------------------------------------------------------------


async def test_readyz_checks_the_database_and_healthz_does_not(client, game):
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert await resp.json() == {"status": "ok", "database": "ok"}
    await game.pool.close()
    await asyncio.sleep(1.1)  # the cached answer's age
    down = await client.get("/readyz")
    assert down.status == 503
    assert await down.json() == {"status": "unavailable", "database": "unreachable"}
    alive = await client.get("/healthz")
    assert alive.status == 200 and await alive.json() == {"status": "ok"}


async def test_database_down_is_503_json(client, game):
    await new_player(game, ANN)
    await game.pool.close()
    resp = await client.get("/api/me", headers=auth_header(ANN))
    assert resp.status == 503
    assert_no_store(resp)
    assert (await error_of(resp))["code"] == "unavailable"


async def test_page_and_assets_are_served_uncached(client):
    page = await client.get("/webapp/")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self' https://telegram.org" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert '<script src="https://telegram.org/js/telegram-web-app.js"></script>' in html
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        resp = await client.get(f"/webapp/{asset}")
        assert resp.status == 200 and kind in resp.headers["Content-Type"]
        assert resp.headers["Cache-Control"] == "no-cache"
    redirect = await client.get("/webapp", allow_redirects=False)
    assert redirect.status == 308 and redirect.headers["Location"] == "webapp/"
    assert (await client.get("/webapp/../bot/config.py")).status == 404


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_signing_helper_matches_aiogram():
    """The test signer and aiogram agree (otherwise every test above proves nothing)."""
    from aiogram.utils.web_app import safe_parse_webapp_init_data

    parsed = safe_parse_webapp_init_data(TEST_TOKEN, init_data(ANN, "Ann & <b>Co</b>"))
    assert parsed.user.id == ANN and parsed.user.first_name == "Ann & <b>Co</b>"
    assert json.loads(json.dumps(parsed.user.model_dump(exclude_none=True)))["id"] == ANN


async def test_an_unexpected_failure_is_a_json_500_without_details(client, game, monkeypatch, caplog):
    await new_player(game, ANN)

    async def broken(telegram_id):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(game, "player_profile_json", broken)
    resp = await client.get("/api/me", headers=auth_header(ANN))
    assert resp.status == 500
    assert_no_store(resp)
    err = await error_of(resp)
    assert err["code"] == "internal_error" and "secret" not in json.dumps(err)
    assert "secret internals" in caplog.text  # ...but it is in the log
