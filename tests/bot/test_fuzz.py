"""Fuzzing the chat: random callback data, message texts and player names through the
real dispatcher, database and strict Bot API stand-in. No handler may fail (the
catch-all apology is never sent), every callback query is answered exactly once, and
every message the bot sends is one Telegram accepts (the stand-in refuses bad HTML,
long texts and bad buttons, which would surface here as an apology)."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.dev.local_botapi import Player, TelegramStub, callback_id_of
from bot.texts import COMMANDS, Texts
from tests.bot.conftest import Harness

T = Texts("en")
APOLOGY = T("err_unexpected")
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_ids = itertools.count(500_000)


@pytest.fixture(autouse=True)
def _no_flood_limits(stub: TelegramStub) -> None:
    """Hypothesis sends faster than any person (and Telegram would slow it down with 429s,
    which the bot waits out): the flood limits are tested in test_notifications.py."""
    stub.limits = None

# Telegram never delivers NUL in names or texts (and PostgreSQL text cannot hold it).
text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
near_valid = st.builds(
    lambda prefix, number, code, nonce: f"{prefix}:{number}:{code}:{nonce}",
    st.sampled_from(["j", "c", "e", "a", "n"]),
    st.one_of(st.integers(-(2**70), 2**70), st.just(1), st.just(2)),
    st.one_of(st.sampled_from(["walk", "cafe", "gift", "nope"]), st.text(string.ascii_letters + "_:", max_size=34)),
    st.text(string.ascii_letters + string.digits + "-_", max_size=17),
)
callback_data = st.one_of(
    text.filter(lambda s: len(s.encode()) <= 64),
    st.builds(lambda p, rest: f"{p}:{rest}", st.sampled_from(["j", "c", "e", "a", "n"]), text),
    near_valid.filter(lambda s: len(s.encode()) <= 64),
)
message_text = st.one_of(
    text.filter(lambda s: s.strip() != ""),
    st.builds(lambda c, sep, rest: f"/{c}{sep}{rest}", st.sampled_from([*COMMANDS, "unknown", "START"]),
              st.sampled_from(["", " ", "@waifu_test_bot ", "@other_bot "]), text),
)


def no_apology(h: Harness) -> None:
    for call in h.stub.calls:
        shown = call.params.get("text") or ""
        assert APOLOGY not in shown, (call.method, call.params)


async def player_with_waifu(h: Harness) -> Player:
    player = h.stub.user(next(_ids), "Fuzz")
    await h.send(player.message("/start"))
    await h.send(player.press("Sakura"))
    return player


@FUZZ
@given(data=callback_data)
async def test_any_callback_data_is_answered_once_and_never_fails(harness: Harness, data: str) -> None:
    h = harness
    player = await player_with_waifu(h)
    tap = player.press(data=data)
    await h.send(tap)
    assert len(h.stub.answers(callback_id_of(tap))) == 1
    no_apology(h)


@FUZZ
@given(body=message_text)
async def test_any_message_text_never_fails(harness: Harness, body: str) -> None:
    h = harness
    player = await player_with_waifu(h)
    await h.send(player.message(body))
    no_apology(h)


@FUZZ
@given(first_name=text.filter(lambda s: s.strip() != "").map(lambda s: s[:64]),
       username=st.one_of(st.none(), st.text(string.ascii_letters + string.digits + "_", min_size=5, max_size=32)),
       language_code=st.one_of(st.none(), st.text(string.ascii_letters + "-", max_size=10)))
async def test_any_player_name_makes_valid_messages(harness: Harness, first_name: str, username: str | None,
                                                    language_code: str | None) -> None:
    h = harness
    player = h.stub.user(next(_ids), first_name, username=username, language_code=language_code)
    await h.send(player.message("/start"))
    tap = player.press("Yuki")
    await h.send(tap)
    await h.send(player.message("/menu"))
    assert f"Hi, {first_name}!" in player.last()["text"]
    assert all(call.status == 200 for call in h.stub.calls), [c.response for c in h.stub.calls if c.status != 200]
    no_apology(h)
