"""Portraits (bot/portraits.py): one committed SVG per template of the catalogue, exactly
what the generator makes; the same picture on the PNG stat card; served to the Mini App."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from bot import portraits

SVG_NS = "{http://www.w3.org/2000/svg}"


def test_committed_portraits_are_what_the_generator_makes():
    assert portraits.main(["--check"]) == 0
    files = sorted(p.name for p in portraits.PORTRAITS_DIR.glob("*.svg"))
    assert files == sorted(portraits.expected_files())
    # deterministic: twice the same bytes
    assert portraits.svg("sakura", "common") == portraits.svg("sakura", "common")


async def test_one_portrait_per_template_with_its_rarity(admin):
    templates = {r["code"]: r["rarity"] for r in await admin.fetch("SELECT code, rarity FROM game.waifu_templates")}
    assert templates == portraits.SEEDED_RARITY
    assert set(templates) <= set(portraits.LOOKS)
    for code, rarity in templates.items():
        root = ET.fromstring((portraits.PORTRAITS_DIR / f"{code}.svg").read_text())
        assert root.tag == f"{SVG_NS}svg" and root.get("viewBox") == "0 0 200 240"
        # the frame is the rarity's colour, with one gem per step of rarity
        frame = [e for e in root if e.get("stroke") == portraits.FRAME[rarity] and e.tag == f"{SVG_NS}rect"]
        gems = [e for e in root if e.tag == f"{SVG_NS}polygon" and e.get("fill") == portraits.FRAME[rarity]]
        assert len(frame) == 1 and len(gems) == portraits.GEMS[rarity], code
    # every template looks different
    assert len({portraits.svg(code, "common") for code in templates}) == len(templates)


def test_stat_card_is_a_png_with_the_portrait_and_the_bars():
    waifu = {"name": "Сакура", "template_code": "sakura", "level": 3, "xp": 650, "level_xp": 400,
             "next_level_xp": 900, "energy": 100, "max_energy": 100, "mood": 0, "loyalty": 50, "max_stat": 100}
    card = Image.open(io.BytesIO(portraits.stat_card(waifu, "epic", {"level": "Уровень"})))
    assert card.format == "PNG" and card.size == (640, 320)
    pixels = card.convert("RGB")
    # the epic frame (gold) at the portrait's left edge; the portrait's background inside it
    assert pixels.getpixel((16 + 4, 16 + 150)) == (0xF5, 0xB3, 0x01)
    assert pixels.getpixel((16 + 15, 16 + 15)) == (0xFF, 0xE4, 0xEF)
    # the energy bar full (green at its right end), the mood bar empty (track colour)
    assert pixels.getpixel((640 - 30, 112 + 48 + 29)) == (0x22, 0xC5, 0x5E)
    assert pixels.getpixel((640 - 30, 112 + 96 + 29)) == (0xE9, 0xE4, 0xF2)
    assert portraits.FONT_PATH.exists(), "fonts-dejavu-core: Cyrillic names on the card"


async def test_portraits_are_served_to_the_mini_app():
    app = web.Application()
    portraits.add_portrait_routes(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/webapp/portraits/yuki.svg")
        assert response.status == 200 and response.content_type == "image/svg+xml"
        assert await response.text() == (portraits.PORTRAITS_DIR / "yuki.svg").read_text()
        assert (await client.get("/webapp/portraits/../portraits.py")).status in (403, 404)
        assert (await client.get("/webapp/portraits/")).status in (403, 404)


def test_card_picture_is_the_portrait_over_the_rarity_band_and_its_design_names_what_is_drawn():
    png = portraits.card_picture("akane", "epic", "эпическая")
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG" and picture.size == (400, 480 + portraits.CARD_BAND)
    pixels = picture.convert("RGB")
    assert pixels.getpixel((2, 480 + 2)) == (0xF5, 0xB3, 0x01)  # the band in the epic gold
    assert pixels.getpixel((30, 30)) == (0xFF, 0xE9, 0xDC)  # her background inside the frame
    design = portraits.card_design("akane", "epic", "эпическая")
    assert len(design) == 16 and design == portraits.card_design("akane", "epic", "эпическая")
    # another word, rarity or template is another picture: another design, another file_id
    assert len({design, portraits.card_design("akane", "epic", "epic"), portraits.card_design("akane", "rare", "rare"),
                portraits.card_design("rin", "epic", "эпическая")}) == 4
