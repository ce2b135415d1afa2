"""English and Russian: every text renders in both and fits Telegram; the language chosen
the same way in Python and in the database; Russian plurals and durations. (The
catalogues themselves - complete, settled, same placeholders: tests/bot/test_catalogues.py.)"""

from __future__ import annotations

import string

import pytest

from bot.messages import MESSAGES
from bot.texts import (
    BUTTON_LABEL_LIMIT,
    COMMANDS,
    LANGUAGES,
    MESSAGE_LIMIT,
    PAGE_KEYS,
    Texts,
    effective_language,
    plain,
    plural_index,
    visible_length,
)

RU = Texts("ru")


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_both_languages_exist() -> None:
    assert set(LANGUAGES) == {"en", "ru"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_texts_have_the_language_s_number_of_forms(language: str) -> None:
    forms = {"en": 2, "ru": 3}[language]
    for key, message in MESSAGES.items():
        if message.plural is not None:
            texts = {Texts(language).template(message, n) for n in range(30)}
            assert len(texts) <= forms, (language, key)
            assert len(texts) == forms or message.singular == message.plural, (language, key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_renders_and_fits_telegram(language: str) -> None:
    t = Texts(language)
    for key, message in MESSAGES.items():
        values = {name: 7 for name in fields(message.singular) | fields(message.plural or "")}
        text = t(key, **values)
        assert text != key and "{" not in text, key
        assert visible_length(text) <= MESSAGE_LIMIT, key
        if key.startswith("cmd_"):
            assert 3 <= len(text) <= 256, key  # BotCommand.description
        if key.startswith("btn_") or key.startswith("event_button"):
            assert len(plain(text)) <= BUTTON_LABEL_LIMIT + 16, key
    assert {f"cmd_{c}" for c in COMMANDS} <= set(MESSAGES)


@pytest.mark.parametrize(("n", "form"), [
    (0, "минут"), (1, "минута"), (2, "минуты"), (4, "минуты"), (5, "минут"), (11, "минут"), (12, "минут"),
    (14, "минут"), (21, "минута"), (22, "минуты"), (25, "минут"), (101, "минута"), (111, "минут"),
    (112, "минут"), (122, "минуты"), (1001, "минута"),
])
def test_russian_plural_rule(n: int, form: str) -> None:
    assert ["минута", "минуты", "минут"][plural_index("ru", n)] == form


def test_english_plural_rule() -> None:
    assert [plural_index("en", n) for n in (0, 1, 2, 11, 21)] == [1, 0, 1, 1, 1]


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "мгновение"), (1, "1 секунду"), (2, "2 секунды"), (5, "5 секунд"), (11, "11 секунд"), (21, "21 секунду"),
    (42, "42 секунды"), (60, "1 минуту"), (120, "2 минуты"), (300, "5 минут"), (582, "9 минут 42 секунды"),
    (61, "1 минуту 1 секунду"), (660, "11 минут"), (1260, "21 минуту"), (1320, "22 минуты"),
    (3600, "1 час"), (7200, "2 часа"), (18000, "5 часов"), (3660, "1 час 1 минуту"), (75600, "21 час"),
])
def test_russian_durations(seconds: int, shown: str) -> None:
    # Durations follow «через» (accusative): 1 минуту, 2 минуты, 5 минут.
    assert RU.duration(seconds) == shown


def test_russian_refusals_and_cards() -> None:
    assert RU.refusal("on_cooldown", {"remaining_seconds": 582}) == (
        "Она пока не хочет повторять. Снова можно через 9 минут 42 секунды.")
    assert RU.refusal("something_new", {}) == RU("err_unexpected")
    card = RU.card({"name": "Сакура", "level": 2, "xp": 160, "level_xp": 100, "next_level_xp": 400,
                    "energy": 100, "max_energy": 100, "mood": 50, "loyalty": 50, "max_stat": 100,
                    "next_energy_at": None, "full_energy_at": None, "as_of": None})
    assert card.splitlines()[0] == "<b>Сакура</b> · уровень 2"
    assert "60/300" in card  # XP within the level, as on the page


@pytest.mark.parametrize(("setting", "code", "language"), [
    ("ru", "en", "ru"), ("en", "ru", "en"), ("auto", "ru", "ru"), (None, "ru-RU", "ru"), (None, "RU", "ru"),
    ("auto", "be", "ru"), ("auto", "kk", "ru"), ("auto", "ky", "ru"), ("auto", "uk", "en"),
    ("auto", "de", "en"), ("auto", None, "en"), (None, "", "en"), ("xx", "en-GB", "en"), ("auto", "en", "en"),
])
def test_effective_language(setting: str | None, code: str | None, language: str) -> None:
    assert effective_language(setting, code) == language


def test_use_switches_only_to_a_known_language() -> None:
    t = Texts.for_user("en")
    t.use(None)
    assert (t.language, t.from_player) == ("en", False)
    t.use("ru")
    assert (t.language, t.from_player) == ("ru", True)
    assert t("btn_menu") == "⬅️ Меню"


def test_page_texts_are_whole_templates() -> None:
    for language in LANGUAGES:
        page = Texts(language).page()
        assert set(page) == set(PAGE_KEYS)
        for key, text in page.items():
            if isinstance(text, dict):  # plural forms by CLDR category, for Intl.PluralRules
                assert set(text["forms"]) == {"en": {"one", "other"}, "ru": {"one", "few", "many"}}[language], key
                assert text["count"] == MESSAGES[key].count and all(text["forms"].values()), key
            else:
                assert isinstance(text, str) and text, key
    assert "dur_pair" in PAGE_KEYS and "web_go" in PAGE_KEYS
    assert Texts("ru").page()["dur_min"] == {"count": "n", "forms": {"one": "{n} минуту", "few": "{n} минуты",
                                                                      "many": "{n} минут"}}


def test_player_languages_remember_what_the_database_said(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import languages

    clock = [1000.0]
    monkeypatch.setattr(languages.time, "monotonic", lambda: clock[0])
    known = languages.PlayerLanguages(size=2, ttl=60)
    guessed = Texts.for_user("ru")  # from Telegram's language_code only: not remembered
    known.learn(1, guessed)
    assert known.get(1) is None
    told = Texts.for_user("en")
    told.use("ru")  # the database said so
    known.learn(1, told)
    assert known.get(1) == "ru"
    known.put(2, "en")
    known.put(3, "en")  # the oldest goes beyond `size`
    assert (known.get(1), known.get(2), known.get(3)) == (None, "en", "en")
    clock[0] += 61  # and everything after `ttl` (a change made by another process shows)
    assert known.get(2) is None


def test_russian_reads_as_written_in_russian() -> None:
    """Issue 21's review: phrasings that read as translated are gone, their fixes stay."""
    assert RU("daily_title", streak=2) == "🎁 <b>Ежедневная награда</b>: 2-й день серии!"
    assert RU("web_daily_ready", n=21) == "Можно забрать: 21-й день серии."
    assert (RU.period(3600), RU.period(60), RU.period(1800), RU.period(5400)) == (
        "час", "минуту", "30 минут", "1 час 30 минут")
    assert RU("event_cooldown", cooldown=RU.period(3600)) == "   можно раз в час"
    assert RU("event_no_cooldown") == "   можно повторять сразу"  # not «без перерыва» (nonstop)
    assert Texts("en").period(3600) == "1 h"
    # The page's switch and the bot say the same: she *will be* rested.
    assert RU("web_notifications") == "Сообщать, когда она отдохнёт"
    assert "когда спутница отдохнёт" in RU("notify_on_done")
    for key, message in MESSAGES.items():
        text = RU.template(message, 5)
        for unnatural in ("не чаще раза", "без перерыва", "перерыв от", "день серии —", "в 1 час"):
            assert unnatural not in text, (key, unnatural)
