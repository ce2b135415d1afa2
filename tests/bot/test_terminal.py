"""The terminal chat (bot/dev/terminal.py) shows the player what Telegram would, and never
the Bot API's refusals (the bot handles those itself)."""

from __future__ import annotations

from bot.dev.terminal import Style, TerminalChat
from tests.bot.conftest import Harness


async def test_refresh_of_an_unchanged_card_shows_a_toast_not_a_refusal(harness: Harness) -> None:
    h = harness
    cleo = h.stub.user(2103, "Cleo")
    chat = TerminalChat(h.stub, cleo, h.send, Style(False))
    assert "Welcome, Cleo!" in await chat.say("/start")
    number = next(n for n, b in enumerate(chat.buttons, 1) if b["text"].endswith("Sakura"))
    await chat.say(str(number))
    card = await chat.say("/profile")
    assert "Sakura · level 1" in card
    refresh = next(n for n, b in enumerate(chat.buttons, 1) if "Refresh" in b["text"])
    # The card is full and unchanged: Telegram refuses the edit ("message is not modified").
    shown = await chat.say(str(refresh))
    refused = [c for c in h.stub.calls if c.method.lower() == "editmessagetext" and c.status == 400]
    assert refused, "the stand-in should have refused the identical edit"
    assert "Bot API" not in shown and "refused" not in shown
    assert shown.strip() == "💬 Up to date"
