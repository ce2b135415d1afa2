"""Texts and keyboards without the network: every language complete, every refusal
worded, durations for people, escaping, and callback data within Telegram's 64 bytes."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from bot import game, keyboards
from bot.i18n import LOCALES
from bot.messages import MESSAGES
from bot.texts import COMMANDS, LANGUAGES, Html, Texts, visible_length

T = Texts("en")


def test_every_language_has_every_key() -> None:
    """Every key is in every catalogue, translated (gettext would fall back to English
    without a word; tests/bot/test_catalogues.py checks the catalogues in full)."""
    for language in LANGUAGES[1:]:
        with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
            catalog = read_po(f, locale=language)
        for key, message in MESSAGES.items():
            entry = catalog.get(message.singular)
            assert entry is not None and all(entry.string if message.plural else [entry.string]), (language, key)


def _descendants(cls: type) -> set[type]:
    return {c for sub in cls.__subclasses__() for c in {sub, *_descendants(sub)}}


def test_every_game_error_has_its_own_refusal_text() -> None:
    codes = {cls.code for cls in _descendants(game.GameError)}
    assert codes == {"not_enough_energy", "event_not_open", "on_cooldown", "waifu_not_found",
                     "player_not_registered", "invalid_argument", "request_key_conflict", "choice_already_made",
                     "limit_reached", "unavailable",
                     # 0013 (issue 19)
                     "not_enough_coins", "item_not_found", "not_in_inventory", "not_group_member",
                     "group_event_not_open", "not_group_admin"}
    for code in codes:
        assert T.refusal(code, {}) != T("err_unexpected"), code
    assert T.refusal("something_new", {}) == T("err_unexpected")


def test_refusals_use_the_numbers_in_the_detail() -> None:
    assert T.refusal("not_enough_energy", {"energy_needed": 30, "energy": 12, "enough_at": None}) == (
        "Not enough energy: this needs 30 ⚡, there is 12. Enough in a moment.")
    assert T.refusal("on_cooldown", {"remaining_seconds": 3599}) == (
        "She needs a break from this one. Ready again in 59 min 59 s.")  # not "1 h" (issue 21)
    assert T.refusal("choice_already_made", {}) == "You already chose from this list."
    assert T.refusal("limit_reached", {"template_code": "sakura", "waifu_id": 7, "limit": 1}) == (
        T("err_already_adopted"))


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "a moment"), (0.2, "1 s"), (42, "42 s"), (60, "1 min"), (185, "3 min 5 s"), (582, "9 min 42 s"),
    (599, "9 min 59 s"), (600, "10 min"), (601, "10 min 1 s"), (3540, "59 min"), (3599, "59 min 59 s"),
    (3599.5, "1 h"), (3600, "1 h"), (3601, "1 h 1 min"), (3660, "1 h 1 min"), (90061, "25 h 2 min"),
    (-5, "a moment"),
])
def test_durations_read_naturally(seconds: float, shown: str) -> None:
    assert T.duration(seconds) == shown


def test_values_are_escaped_and_html_is_kept() -> None:
    assert T("menu", name="<b>Tom & Jerry</b>") == "Hi, &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;! What shall we do?"
    assert T("card_title", name=Html("<i>x</i>"), level=2) == "<b><i>x</i></b> · level 2"
    assert visible_length("<b>a&amp;b</b> 🙂") == 6  # the emoji is two UTF-16 units


def test_long_lists_are_cut_at_whole_lines_within_the_limit() -> None:
    lines = [f"<b>line {n}</b> " + "x" * 200 for n in range(100)]
    joined = T.lines(lines)
    assert visible_length(joined) <= 4096
    assert joined.endswith("more") and joined.count("<b>") == joined.count("</b>")


def test_callback_data_fits_64_bytes_in_the_worst_case() -> None:
    longest = keyboards.Join(waifu_id=2**63 - 1, code="z" * 32, nonce=keyboards.new_nonce()).pack()
    assert len(longest.encode()) <= 64
    assert keyboards.Join.unpack(longest).waifu_id == 2**63 - 1
    nonces = {keyboards.new_nonce() for _ in range(10_000)}
    assert len(nonces) == 10_000 and all(len(n) == 8 for n in nonces)


def test_help_lists_every_command_a_handler_answers() -> None:
    """One list (texts.COMMANDS) makes the command menu and /help: a command a handler
    answers but the list lacks fails here, so neither can drift."""
    from aiogram.filters import Command

    from bot.handlers import build_routers

    answered: set[str] = set()
    for router in build_routers():
        for handler in router.message.handlers:
            for f in handler.filters or []:
                if isinstance(f.callback, Command):
                    answered |= {c for c in f.callback.commands if isinstance(c, str)}
    assert answered == set(COMMANDS), answered ^ set(COMMANDS)
    for texts in (T, Texts("ru")):
        listed = [line for line in texts.help().splitlines() if line.startswith("/")]
        assert listed == [texts("help_command", command=c, description=texts(f"cmd_{c}")) for c in COMMANDS]
