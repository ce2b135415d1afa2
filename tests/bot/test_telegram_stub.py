"""The Bot API stand-in refuses what Telegram refuses (through aiogram's real HTTP path,
with a bot that has no retry middleware, so each refusal surfaces as aiogram raises it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError, TelegramRetryAfter
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot.dev.local_botapi import TelegramStub, parse_html


@pytest.fixture
async def raw_bot(stub: TelegramStub) -> AsyncIterator[Bot]:
    bot = Bot(stub.token, session=AiohttpSession(api=TelegramAPIServer.from_base(stub.url)),
              default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    yield bot
    await bot.session.close()


def keyboard(**button: object) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="b", **button)]])


@pytest.mark.parametrize(("source", "text", "entities"), [
    ("plain", "plain", []),
    ("<b>Ann</b> &lt;3 &amp; &quot;x&quot; &#128512;", "Ann <3 & \"x\" 😀",
     [{"type": "bold", "offset": 0, "length": 3}]),
    ("🙂<i>a<b>b</b></i>", "🙂ab", [{"type": "italic", "offset": 2, "length": 2},
                                    {"type": "bold", "offset": 3, "length": 1}]),
    ('<a href="https://x.test/?a=1&amp;b=2">link</a>', "link",
     [{"type": "text_link", "offset": 0, "length": 4, "url": "https://x.test/?a=1&b=2"}]),
])
def test_html_is_parsed_like_telegram(source: str, text: str, entities: list) -> None:
    assert parse_html(source) == (text, entities)


@pytest.mark.parametrize("source", ["<b>unclosed", "a < b", "Tom & Jerry", "<b>x</i>", "</b>", "<script>x</script>",
                                    "<span>x</span>", "&nbsp;", "<b>a</b></b>"])
def test_malformed_html_is_refused(source: str) -> None:
    with pytest.raises(Exception, match="can't parse entities"):
        parse_html(source)


async def test_refusals(stub: TelegramStub, raw_bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await raw_bot.send_message(77, "hi")
    ann = stub.user(77, "Ann")
    ann.message("/start")  # the chat exists once the user wrote
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await raw_bot.send_message(77, "x" * 4097)
    await raw_bot.send_message(77, "<b>" + "x" * 4096 + "</b>")  # the limit counts text, not tags
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await raw_bot.send_message(77, "<b>Ann")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await raw_bot.send_message(77, "hi", reply_markup=keyboard(callback_data="x" * 65))
    with pytest.raises(TelegramBadRequest, match="HTTPS"):
        await raw_bot.send_message(77, "hi", reply_markup=keyboard(web_app=WebAppInfo(url="http://x.test/")))

    sent = await raw_bot.send_message(77, "<b>hi</b>", reply_markup=keyboard(callback_data="a"))
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await raw_bot.edit_message_text("<b>hi</b>", chat_id=77, message_id=sent.message_id,
                                        reply_markup=keyboard(callback_data="a"))
    await raw_bot.edit_message_text("<b>hi</b>", chat_id=77, message_id=sent.message_id)  # the keyboard goes
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await raw_bot.edit_message_text("x", chat_id=77, message_id=999)

    tap = ann.press(data="a", message=ann.last())
    callback_id = tap["callback_query"]["id"]
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await raw_bot.answer_callback_query(callback_id, text="x" * 201)
    await raw_bot.answer_callback_query(callback_id, text="ok")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await raw_bot.answer_callback_query(callback_id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await raw_bot.answer_callback_query("never-sent")


async def test_web_app_buttons_only_in_private_chats(stub: TelegramStub, raw_bot: Bot) -> None:
    group = stub.user(78, "Bo", chat_type="group", chat_id=-900)
    group.message("hi")
    with pytest.raises(TelegramBadRequest, match="BUTTON_TYPE_INVALID"):
        await raw_bot.send_message(-900, "hi", reply_markup=keyboard(web_app=WebAppInfo(url="https://x.test/")))


async def test_429_on_demand_and_getupdates_conflict(stub: TelegramStub, raw_bot: Bot) -> None:
    stub.fail_next(1, method="getMe", retry_after=7)
    with pytest.raises(TelegramRetryAfter) as flood:
        await raw_bot.get_me()
    assert flood.value.retry_after == 7
    assert (await raw_bot.get_me()).username == "waifu_test_bot"
    await raw_bot.set_webhook("https://x.test/hook", secret_token="abc")
    with pytest.raises(TelegramConflictError):
        await raw_bot.get_updates(timeout=0)
    await raw_bot.delete_webhook()
    stub.enqueue(stub.user(79, "Cy").message("/start"))
    updates = await raw_bot.get_updates(timeout=1)
    assert [u.message.text for u in updates] == ["/start"]


async def test_photos_are_refused_like_telegram_refuses_them(stub: TelegramStub, raw_bot: Bot) -> None:
    from aiogram.types import BufferedInputFile

    from bot import portraits

    stub.user(7001, "Ann").message("hi")  # the chat exists
    png = portraits.card_picture("rin", "rare", "rare")
    sent = await raw_bot.send_photo(7001, BufferedInputFile(png, "card.png"), caption="<b>Rin</b>")
    assert sent.caption == "Rin" and sent.photo is not None and stub.uploads == 1
    again = await raw_bot.send_photo(7001, sent.photo[-1].file_id)
    assert again.photo is not None and again.photo[-1].file_id == sent.photo[-1].file_id and stub.uploads == 1
    refusals = {
        "IMAGE_PROCESS_FAILED": raw_bot.send_photo(7001, BufferedInputFile(b"not an image", "x.png")),
        "wrong file identifier": raw_bot.send_photo(7001, "AgACAgIAAxk-never-handed-out"),
        "message caption is too long": raw_bot.send_photo(7001, sent.photo[-1].file_id, caption="x" * 1025),
        "there is no text in the message to edit": raw_bot.edit_message_text("x", chat_id=7001,
                                                                             message_id=sent.message_id),
    }
    for description, call in refusals.items():
        with pytest.raises(TelegramBadRequest, match=description):
            await call
    edited = await raw_bot.edit_message_caption(chat_id=7001, message_id=sent.message_id, caption="Rin, lv 2")
    assert not isinstance(edited, bool) and edited.caption == "Rin, lv 2"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await raw_bot.edit_message_caption(chat_id=7001, message_id=sent.message_id, caption="Rin, lv 2")
    stub.forget_files()
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await raw_bot.send_photo(7001, sent.photo[-1].file_id)
