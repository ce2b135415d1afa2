"""Game content in the player's language (0008.i18n.sql): Russian seeds, localized reads
with English as the fallback, the operators' translation functions, and one rule for
the language shared with the bot (bot/texts.py)."""

from __future__ import annotations

import asyncpg
import pytest

from bot.texts import LANGUAGES, effective_language
from tests.core.conftest import T0, at, participate, refused

RU_EVENTS = {"walk": "Прогулка в парке", "cafe": "Свидание в кафе", "training": "Тренировка",
             "movie": "Вечер кино", "gift": "Сделать подарок"}
RU_NAMES = {"sakura": "Сакура", "yuki": "Юки", "akane": "Аканэ", "hana": "Хана", "rin": "Рин"}


async def register(conn: asyncpg.Connection, telegram_id: int, language_code: str | None) -> dict:
    return await conn.fetchval("SELECT api.register_player($1, 'u', 'Ива', $2)", telegram_id, language_code)


async def titles(conn: asyncpg.Connection, telegram_id: int, waifu_id: int) -> dict[str, str]:
    events = await conn.fetchval("SELECT api.player_available_events($1, $2, $3)", telegram_id, waifu_id, T0)
    return {e["code"]: e["title"] for e in events}


async def test_seeds_translate_every_template_and_event(admin):
    rows = await admin.fetch("SELECT kind, code, field, english, translated FROM ops.translations "
                             "WHERE language = 'ru'")
    assert {(r["kind"], r["code"], r["field"]) for r in rows} == (
        {("template", c, f) for c in RU_NAMES for f in ("name", "description")}
        | {("event", c, "title") for c in RU_EVENTS})
    assert all(r["translated"] for r in rows), [r for r in rows if not r["translated"]]


async def test_a_russian_player_reads_russian_and_an_english_one_english(bot_conn, admin):
    profile = await register(bot_conn, 1, "ru-RU")
    assert profile["language"] == "ru"
    ru_waifu = await bot_conn.fetchval("SELECT api.adopt_waifu(1, 'sakura')")
    assert (await register(bot_conn, 2, "en"))["language"] == "en"
    en_waifu = await bot_conn.fetchval("SELECT api.adopt_waifu(2, 'sakura')")

    # Named in her owner's language at adoption.
    assert (await bot_conn.fetchval("SELECT api.player_profile(1)"))["waifus"][0]["name"] == "Сакура"
    assert (await bot_conn.fetchval("SELECT api.player_profile(2)"))["waifus"][0]["name"] == "Sakura"
    assert await titles(bot_conn, 1, ru_waifu) == RU_EVENTS
    assert (await titles(bot_conn, 2, en_waifu))["walk"] == "Walk in the park"
    result = await participate(bot_conn, 1, ru_waifu, "walk", "k1", at(1))
    assert result["event_title"] == "Прогулка в парке"
    replay = await participate(bot_conn, 1, ru_waifu, "walk", "k1", at(2))
    assert (replay["replayed"], replay["event_title"]) == (True, "Прогулка в парке")

    templates = await bot_conn.fetchval("SELECT api.waifu_templates('ru')")
    assert {t["code"]: t["name"] for t in templates} == RU_NAMES
    assert [t["name"] for t in templates] == sorted(RU_NAMES.values())  # in the reader's alphabet
    english = await bot_conn.fetchval("SELECT api.waifu_templates()")
    assert english == await bot_conn.fetchval("SELECT api.waifu_templates('en')")
    assert english == await bot_conn.fetchval("SELECT api.waifu_templates('xx')")  # unknown: English
    assert {t["code"]: t["name"] for t in english}["sakura"] == "Sakura"


async def test_the_setting_wins_over_telegram_and_language_is_returned(bot_conn, admin):
    await register(bot_conn, 3, "en")
    waifu = await bot_conn.fetchval("SELECT api.adopt_waifu(3, 'yuki')")
    await admin.execute("UPDATE game.players SET language = 'ru' WHERE telegram_id = 3")
    assert (await bot_conn.fetchval("SELECT api.player_profile(3)"))["language"] == "ru"
    assert await bot_conn.fetchval("SELECT api.player_language(3)") == "ru"
    assert (await titles(bot_conn, 3, waifu))["cafe"] == "Свидание в кафе"
    await admin.execute("UPDATE game.players SET language = 'en', language_code = 'ru' WHERE telegram_id = 3")
    assert await bot_conn.fetchval("SELECT api.player_language(3)") == "en"
    assert (await titles(bot_conn, 3, waifu))["cafe"] == "Cafe date"
    # Her name stays the one she was given.
    assert (await bot_conn.fetchval("SELECT api.player_profile(3)"))["waifus"][0]["name"] == "Yuki"
    # Not registered: no language (the bot then uses Telegram's).
    assert await bot_conn.fetchval("SELECT api.player_language(4)") is None
    await refused(admin, "WF006", bot_conn.fetchval("SELECT api.player_language(NULL)"))


async def test_a_missing_translation_falls_back_to_english(admin, bot_conn, ops_conn):
    await ops_conn.fetchval("SELECT ops.create_event('picnic', 'Picnic', 5, 5, 1, 1, '0')")
    await register(bot_conn, 5, "ru")
    waifu = await bot_conn.fetchval("SELECT api.adopt_waifu(5, 'hana')")
    assert (await titles(bot_conn, 5, waifu))["picnic"] == "Picnic"
    missing = await ops_conn.fetch("SELECT code FROM ops.translations WHERE translated IS NULL")
    assert [r["code"] for r in missing] == ["picnic"]

    row = await ops_conn.fetchval("SELECT ops.set_event_translation('picnic', 'ru', 'Пикник')")
    assert {k: row[k] for k in ("event_code", "language", "title")} == {
        "event_code": "picnic", "language": "ru", "title": "Пикник"}
    assert (await titles(bot_conn, 5, waifu))["picnic"] == "Пикник"
    await ops_conn.fetchval("SELECT ops.set_event_translation('picnic', 'ru', 'Пикничок')")  # changed
    assert (await titles(bot_conn, 5, waifu))["picnic"] == "Пикничок"
    assert await ops_conn.fetchval("SELECT ops.delete_translation('event', 'picnic', 'ru')") is True
    assert await ops_conn.fetchval("SELECT ops.delete_translation('event', 'picnic', 'ru')") is False
    assert (await titles(bot_conn, 5, waifu))["picnic"] == "Picnic"

    # A template's description may stay English while its name is translated.
    await ops_conn.fetchval("SELECT ops.set_template_translation('rin', 'ru', 'Рин-тян')")
    rin = {t["code"]: t for t in await bot_conn.fetchval("SELECT api.waifu_templates('ru')")}["rin"]
    assert rin == {"code": "rin", "name": "Рин-тян",
                   "description": "A sly tease with a soft heart she hides very badly.", "rarity": "rare"}
    assert await ops_conn.fetchval("SELECT ops.delete_translation('template', 'rin', 'ru')") is True
    rin = {t["code"]: t for t in await bot_conn.fetchval("SELECT api.waifu_templates('ru')")}["rin"]
    assert rin["name"] == "Rin"


@pytest.mark.parametrize(("sql", "argument"), [
    ("SELECT ops.set_event_translation('walk', 'de', 'Spaziergang')", "language"),
    ("SELECT ops.set_event_translation('walk', 'en', 'Walk')", "language"),
    ("SELECT ops.set_event_translation('walk', NULL, 'Walk')", "language"),
    ("SELECT ops.set_event_translation('nope', 'ru', 'Нет')", "event_code"),
    ("SELECT ops.set_event_translation('walk', 'ru', '  ')", "title"),
    ("SELECT ops.set_event_translation('walk', 'ru', NULL)", "title"),
    ("SELECT ops.set_event_translation('walk', 'ru', repeat('я', 201))", "title"),
    ("SELECT ops.set_template_translation('nope', 'ru', 'Нет')", "template_code"),
    ("SELECT ops.set_template_translation('rin', 'ru', repeat('я', 65))", "name"),
    ("SELECT ops.set_template_translation('rin', 'ru', 'Рин', '')", "description"),
    ("SELECT ops.delete_translation('waifu', 'rin', 'ru')", "kind"),
    ("SELECT ops.delete_translation('event', 'walk', 'xx')", "language"),
])
async def test_operators_bad_arguments_are_wf006(admin, ops_conn, sql, argument):
    detail = await refused(admin, "WF006", ops_conn.fetchval(sql))
    assert detail["argument"] == argument


async def test_only_operators_write_translations(bot_conn):
    for sql in ("SELECT ops.set_event_translation('walk', 'ru', 'x')",
                "SELECT ops.set_template_translation('rin', 'ru', 'x')",
                "SELECT ops.delete_translation('event', 'walk', 'ru')",
                "SELECT * FROM ops.translations", "SELECT * FROM game.event_translations"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await bot_conn.fetchval(sql)


CODES = ["ru", "ru-RU", "RU", "be", "kk", "ky", "uk", "uk-UA", "en", "en-GB", "de", "pt-br", "", None, "x" * 16]


async def test_the_database_and_the_bot_choose_the_language_alike(admin):
    for setting in ("auto", "en", "ru", None):
        for code in CODES:
            in_sql = await admin.fetchval("SELECT game.effective_language($1, $2)", setting, code)
            assert in_sql == effective_language(setting, code), (setting, code)
    assert await admin.fetchval("SELECT game.languages()") == list(LANGUAGES)
