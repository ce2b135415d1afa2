"""Issue 19 together: leaderboards (/top, global in a private chat, the group's in a group),
group chats (members register by using the bot there; /group_events on|off by an admin,
checked with Telegram; the join button under a group event's message) and gifts to
another member's companion (/gift <item> as a reply to their message).

A group speaks one language (game.groups.language): the language of the admin who first
turns its events on, changed by an admin with /group_language en|ru. The messages to the
whole group (events, their results, these confirmations) are in it; a reply to one member's
command (/top, /gift) is in that member's language.

The bot runs in groups with privacy mode on: it sees commands and its own buttons only,
and each of those registers the sender as a member of the group (api.register_group_member).
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Chat, InlineKeyboardMarkup, Message, User

from bot import keyboards_game
from bot.game import Game
from bot.handlers.collection import gift_text
from bot.handlers.common import display_name
from bot.logs import UpdateLog
from bot.responder import Responder
from bot.texts import DEFAULT_LANGUAGE, LANGUAGES, Html, Texts

GROUP_TYPES = {"group", "supergroup"}
ADMIN_STATUSES = {"creator", "administrator"}


def in_group(chat: Chat | None) -> bool:
    return chat is not None and chat.type in GROUP_TYPES


async def register_member(game: Game, chat: Chat, user: User) -> dict[str, Any]:
    """The player and their membership of this group (both idempotent upserts)."""
    await game.register_player(user.id, user.username, user.first_name, user.language_code)
    return await game.register_group_member(chat.id, user.id, chat.title)


async def reply(game: Game, responder: Responder, chat: Chat, text: str,
                markup: InlineKeyboardMarkup | None = None) -> None:
    """A reply; in a group only within the shared limit group_send (Telegram allows 20
    messages a minute per group, and the group sender takes from the same budget): a reply
    over it is dropped rather than have Telegram refuse the group's next messages."""
    if in_group(chat) and await game.rate_limit("group_send", str(chat.id)) > 0:
        return
    await responder.send(text, markup)


async def top_screen(game: Game, texts: Texts, telegram_id: int, board: str,
                     chat_id: int | None) -> tuple[Html, InlineKeyboardMarkup]:
    b = await game.leaderboard(telegram_id, board, chat_id)
    title = f"top_title_{'group_' if chat_id is not None else ''}{board}"
    lines: list[str] = [texts(title), ""]
    lines += [texts("top_line", rank=r["rank"], name=r["name"] or "?", xp=r["xp"]) for r in b["top"]] or [
        texts("top_empty")]
    me = b["me"]
    if not me["in_top"]:
        lines += ["", texts("top_me" if me["exact"] else "top_me_about", rank=me["rank"], xp=me["xp"])]
    if board == "week":
        lines += ["", texts("top_week_resets")]
    return texts.lines(lines), keyboards_game.top(texts, board)


async def top_command(message: Message, command: CommandObject, game: Game, texts: Texts,
                      responder: Responder) -> None:
    user = message.from_user
    if user is None:
        return
    board = "all" if (command.args or "").strip().lower() in ("all", "всё", "все") else "week"
    chat_id = None
    if in_group(message.chat):
        await register_member(game, message.chat, user)
        chat_id = message.chat.id
    await reply(game, responder, message.chat, *await top_screen(game, texts, user.id, board, chat_id))


async def top_button(query: CallbackQuery, callback_data: keyboards_game.Top, game: Game, texts: Texts,
                     responder: Responder) -> None:
    chat = query.message.chat if query.message is not None else None
    chat_id = None
    if in_group(chat):
        assert chat is not None
        await register_member(game, chat, query.from_user)
        chat_id = chat.id
    await responder.show(*await top_screen(game, texts, query.from_user.id, callback_data.board, chat_id))


async def group_events_command(message: Message, command: CommandObject, bot: Bot, game: Game, texts: Texts,
                               responder: Responder, update_log: UpdateLog) -> None:
    user = message.from_user
    if user is None:
        return
    if not in_group(message.chat):
        await responder.send(texts("group_only"))
        return
    choice = (command.args or "").strip().lower()
    if choice not in ("on", "off"):
        await reply(game, responder, message.chat, texts("group_events_usage"))
        return
    update_log.action = "group_events"
    await register_member(game, message.chat, user)
    # Telegram knows who administers the group; the database trusts this answer.
    member = await bot.get_chat_member(message.chat.id, user.id)
    is_admin = member.status in ADMIN_STATUSES
    result = await game.set_group_events(message.chat.id, user.id, choice == "on", is_admin)
    if result["events_on"]:
        # The group takes this admin's language unless it has one already.
        language = (await game.set_group_language(message.chat.id, user.id, None, is_admin))["language"]
    else:
        language = await group_language(game, message.chat.id)
    group_texts = Texts(language or DEFAULT_LANGUAGE)
    await reply(game, responder, message.chat,
                group_texts("group_events_on" if result["events_on"] else "group_events_off"))


async def group_language(game: Game, chat_id: int) -> str | None:
    """The group's language; None: it has none (the bot's default)."""
    return (await game.group_languages([chat_id])).get(chat_id)


async def group_language_command(message: Message, command: CommandObject, bot: Bot, game: Game, texts: Texts,
                                 responder: Responder, update_log: UpdateLog) -> None:
    user = message.from_user
    if user is None:
        return
    if not in_group(message.chat):
        await responder.send(texts("group_only"))
        return
    choice = (command.args or "").strip().lower()
    if choice not in LANGUAGES:
        group_texts = Texts(await group_language(game, message.chat.id) or DEFAULT_LANGUAGE)
        await reply(game, responder, message.chat, group_texts(
            "group_language_usage", language=group_texts(f"lang_{group_texts.language}")))
        return
    update_log.action = "group_language"
    await register_member(game, message.chat, user)
    member = await bot.get_chat_member(message.chat.id, user.id)
    result = await game.set_group_language(message.chat.id, user.id, choice, member.status in ADMIN_STATUSES)
    group_texts = Texts(result["language"])
    await reply(game, responder, message.chat,
                group_texts("group_language_set", language=group_texts(f"lang_{group_texts.language}")))


async def gift_command(message: Message, command: CommandObject, game: Game, texts: Texts,
                       responder: Responder, update_log: UpdateLog) -> None:
    user = message.from_user
    if user is None:
        return
    if not in_group(message.chat):
        await responder.send(texts("gift_private_usage"))
        return
    await register_member(game, message.chat, user)
    replied = message.reply_to_message
    item = (command.args or "").strip().lower()
    target = replied.from_user if replied is not None else None
    if target is None or target.is_bot or not item:
        items = ", ".join(i["code"] for i in (await game.inventory(user.id))["items"]) or "—"
        await reply(game, responder, message.chat, texts("gift_usage", items=items))
        return
    update_log.action = "gift"
    collection = await game.player_waifus(target.id)  # WF005 if they never used the bot
    waifu_id = collection["active_waifu_id"]
    if waifu_id is None:
        await reply(game, responder, message.chat, texts("gift_no_waifu", name=display_name(target)))
        return
    key = f"tg:gift:{message.chat.id}:{message.message_id}"
    result = await game.give_gift(user.id, waifu_id, item, key, message.chat.id)
    await reply(game, responder, message.chat, gift_text(texts, result, giver=display_name(user)))


async def join_button(query: CallbackQuery, callback_data: keyboards_game.GroupJoin, game: Game, texts: Texts,
                      responder: Responder, update_log: UpdateLog) -> None:
    update_log.action = "group_join"
    chat = query.message.chat if query.message is not None else None
    if in_group(chat):
        assert chat is not None
        await register_member(game, chat, query.from_user)
    joined = await game.join_group_event(query.from_user.id, callback_data.event_id)
    await responder.answer(texts("group_joined_again_toast") if joined["replayed"]
                           else texts("group_joined_toast", count=joined["participants"]))


def make_router() -> Router:
    router = Router(name="groups")
    router.message.register(top_command, Command("top"))
    router.message.register(group_events_command, Command("group_events"))
    router.message.register(group_language_command, Command("group_language"))
    router.message.register(gift_command, Command("gift"))
    router.callback_query.register(top_button, keyboards_game.Top.filter())
    router.callback_query.register(join_button, keyboards_game.GroupJoin.filter())
    return router



