"""Settings: /settings (notifications, language, timezone, the daily reward's state),
the shortcuts /notify on|off and /timezone <name>, and their buttons - including the
"stop these messages" button under every notification."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import keyboards
from bot.game import Game, InvalidArgument
from bot.logs import UpdateLog
from bot.responder import Responder
from bot.texts import Html, Texts


def settings_screen(texts: Texts, s: dict[str, Any]) -> tuple[Html, InlineKeyboardMarkup]:
    daily = s["daily"]
    lines: list[str] = [
        texts("settings_title"),
        "",
        texts("settings_notifications_on" if s["notifications"] else "settings_notifications_off"),
        texts("settings_language", language=texts(f"lang_{s['language']}")),
        texts("settings_timezone", timezone=s["timezone"]),
        (texts("settings_daily_ready", streak=daily["streak"]) if daily["available"]
         else texts("settings_daily_wait", streak=daily["streak"],
                    wait=texts.until(daily["available_at"], s.get("as_of")))),
    ]
    return texts.lines(lines), keyboards.settings(texts, s, keyboards.new_nonce())


def _speak(texts: Texts, s: dict[str, Any], language_code: str | None) -> None:
    """After a language change, answer in the new language."""
    texts.use(Texts.for_user(language_code, s["language"]).language)


async def settings_command(message: Message, game: Game, texts: Texts, responder: Responder) -> None:
    if message.from_user is None:
        return
    await responder.send(*settings_screen(texts, await game.player_settings(message.from_user.id)))


async def settings_button(query: CallbackQuery, game: Game, texts: Texts, responder: Responder) -> None:
    await responder.show(*settings_screen(texts, await game.player_settings(query.from_user.id)))


async def notify_command(message: Message, command: CommandObject, game: Game, texts: Texts,
                         responder: Responder, update_log: UpdateLog) -> None:
    if message.from_user is None:
        return
    arg = (command.args or "").strip().lower()
    if arg not in ("on", "off"):
        await responder.send(texts("notify_usage"))
        return
    update_log.action = f"notify:{arg}"
    await game.set_player_setting(message.from_user.id, "notifications", arg)
    await responder.send(texts("notify_on_done" if arg == "on" else "notify_off_done"))


async def notify_button(query: CallbackQuery, callback_data: keyboards.Notify, game: Game, texts: Texts,
                        responder: Responder, update_log: UpdateLog) -> None:
    value = "on" if callback_data.on else "off"
    update_log.action = f"notify:{value}"
    s = await game.set_player_setting(query.from_user.id, "notifications", value)
    responder.toast = texts("notify_on_toast" if callback_data.on else "notify_off_toast")
    if callback_data.src == "s":
        await responder.show(*settings_screen(texts, s))
    # From a notification: the toast says it; the notification itself stays as it was.


async def language_button(query: CallbackQuery, callback_data: keyboards.Language, game: Game, texts: Texts,
                          responder: Responder, update_log: UpdateLog) -> None:
    update_log.action = f"language:{callback_data.value}"
    s = await game.set_player_setting(query.from_user.id, "language", callback_data.value)
    _speak(texts, s, query.from_user.language_code)
    responder.toast = texts("language_toast", language=texts(f"lang_{s['language']}"))
    await responder.show(*settings_screen(texts, s))


async def timezone_command(message: Message, command: CommandObject, game: Game, texts: Texts,
                           responder: Responder, update_log: UpdateLog) -> None:
    if message.from_user is None:
        return
    value = (command.args or "").strip()
    if not value:
        s = await game.player_settings(message.from_user.id)
        await responder.send(texts("timezone_usage", timezone=s["timezone"]))
        return
    update_log.action = "timezone"
    try:
        s = await game.set_player_setting(message.from_user.id, "timezone", value[:64])
    except InvalidArgument:
        await responder.send(texts("timezone_unknown", value=value[:64]))
        return
    await responder.send(texts("timezone_set", timezone=s["timezone"]))


def make_router() -> Router:
    router = Router(name="settings")
    router.message.register(settings_command, Command("settings"))
    router.message.register(notify_command, Command("notify"))
    router.message.register(timezone_command, Command("timezone"))
    router.callback_query.register(settings_button, keyboards.Nav.filter(F.to == "settings"))
    router.callback_query.register(notify_button, keyboards.Notify.filter())
    router.callback_query.register(language_button, keyboards.Language.filter())
    return router
