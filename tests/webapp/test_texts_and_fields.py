"""One source for words and one shape for the stats card.

The page's words come from bot/texts.py through /webapp/texts.json (every key the page
uses exists, in both languages); the web API words its errors in the caller's language;
the stats card's keys are pinned: what the SQL returns, what the page copies
(STAT_FIELDS in app.js) and what the chat's card reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.texts import LANGUAGES, PAGE_KEYS, Texts
from tests.webapp.conftest import new_player
from tests.webapp.initdata import auth_header

STATIC = Path(__file__).resolve().parents[2] / "bot" / "webapp" / "static"
APP_JS = (STATIC / "app.js").read_text()
INDEX_HTML = (STATIC / "index.html").read_text()

# The stats card (game.stats_json): every read and every action returns these keys.
STATS_CARD = {"waifu_id", "owner_id", "name", "template_code", "xp", "level", "level_xp", "next_level_xp",
              "energy", "max_energy", "max_stat", "mood", "loyalty", "next_energy_at", "full_energy_at", "as_of"}


def test_every_word_of_the_page_is_a_page_text() -> None:
    used = set(re.findall(r'\bt\("([a-z0-9_]+)"', APP_JS))
    used |= set(re.findall(r'"(web_[a-z0-9_]+)"', APP_JS))  # keys chosen before t() (rarity, own place)
    used |= set(re.findall(r'data-text(?:-label)?="([a-z0-9_]+)"', INDEX_HTML))
    assert used, "the page uses no texts?"
    assert used <= set(PAGE_KEYS), used - set(PAGE_KEYS)
    # No English words written into the page itself (beyond the placeholder title).
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<!--.*?-->", " ", INDEX_HTML, flags=re.S))
    assert re.findall(r"[A-Za-z]{3,}", visible) == []


async def test_texts_json_in_each_language(client) -> None:
    for asked, language in [("ru", "ru"), ("ru-RU", "ru"), ("be", "ru"), ("uk", "en"), ("en", "en"), ("", "en"),
                            ("x" * 300, "en")]:
        resp = await client.get("/webapp/texts.json", params={"language": asked})
        assert resp.status == 200
        body = await resp.json()
        assert body == {"language": language, "texts": Texts(language).page()}, asked
    assert (await (await client.get("/webapp/texts.json")).json())["language"] == "en"


async def test_api_errors_speak_the_callers_language(client, game) -> None:
    ru = {"Accept-Language": "ru"}
    resp = await client.get("/api/me", headers=ru)
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == Texts("ru").api_error("auth_missing")
    resp = await client.get("/api/me", headers={**auth_header(3001), **ru})  # never started the bot
    assert resp.status == 403
    assert (await resp.json())["error"] == {"code": "player_not_registered", "detail": {"telegram_id": 3001},
                                            "message": "Мы ещё не знакомы! Сначала отправь боту /start."}
    wid = await new_player(game, 3002)
    resp = await client.get("/api/waifus/999999/events", headers={**auth_header(3002), "Accept-Language": "en-GB,en"})
    assert (await resp.json())["error"]["message"] == Texts("en").api_error("waifu_not_found")
    resp = await client.get(f"/api/waifus/{wid}/nope", headers={**auth_header(3002), **ru})
    assert (resp.status, (await resp.json())["error"]["message"]) == (404, "Здесь ничего нет.")


def test_every_api_error_code_has_words_in_every_language() -> None:
    codes = ["auth_missing", "auth_malformed", "auth_invalid", "auth_expired", "webapp_not_configured",
             "not_found", "internal_error", "not_enough_energy", "event_not_open", "on_cooldown",
             "waifu_not_found", "player_not_registered", "invalid_argument", "request_key_conflict",
             "limit_reached", "unavailable"]
    for language in LANGUAGES:
        t = Texts(language)
        for code in codes:
            assert t.api_error(code), (language, code)


class Reads(dict[str, Any]):
    """A stats card that records which keys are read."""

    read: set[str]

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


async def test_the_stats_card_keys_are_pinned(client, game, admin) -> None:
    wid = await new_player(game, 3003)
    await admin.execute("UPDATE game.waifus SET dynamic = dynamic || '{\"energy\": 50}' WHERE id = $1", wid)
    stats = await admin.fetchval("SELECT api.waifu_stats($1)", wid)
    assert set(stats) == STATS_CARD
    profile = await game.player_profile(3003)
    assert set(profile["waifus"][0]) == STATS_CARD
    result = await game.participate(3003, wid, "walk", "pin-1")
    assert STATS_CARD <= set(result)
    # The page copies exactly these from an action's answer.
    fields = re.search(r"const STAT_FIELDS = \[([^\]]*)\]", APP_JS)
    assert fields is not None
    assert set(re.findall(r'"([a-z_]+)"', fields[1])) == STATS_CARD
    # The page and the chat read nothing else from a card.
    page_reads = set(re.findall(r"\bs\.([a-z_]+)", APP_JS)) | set(re.findall(r"\.stats\.([a-z_]+)", APP_JS))
    assert page_reads <= STATS_CARD, page_reads - STATS_CARD
    card = Reads(stats)
    card.read = set()
    Texts("en").card(card)
    assert card.read <= STATS_CARD and {"xp", "energy", "mood", "loyalty", "max_stat"} <= card.read
