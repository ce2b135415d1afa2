"""A Russian-speaking player plays a round in Russian, end to end: updates through the
real dispatcher and handlers, the real database, replies over HTTP to the strict stand-in.
The language comes from the player's setting, else Telegram's language_code, and the
database says which (`language` of the profile, api.player_language after a restart)."""

from __future__ import annotations

import re

from bot.dev.local_botapi import Player, callback_id_of
from bot.texts import COMMANDS, Texts, plural_index
from tests.bot.conftest import Harness

RU = Texts("ru")


def answer_text(h: Harness, update: dict) -> str:
    answers = h.stub.answers(callback_id_of(update))
    assert len(answers) == 1, answers
    return str(answers[0].get("text", ""))


def plural_ok(number: str, word: str, forms: tuple[str, str, str]) -> bool:
    return word == forms[plural_index("ru", int(number))]


async def test_a_russian_player_plays_a_round_in_russian(harness: Harness) -> None:
    h = harness
    iva = h.stub.user(3101, "Ива", language_code="ru")
    await h.send(iva.message("/start"))
    welcome = iva.last()
    assert welcome["text"].startswith("Добро пожаловать, Ива! 🌸\nВыбери себе спутницу — она будет ждать тебя здесь:")
    assert "Сакура · Весёлая и бесконечно любопытная" in welcome["text"]
    assert [b["text"] for b in Player.buttons(welcome)] == [
        "💕 Аканэ", "💕 Рин", "💕 Сакура", "💕 Хана", "💕 Юки"]

    tap = iva.press("💕 Сакура")
    await h.send(tap)
    menu = iva.last()
    assert menu["text"] == "🎉 Сакура теперь твоя спутница! Береги её.\n\nПривет, Ива! Чем займёмся?"
    assert [b["text"] for b in Player.buttons(menu)][:2] == ["📊 Показатели", "🎉 События"]
    assert answer_text(h, tap) == "Сакура, добро пожаловать домой!"
    waifu_id = await h.admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = 3101")
    assert await h.admin.fetchval("SELECT name FROM game.waifus WHERE id = $1", waifu_id) == "Сакура"

    await h.send(iva.press("🎉 События"))
    events = iva.last()["text"]
    assert events.startswith("Сакура: события (⚡ 100/100)")
    assert "Прогулка в парке: 10 ⚡ → +15 опыта, настроение +4, преданность +1\n   можно повторять сразу" in events
    assert "Свидание в кафе: 20 ⚡ → +35 опыта, настроение +8, преданность +4\n   можно раз в 30 минут" in events
    assert "Тренировка: 30 ⚡ → +60 опыта, настроение −6, преданность +3\n   можно раз в час" in events

    tap = iva.press("Свидание в кафе · 20⚡")
    await h.send(tap)
    result = iva.last()["text"]
    assert result.startswith("✅ Сакура: Свидание в кафе\n+35 опыта · −20 ⚡ · настроение +8 · преданность +4")
    assert "Сакура · уровень 1" in result and "✨ Опыт" in result and "⚡ Энергия" in result
    assert answer_text(h, tap) == "+35 опыта"

    # Again at once: on cooldown, refused in Russian with a Russian wait.
    tap = iva.press("🔁 Ещё раз: Свидание в кафе")
    await h.send(tap)
    refusal = answer_text(h, tap)
    m = re.fullmatch(r"Она пока не хочет повторять\. Снова можно через (\d+) (минуту|минуты|минут)"
                     r"(?: (\d+) (секунду|секунды|секунд))?\.", refusal)
    assert m and m[1] in ("29", "30") and plural_ok(m[1], m[2], ("минуту", "минуты", "минут")), refusal
    assert m[3] is None or plural_ok(m[3], m[4], ("секунду", "секунды", "секунд")), refusal

    # The card counts in Russian, plurals agreeing with their numbers.
    await h.admin.execute("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 98, "
                          "'last_restore', extract(epoch FROM now()) - 38) WHERE id = $1", waifu_id)
    await h.send(iva.message("/profile"))
    card = iva.last()["caption"]
    m = re.search(r"\+1 через (\d+) (секунду|секунды|секунд) · полностью через 1 минуту (\d+) (секунду|секунды|секунд)",
                  card)
    assert m, card
    assert plural_ok(m[1], m[2], ("секунду", "секунды", "секунд"))
    assert plural_ok(m[3], m[4], ("секунду", "секунды", "секунд"))

    # Low energy: the event buttons say so (in chat as on the page).
    await h.admin.execute("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 0, "
                          "'last_restore', extract(epoch FROM now())) WHERE id = $1", waifu_id)
    await h.send(iva.message("/events"))
    labels = [b["text"] for b in Player.buttons(iva.last())]
    assert "🪫 Прогулка в парке · 10⚡" in labels and "⏳ Свидание в кафе" in labels
    assert "🪫 не хватает энергии" in iva.last()["text"]

    await h.send(iva.message("/help"))
    assert iva.last()["text"].startswith("Как играть")
    await h.send(iva.message("привет"))
    assert iva.last()["text"] == RU("unknown_text")


async def test_the_setting_wins_and_survives_a_restart(harness: Harness) -> None:
    h = harness
    ola = h.stub.user(3102, "Ola", language_code="en")
    await h.send(ola.message("/start"))
    assert ola.last()["text"].startswith("Welcome, Ola!")
    await h.send(ola.press("💕 Sakura"))
    await h.admin.execute("UPDATE game.players SET language = 'ru' WHERE telegram_id = 3102")
    # A restarted bot remembers nobody: the first update asks the database once.
    dp = h.fresh_dispatcher()
    calls: list[str] = []
    real_call = h.game._call

    async def counting(sql: str, *args: object) -> object:
        calls.append(sql)
        return await real_call(sql, *args)

    h.game._call = counting  # type: ignore[method-assign]
    try:
        await dp.feed_raw_update(h.bot, ola.press("📊 Stats"))
        assert ola.last()["caption"].startswith("Sakura · уровень 1")  # her name is the one she was given
        await dp.feed_raw_update(h.bot, ola.press("🔄 Обновить"))
        await dp.feed_raw_update(h.bot, ola.message("/menu"))
        assert ola.last()["text"] == "Привет, Ola! Чем займёмся?"
    finally:
        h.game._call = real_call  # type: ignore[method-assign]
    assert sum("api.player_language" in sql for sql in calls) == 1


async def test_telegram_language_codes(harness: Harness) -> None:
    h = harness
    for user_id, code, expected in [(3103, "be", "Как играть"), (3104, "kk", "Как играть"),
                                    (3105, "uk", "How to play"), (3106, "ru-RU", "Как играть"),
                                    (3107, "de", "How to play")]:
        p = h.stub.user(user_id, "P", language_code=code)
        await h.send(p.message("/help"))
        assert p.last()["text"].startswith(expected), code
    # Before /start: refused in the Telegram client's language.
    nia = h.stub.user(3108, "Ния", language_code="ru")
    await h.send(nia.message("/menu"))
    assert nia.last()["text"] == "Мы ещё не знакомы! Сначала отправь боту /start."


async def test_the_command_menu_in_both_languages(harness: Harness) -> None:
    h = harness
    await h.dp.emit_startup(bot=h.bot, **h.dp.workflow_data)
    for language, texts in ((None, Texts("en")), ("ru", RU), ("be", RU), ("kk", RU), ("ky", RU)):
        commands = h.stub.commands[language]
        assert [c["command"] for c in commands] == list(COMMANDS)
        assert [c["description"] for c in commands] == [texts(f"cmd_{c}") for c in COMMANDS]
    assert h.stub.commands["ru"][0]["description"] == "Начать или открыть меню"
    assert set(h.stub.commands) == {None, "ru", "be", "kk", "ky"}  # not uk: English, like its chat


async def test_aiogram_s_gettext_speaks_the_player_s_language(harness: Harness) -> None:
    """bot.i18n.PlayerLocale: a handler using aiogram.utils.i18n.gettext gets the language
    `texts` speaks, also after the database told the handler better (texts.use)."""
    from aiogram import Router
    from aiogram.filters import Command
    from aiogram.types import Message
    from aiogram.utils.i18n import gettext

    from bot.messages import MESSAGES

    h = harness
    seen: list[str] = []
    router = Router()

    @router.message(Command("probe"))
    async def probe(message: Message, texts: Texts) -> None:
        seen.append(gettext(MESSAGES["btn_menu"].singular))
        texts.use("ru")  # as a handler does with the profile's `language`
        seen.append(gettext(MESSAGES["btn_menu"].singular))

    dp = h.fresh_dispatcher()
    dp.include_router(router)
    dp.sub_routers.insert(0, dp.sub_routers.pop())  # before the fallback router
    ann = h.stub.user(3109, "Ann", language_code="en")
    await dp.feed_raw_update(h.bot, ann.message("/probe"))
    nia = h.stub.user(3110, "Ния", language_code="ru")
    await dp.feed_raw_update(h.bot, nia.message("/probe"))
    assert seen == ["⬅️ Menu", "⬅️ Меню", "⬅️ Меню", "⬅️ Меню"]
