"""Portraits of the waifu templates and the stat card's picture the bot sends as a photo.

Every portrait is drawn from one description per template (colours, hairstyle, an
accessory) made of a few primitive shapes, so the same picture comes out as SVG for the
Mini App and as pixels for the PNG stat card (Pillow; no SVG renderer, no system library
beyond the wheel's). No third-party artwork: the shapes are ours, and the output is
deterministic (a test checks the committed SVG files are what this module makes).

    .venv/bin/python -m bot.portraits          # rewrite bot/webapp/static/portraits/*.svg
    .venv/bin/python -m bot.portraits --check  # exit 1 if a committed file is stale

The Mini App loads /webapp/portraits/<template_code>.svg (mounted by `add_portrait_routes`).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from PIL import Image, ImageDraw, ImageFont

PORTRAITS_DIR = Path(__file__).resolve().parent / "webapp" / "static" / "portraits"
WIDTH, HEIGHT = 200, 240
SKIN, SKIN_SHADE, INK, WHITE, BLUSH = "#ffe1cc", "#f4c7ad", "#3a2a2a", "#ffffff", "#ffb3b8"
FRAME = {"common": "#9aa3ad", "rare": "#3b82f6", "epic": "#f5b301"}
GEMS = {"common": 1, "rare": 2, "epic": 3}
FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian's fonts-dejavu-core: Cyrillic too
FONT_BOLD_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@dataclass(frozen=True)
class Look:
    background: str
    hair: str
    eyes: str
    outfit: str
    style: str  # twintails | long | ponytail | bob | short
    accessory: str  # ribbon | glasses | star | flower | ears


# One per template of the catalogue (game.waifu_templates); an unknown code gets DEFAULT.
LOOKS: dict[str, Look] = {
    "sakura": Look("#ffe4ef", "#f49ac1", "#5d8f3a", "#ffffff", "twintails", "ribbon"),
    "yuki": Look("#e3f0ff", "#c3cddd", "#4a78c2", "#2f3e5c", "long", "glasses"),
    "akane": Look("#ffe9dc", "#c8322b", "#d99a1c", "#1f1f1f", "ponytail", "star"),
    "hana": Look("#eaf7e4", "#7a4a2a", "#3f8f4f", "#f6e7b5", "bob", "flower"),
    "rin": Look("#efe6ff", "#2c2c3a", "#9b59d0", "#6d3fa3", "short", "ears"),
}
DEFAULT = Look("#eeeeee", "#6b5b4b", "#5b6b7b", "#8899aa", "short", "none")

# A shape: (kind, geometry, fill, stroke, stroke width). Kinds: rect (x, y, w, h),
# ellipse (cx, cy, rx, ry), polygon (x1, y1, x2, y2, ...).
Shape = tuple[str, tuple[float, ...], str | None, str | None, float]


def shapes(code: str, rarity: str) -> list[Shape]:
    """The portrait of a template as shapes on a WIDTH x HEIGHT canvas, back to front."""
    look = LOOKS.get(code, DEFAULT)
    hair = look.hair
    out: list[Shape] = [("rect", (0, 0, WIDTH, HEIGHT), look.background, None, 0)]
    # Hair behind the head.
    if look.style == "long":
        out.append(("polygon", (46, 100, 154, 100, 166, 236, 34, 236), hair, None, 0))
    elif look.style == "twintails":
        out += [("ellipse", (36, 150, 22, 62), hair, None, 0), ("ellipse", (164, 150, 22, 62), hair, None, 0)]
    elif look.style == "ponytail":
        out.append(("polygon", (140, 60, 186, 86, 176, 200, 150, 120), hair, None, 0))
    elif look.style == "bob":
        out.append(("rect", (44, 96, 112, 82), hair, None, 0))
    out.append(("ellipse", (100, 100, 58, 62), hair, None, 0))
    # Neck, shoulders in the outfit's colour.
    out += [("rect", (88, 150, 24, 34), SKIN_SHADE, None, 0),
            ("ellipse", (100, 246, 84, 66), look.outfit, INK, 1.5),
            ("polygon", (86, 182, 114, 182, 100, 200), SKIN, None, 0)]
    # Face.
    out.append(("ellipse", (100, 116, 46, 52), SKIN, None, 0))
    # Bangs: a zigzag across the forehead.
    out.append(("polygon", (52, 102, 54, 70, 76, 52, 124, 52, 146, 70, 148, 102, 134, 84, 122, 98, 110, 80,
                            98, 96, 86, 80, 74, 98, 64, 84), hair, None, 0))
    # Eyes: white, iris, pupil, light.
    for cx in (80, 120):
        out += [("ellipse", (cx, 120, 11, 13), WHITE, INK, 1.5),
                ("ellipse", (cx, 122, 8, 10), look.eyes, None, 0),
                ("ellipse", (cx, 123, 4, 5), INK, None, 0),
                ("ellipse", (cx - 3, 118, 2.5, 2.5), WHITE, None, 0)]
    out += [("ellipse", (70, 140, 7, 4), BLUSH, None, 0), ("ellipse", (130, 140, 7, 4), BLUSH, None, 0),
            ("polygon", (93, 146, 107, 146, 100, 152), "#d9646e", None, 0)]
    out += _accessory(look)
    # The frame and the rarity's gems.
    frame = FRAME.get(rarity, FRAME["common"])
    out.append(("rect", (3, 3, WIDTH - 6, HEIGHT - 6), None, frame, 6))
    for i in range(GEMS.get(rarity, 1)):
        x = WIDTH - 20 - 16 * i
        out.append(("polygon", (x, 12, x + 6, 19, x, 26, x - 6, 19), frame, WHITE, 1))
    return out


def _accessory(look: Look) -> list[Shape]:
    if look.accessory == "ribbon":
        return [("polygon", (100, 58, 78, 44, 78, 72), "#e63950", INK, 1),
                ("polygon", (100, 58, 122, 44, 122, 72), "#e63950", INK, 1),
                ("ellipse", (100, 58, 6, 6), "#c2183a", None, 0)]
    if look.accessory == "glasses":
        return [("ellipse", (80, 120, 16, 15), None, "#5a5f6a", 2.5),
                ("ellipse", (120, 120, 16, 15), None, "#5a5f6a", 2.5),
                ("rect", (96, 118, 8, 2.5), "#5a5f6a", None, 0)]
    if look.accessory == "star":
        return [("polygon", (136, 64, 141, 76, 154, 76, 144, 84, 148, 97, 136, 89, 124, 97, 128, 84, 118, 76,
                             131, 76), "#ffd23f", INK, 1)]
    if look.accessory == "flower":
        petals: list[Shape] = [("ellipse", (60 + dx, 70 + dy, 7, 7), "#ffffff", INK, 1)
                               for dx, dy in ((0, -8), (8, 0), (0, 8), (-8, 0))]
        return petals + [("ellipse", (60, 70, 5, 5), "#ffcf33", None, 0)]
    if look.accessory == "ears":
        return [("polygon", (56, 66, 62, 26, 84, 52), look.hair, INK, 1),
                ("polygon", (144, 66, 138, 26, 116, 52), look.hair, INK, 1),
                ("polygon", (63, 58, 66, 38, 77, 52), "#f7a6c0", None, 0),
                ("polygon", (137, 58, 134, 38, 123, 52), "#f7a6c0", None, 0)]
    return []


def _num(value: float) -> str:
    return f"{value:g}"


def svg(code: str, rarity: str, title: str | None = None) -> str:
    """The portrait as an SVG document (deterministic: the same input, the same bytes)."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" role="img">',
             f"<title>{escape(title or code)}</title>"]
    for kind, g, fill, stroke, width in shapes(code, rarity):
        paint = f' fill="{fill or "none"}"' + (f' stroke="{stroke}" stroke-width="{_num(width)}"' if stroke else "")
        if kind == "rect":
            parts.append(f'<rect x="{_num(g[0])}" y="{_num(g[1])}" width="{_num(g[2])}" height="{_num(g[3])}"{paint}/>')
        elif kind == "ellipse":
            parts.append(f'<ellipse cx="{_num(g[0])}" cy="{_num(g[1])}" rx="{_num(g[2])}" ry="{_num(g[3])}"{paint}/>')
        else:
            points = " ".join(f"{_num(g[i])},{_num(g[i + 1])}" for i in range(0, len(g), 2))
            parts.append(f'<polygon points="{points}"{paint}/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def portrait_image(code: str, rarity: str, scale: float = 1.0) -> Image.Image:
    """The same shapes as `svg`, drawn with Pillow, `scale` pixels per unit (clipped to the canvas)."""
    image = Image.new("RGB", (round(WIDTH * scale), round(HEIGHT * scale)), WHITE)
    draw = ImageDraw.Draw(image)

    def xy(x: float, y: float) -> tuple[float, float]:
        return x * scale, y * scale

    for kind, g, fill, stroke, width in shapes(code, rarity):
        line = max(1, round(width * scale)) if stroke else 0
        if kind == "rect":
            draw.rectangle((*xy(g[0], g[1]), *xy(g[0] + g[2], g[1] + g[3])), fill=fill, outline=stroke, width=line)
        elif kind == "ellipse":
            box = (*xy(g[0] - g[2], g[1] - g[3]), *xy(g[0] + g[2], g[1] + g[3]))
            draw.ellipse(box, fill=fill, outline=stroke, width=line)
        else:
            points = [xy(g[i], g[i + 1]) for i in range(0, len(g), 2)]
            draw.polygon(points, fill=fill, outline=stroke, width=line)
    return image


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_BOLD_PATH if bold else FONT_PATH
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)  # Latin only: install fonts-dejavu-core for Cyrillic names


def stat_card(waifu: dict[str, Any], rarity: str, labels: dict[str, str] | None = None) -> bytes:
    """A PNG card of one waifu: her portrait, name, rarity, level and bars for XP, energy,
    mood and loyalty. `waifu` is the api.waifu_stats shape; `labels` translates the words
    (keys: level, xp, energy, mood, loyalty, and the rarities)."""
    words = {"level": "Level", "xp": "XP", "energy": "Energy", "mood": "Mood", "loyalty": "Loyalty",
             "common": "common", "rare": "rare", "epic": "epic"} | (labels or {})
    width, height, scale = 640, 320, 1.2
    image = Image.new("RGB", (width, height), "#fbf8ff")
    draw = ImageDraw.Draw(image)
    image.paste(portrait_image(str(waifu.get("template_code", "")), rarity, scale), (16, 16))
    x = 16 + WIDTH * scale + 24
    draw.text((x, 24), str(waifu.get("name", ""))[:24], fill=INK, font=_font(32, bold=True))
    draw.text((x, 66), f"{words[rarity] if rarity in words else rarity} · {words['level']} {waifu.get('level', 1)}",
              fill=FRAME.get(rarity, FRAME["common"]), font=_font(20, bold=True))
    level_xp, next_xp, xp = waifu.get("level_xp", 0), waifu.get("next_level_xp", 1), waifu.get("xp", 0)
    bars = [("xp", xp - level_xp, max(1, next_xp - level_xp), f"{xp} / {next_xp}", "#8b5cf6"),
            ("energy", waifu.get("energy", 0), waifu.get("max_energy", 100), None, "#22c55e"),
            ("mood", waifu.get("mood", 0), waifu.get("max_stat", 100), None, "#f59e0b"),
            ("loyalty", waifu.get("loyalty", 0), waifu.get("max_stat", 100), None, "#ec4899")]
    small = _font(16)
    for i, (key, value, full, text, colour) in enumerate(bars):
        y = 112 + i * 48
        draw.text((x, y), f"{words[key]}: {text or f'{value} / {full}'}", fill=INK, font=small)
        bar = (x, y + 22, width - 24, y + 36)
        draw.rounded_rectangle(bar, radius=7, fill="#e9e4f2")
        filled = bar[0] + (bar[2] - bar[0]) * max(0.0, min(1.0, value / full))
        if filled > bar[0] + 2:
            draw.rounded_rectangle((bar[0], bar[1], filled, bar[3]), radius=7, fill=colour)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# Bump when card_picture draws differently: every cached file_id of the old look is then
# a miss (its design digest no longer matches) and the bot uploads the new picture.
CARD_VERSION = 1
CARD_SCALE = 2.0
CARD_BAND = 64


def card_design(code: str, rarity: str, rarity_label: str) -> str:
    """A digest of everything card_picture draws: equal digests, the same picture. The
    bot keeps Telegram's file_id of an uploaded picture with it (game.card_photos)."""
    drawn = repr((CARD_VERSION, shapes(code, rarity), rarity_label, FONT_BOLD_PATH.exists()))
    return hashlib.sha256(drawn.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def card_picture(code: str, rarity: str, rarity_label: str) -> bytes:
    """The stat card's picture as a PNG: the portrait (its frame and gems show the rarity),
    and under it a band in the rarity's colour with its word. No name and no stats: the same picture for every waifu of
    a template in a language, so Telegram's file_id of its first upload serves them all (the
    stats, always fresh, go in the photo's caption)."""
    portrait = portrait_image(code, rarity, CARD_SCALE)
    image = Image.new("RGB", (portrait.width, portrait.height + CARD_BAND), FRAME.get(rarity, FRAME["common"]))
    image.paste(portrait, (0, 0))
    draw = ImageDraw.Draw(image)
    text = rarity_label.upper()
    font = _font(30, bold=True)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((image.width - (right - left)) / 2 - left, portrait.height + (CARD_BAND - (bottom - top)) / 2 - top),
              text, fill=WHITE, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def add_portrait_routes(app: web.Application) -> None:
    """Serve /webapp/portraits/<code>.svg from the committed files (the bot's own web server)."""
    app.router.add_static("/webapp/portraits/", PORTRAITS_DIR, show_index=False, follow_symlinks=False)


# Rarities of the seeded catalogue (migration 0013): the files are made without a database.
SEEDED_RARITY = {"sakura": "common", "hana": "common", "yuki": "rare", "rin": "rare", "akane": "epic"}


def expected_files() -> dict[str, str]:
    return {f"{code}.svg": svg(code, rarity, code.title()) for code, rarity in SEEDED_RARITY.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.portraits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed portrait is stale")
    args = parser.parse_args(argv)
    stale = [name for name, text in expected_files().items()
             if not (PORTRAITS_DIR / name).exists() or (PORTRAITS_DIR / name).read_text() != text]
    if args.check:
        for name in stale:
            print(f"stale: {PORTRAITS_DIR / name} (run python -m bot.portraits)")
        return 1 if stale else 0
    PORTRAITS_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in expected_files().items():
        (PORTRAITS_DIR / name).write_text(text)
        print(f"written: {PORTRAITS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
