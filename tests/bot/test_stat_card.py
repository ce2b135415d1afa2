"""The stat card as a photo (bot/card_photos.py): uploaded once per template, language and
rarity, then sent by the file_id kept in PostgreSQL (shared by every bot process); the
stats, always fresh, in the caption; a file_id Telegram refuses is replaced by a new upload."""

from __future__ import annotations

import io

from PIL import Image

from bot import portraits
from bot.dev.local_botapi import Player
from tests.bot.conftest import Harness


async def adopt(h: Harness, player: Player, name: str = "Sakura") -> int:
    await h.send(player.message("/start"))
    await h.send(player.press(name))
    return await h.admin.fetchval("SELECT max(id) FROM game.waifus WHERE owner_id = $1", player.id)


def photo_sends(h: Harness) -> list[dict]:
    """Each sendPhoto: status, and whether it uploaded bytes or named a file_id."""
    return [{"status": c.status, "upload": not isinstance(c.params.get("photo"), str)
             or c.params["photo"].startswith("attach://"), "photo": c.params.get("photo")}
            for c in h.stub.calls_of("sendPhoto")]


async def cached(h: Harness) -> list[dict]:
    return [dict(r) for r in await h.admin.fetch(
        "SELECT bot_id, template_code, language, rarity, file_id FROM game.card_photos ORDER BY language")]


async def test_the_second_card_is_sent_by_file_id_without_an_upload(harness: Harness) -> None:
    h = harness
    ann = h.stub.user(5001, "Ann")
    waifu_id = await adopt(h, ann)
    await h.send(ann.message("/profile"))
    first = ann.last()
    assert h.stub.uploads == 1 and photo_sends(h)[-1]["upload"]
    file_id = first["photo"][-1]["file_id"]
    assert first["caption"].startswith("Sakura · level 1")
    assert [b["text"] for b in Player.buttons(first)] == ["🔄 Refresh", "🎉 Events", "⬅️ Menu"]
    # what was uploaded: her portrait with the rarity's band, a PNG
    picture = Image.open(io.BytesIO(portraits.card_picture("sakura", "common", "common")))
    assert picture.format == "PNG" and (first["photo"][-1]["width"], first["photo"][-1]["height"]) == picture.size
    assert await cached(h) == [{"bot_id": h.bot.id, "template_code": "sakura", "language": "en",
                                "rarity": "common", "file_id": file_id}]

    # Her stats move; the next card is the same picture by its file_id, with the new stats.
    await h.admin.execute("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 37, "
                          "'last_restore', extract(epoch FROM now())) WHERE id = $1", waifu_id)
    await h.send(ann.message("/profile"))
    assert photo_sends(h)[-1] == {"status": 200, "upload": False, "photo": file_id}
    assert h.stub.uploads == 1
    assert "⚡ Energy ▰▰▰▱▱▱▱▱▱▱ 37/100" in ann.last()["caption"]

    # Another player with the same companion, through another process: still no upload.
    bea = h.stub.user(5002, "Bea")
    await adopt(h, bea)
    await h.fresh_dispatcher().feed_raw_update(h.bot, bea.press("Stats"))
    assert photo_sends(h)[-1] == {"status": 200, "upload": False, "photo": file_id}
    assert h.stub.uploads == 1


async def test_a_russian_card_is_its_own_picture_and_the_caption_speaks_russian(harness: Harness) -> None:
    h = harness
    ann, ivan = h.stub.user(5003, "Ann"), h.stub.user(5004, "Иван", language_code="ru")
    await adopt(h, ann)
    await adopt(h, ivan, "Сакура")
    await h.send(ann.message("/profile"))
    await h.send(ivan.message("/profile"))
    assert h.stub.uploads == 2  # the rarity's word is drawn on it: one picture per language
    assert ivan.last()["caption"].startswith("Сакура · уровень 1")
    assert [(r["language"], r["rarity"]) for r in await cached(h)] == [("en", "common"), ("ru", "common")]
    await h.send(ivan.message("/profile"))
    assert h.stub.uploads == 2


async def test_a_file_id_telegram_refuses_is_uploaded_again_and_replaced(harness: Harness) -> None:
    h = harness
    cat = h.stub.user(5005, "Cat")
    await adopt(h, cat)
    await h.send(cat.message("/profile"))
    old = (await cached(h))[0]["file_id"]
    h.stub.forget_files()  # e.g. the token moved to another bot: Telegram knows none of them
    await h.send(cat.message("/profile"))
    sends = photo_sends(h)
    assert [(s["status"], s["upload"]) for s in sends[-2:]] == [(400, False), (200, True)]
    assert h.stub.calls_of("sendPhoto")[-2].response["description"] == \
        "Bad Request: wrong file identifier/HTTP URL specified"
    new = cat.last()["photo"][-1]["file_id"]
    assert new != old and [r["file_id"] for r in await cached(h)] == [new]
    assert cat.last()["caption"].startswith("Sakura · level 1")  # the player saw nothing of it
    await h.send(cat.message("/profile"))
    assert photo_sends(h)[-1] == {"status": 200, "upload": False, "photo": new}


async def test_refresh_edits_the_caption_and_the_other_buttons_still_work(harness: Harness) -> None:
    h = harness
    dan = h.stub.user(5006, "Dan")
    waifu_id = await adopt(h, dan)
    await h.send(dan.press("Stats"))  # from the menu (a text message): a new photo message
    card = dan.last()
    assert card["photo"]
    await h.admin.execute("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('mood', 11) "
                          "WHERE id = $1", waifu_id)
    await h.send(dan.press("Refresh", message=card))
    assert dan.last()["message_id"] == card["message_id"]  # the same message, its caption edited
    assert "😊 Mood ▰▱▱▱▱▱▱▱▱▱ 11/100" in dan.last()["caption"]
    assert h.stub.calls_of("editMessageCaption")[-1].status == 200
    assert h.stub.uploads == 1
    # Events under a photo: Telegram cannot turn it into text, so the list comes as a new message.
    await h.send(dan.press("Events", message=dan.last()))
    assert "Walk in the park" in dan.last()["text"]
    await h.send(dan.press("Stats", message=dan.last()))  # the Stats button under the events list
    assert dan.last()["photo"] and h.stub.uploads == 1
    await h.send(dan.press("Menu", message=dan.last()))
    assert dan.last()["text"] == "Hi, Dan! What shall we do?"


async def test_the_collection_shows_each_waifus_card(harness: Harness) -> None:
    h = harness
    eve = h.stub.user(5007, "Eve")
    await adopt(h, eve)
    await h.send(eve.message("/waifus"))
    await h.send(eve.press("➕ Yuki"))
    await h.send(eve.message("/waifus"))
    collection = eve.last()
    # a row per waifu: her card, and (unless she is the one already) the button to pick her
    assert [b["text"] for b in Player.buttons(collection)][:3] == ["📊 Sakura", "📊 Yuki", "⭐ Yuki"]
    await h.send(eve.press("📊 Yuki", message=collection))
    card = eve.last()
    assert card["photo"] and card["caption"].startswith("Yuki · level 1")
    assert h.stub.uploads == 1
    assert (await cached(h))[0]["rarity"] == "rare"  # her template's rarity, her frame
