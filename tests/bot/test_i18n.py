"""English and Russian: every text in both, with the same placeholders; the language
chosen the same way in Python and in the database; Russian plurals and durations."""

from __future__ import annotations

import string

import pytest

from bot.texts import (
    BUTTON_LABEL_LIMIT,
    COMMANDS,
    LANGUAGES,
    MESSAGE_LIMIT,
    MESSAGES,
    PAGE_KEYS,
    Texts,
    effective_language,
    plain,
    plural_index,
    visible_length,
)

RU = Texts("ru")


def fields(template: str) -> set[tuple[str, bool]]:
    """(name, is a plural field) of every placeholder."""
    return {(name, "|" in (spec or "")) for _, name, spec, _ in string.Formatter().parse(template)
            if name is not None}


def test_both_languages_exist() -> None:
    assert set(LANGUAGES) == {"en", "ru"}


@pytest.mark.parametrize("language", [lang for lang in MESSAGES if lang != "en"])
def test_every_key_in_every_language_with_the_same_placeholders(language: str) -> None:
    english = MESSAGES["en"]
    assert set(MESSAGES[language]) == set(english), set(MESSAGES[language]) ^ set(english)
    for key, template in english.items():
        # Plural fields may differ (English needs none where Russian declines a noun),
        # but every value the caller passes is used in both.
        assert {n for n, _ in fields(MESSAGES[language][key])} == {n for n, _ in fields(template)}, key


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_fields_have_the_language_s_number_of_forms(language: str) -> None:
    forms = {"en": 2, "ru": 3}[language]
    for key, template in MESSAGES[language].items():
        for _, name, spec, _ in string.Formatter().parse(template):
            if name is not None and spec and "|" in spec:
                assert len(spec.split("|")) == forms, (language, key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_renders_and_fits_telegram(language: str) -> None:
    t = Texts(language)
    for key, template in MESSAGES[language].items():
        values = {name: 7 for name, _ in fields(template)}
        text = t(key, **values)
        assert visible_length(text) <= MESSAGE_LIMIT, key
        if key.startswith("cmd_"):
            assert 3 <= len(text) <= 256, key  # BotCommand.description
        if key.startswith("btn_") or key.startswith("event_button"):
            assert len(plain(text)) <= BUTTON_LABEL_LIMIT + 16, key
    assert {f"cmd_{c}" for c in COMMANDS} <= set(MESSAGES[language])


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
        "Ей нужен перерыв от этого занятия. Снова можно через 9 минут 42 секунды.")
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
        assert all(isinstance(v, str) and v for v in page.values())
    assert "dur_min_s" in PAGE_KEYS and "web_go" in PAGE_KEYS


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
