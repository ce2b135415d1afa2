"""The Mini App page in a real browser (Debian's headless Chromium through Playwright),
served by the real aiohttp server on the real database.

telegram-web-app.js is answered locally by a stub (these machines cannot reach
telegram.org, and the test needs to choose the initData): it supplies initData signed
with the test token, ready(), expand(), themeParams and onEvent, like Telegram's script.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from tests.webapp.conftest import new_player
from tests.webapp.initdata import init_data
from tests.webapp.test_api import set_stats
from tests.webapp.test_collection_api import give_xp

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TELEGRAM_JS = "https://telegram.org/js/telegram-web-app.js"

ANN, CARL = 2001, 2002

LIGHT = {"bg_color": "#ffffff", "text_color": "#000000", "hint_color": "#999999", "link_color": "#2481cc",
         "button_color": "#2481cc", "button_text_color": "#ffffff", "secondary_bg_color": "#efeff3",
         "accent_text_color": "#2481cc", "destructive_text_color": "#e53935"}
DARK = {"bg_color": "#212121", "text_color": "#ffffff", "hint_color": "#aaaaaa", "link_color": "#8774e1",
        "button_color": "#8774e1", "button_text_color": "#ffffff", "secondary_bg_color": "#181818",
        "accent_text_color": "#8774e1", "destructive_text_color": "#ff595a"}


def telegram_stub(init: str, theme: dict[str, str], scheme: str) -> str:
    """A stand-in for telegram-web-app.js; records calls in window.__tg for the test
    (BackButton and MainButton: visibility, text and click handlers; haptics by kind)."""
    return f"""
window.__tg = {{ready: 0, expand: 0, handlers: {{}}, haptics: [],
               back: {{visible: false, clicks: []}}, main: {{visible: false, active: true, text: "", clicks: []}}}};
const __button = (state, extra) => Object.assign({{
  show() {{ state.visible = true; return this; }},
  hide() {{ state.visible = false; return this; }},
  onClick(handler) {{ state.clicks.push(handler); return this; }},
  offClick(handler) {{ state.clicks = state.clicks.filter((h) => h !== handler); return this; }},
}}, extra);
window.Telegram = {{WebApp: {{
  initData: {json.dumps(init)},
  initDataUnsafe: {{}},
  version: "8.0", platform: "test",
  colorScheme: {json.dumps(scheme)},
  themeParams: {json.dumps(theme)},
  ready() {{ window.__tg.ready += 1; }},
  expand() {{ window.__tg.expand += 1; }},
  onEvent(name, handler) {{ (window.__tg.handlers[name] = window.__tg.handlers[name] || []).push(handler); }},
  offEvent() {{}},
  HapticFeedback: {{notificationOccurred(kind) {{ window.__tg.haptics.push(kind); }}, impactOccurred() {{}},
                   selectionChanged() {{ window.__tg.haptics.push("selection"); }}}},
  BackButton: __button(window.__tg.back, {{}}),
  MainButton: __button(window.__tg.main, {{
    setText(text) {{ window.__tg.main.text = text; return this; }},
    enable() {{ window.__tg.main.active = true; return this; }},
    disable() {{ window.__tg.main.active = false; return this; }},
    showProgress() {{ return this; }}, hideProgress() {{ return this; }},
  }}),
}}}};
"""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def open_app(browser: Browser, url: str, *, init: str, theme: dict[str, str] = LIGHT, scheme: str = "light",
                   clock_skew_seconds: float = 0) -> tuple[Page, list[str]]:
    """The page as Telegram would show it (UTC time zone, a phone-sized viewport)."""
    context = await browser.new_context(viewport={"width": 400, "height": 1000}, color_scheme=scheme,
                                        timezone_id="UTC", device_scale_factor=1)
    if clock_skew_seconds:
        # A phone whose clock is wrong: only Date moves, as on a real device.
        await context.add_init_script(
            "(() => { const realNow = Date.now.bind(Date); "
            f"Date.now = () => realNow() + {clock_skew_seconds * 1000}; }})();")
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text}")
            if msg.type in ("error", "warning") else None)
    stub = telegram_stub(init, theme, scheme)
    await page.route(TELEGRAM_JS, lambda route: route.fulfill(status=200, content_type="text/javascript", body=stub))
    await page.goto(f"{url}/webapp/")
    return page, problems


async def card_text(page: Page, waifu_id: int, selector: str) -> str:
    return (await page.locator(f'.card[data-waifu-id="{waifu_id}"] {selector}').text_content() or "").strip()


async def stat(page: Page, waifu_id: int, name: str) -> tuple[str, str]:
    """(shown text, aria-valuenow of the bar) of one stat of a card."""
    box = page.locator(f'.card[data-waifu-id="{waifu_id}"] [data-stat="{name}"]')
    return ((await box.locator(".value").text_content() or "").strip(),
            await box.locator(".bar").get_attribute("aria-valuenow") or "")


def bar(page: Page, waifu_id: int, name: str):
    return page.locator(f'.card[data-waifu-id="{waifu_id}"] [data-stat="{name}"] .bar')


def value(page: Page, waifu_id: int, name: str):
    return page.locator(f'.card[data-waifu-id="{waifu_id}"] [data-stat="{name}"] .value')


async def db_stats(admin, waifu_id: int) -> dict:
    return await admin.fetchval("SELECT api.waifu_stats($1)", waifu_id)


def seconds_left(text: str) -> int:
    """Seconds of "+1 in 42 s" / "+1 in 1 min" (the next point is at most a minute away)."""
    m = re.fullmatch(r"\+1 in (?:(1) min|(\d+) s)", text)
    assert m, text
    return 60 if m[1] else int(m[2])


async def test_cards_show_the_database_the_countdown_moves_and_an_event_updates_the_bars(
        browser, live_server, game, admin):
    sakura = await new_player(game, ANN, "Ann <b>&amp;</b>")
    yuki = await game.adopt_waifu(ANN, "yuki")
    await set_stats(admin, sakura, energy=37, mood=61, loyalty=72, xp=130, clock_age_seconds=15)

    page, problems = await open_app(browser, live_server, init=init_data(ANN, "Ann <b>&amp;</b>"))
    await page.locator(f'.card[data-waifu-id="{sakura}"] .event[data-event-code="walk"] button').wait_for()
    await page.locator(f'.card[data-waifu-id="{yuki}"] .event[data-event-code="walk"] button').wait_for()
    assert await page.evaluate("[window.__tg.ready, window.__tg.expand]") == [1, 1]
    # The name was text, not markup.
    assert await page.locator("#greeting").text_content() == "Hi, Ann <b>&amp;</b>!"
    assert await page.locator("#greeting b").count() == 0

    # The cards show what the database says.
    for wid in (sakura, yuki):
        s = await db_stats(admin, wid)
        assert await card_text(page, wid, ".name") == s["name"]
        assert await card_text(page, wid, ".level") == f"Level {s['level']}"
        assert await stat(page, wid, "energy") == (f"{s['energy']} / {s['max_energy']}", str(s["energy"]))
        assert await stat(page, wid, "mood") == (f"{s['mood']} / 100", str(s["mood"]))
        assert await stat(page, wid, "loyalty") == (f"{s['loyalty']} / 100", str(s["loyalty"]))
        # XP within the level, as in the chat.
        span, into = s["next_level_xp"] - s["level_xp"], s["xp"] - s["level_xp"]
        assert await stat(page, wid, "xp") == (f"{into} / {span}", str(into))
    assert (await stat(page, sakura, "energy"))[0] == "37 / 100"
    assert await card_text(page, sakura, ".level") == "Level 2"
    assert await card_text(page, yuki, ".energy-next") == "Full"
    # 63 points to go, the first in ~45 s: full in 1 h 3 min (waits in the chat's style).
    assert await card_text(page, sakura, ".energy-full") == "full in 1 h 3 min"

    # The countdown moves on its own.
    first = seconds_left(await card_text(page, sakura, ".energy-next"))
    assert 40 <= first <= 46
    await asyncio.sleep(2.2)
    second = seconds_left(await card_text(page, sakura, ".energy-next"))
    assert 1 <= first - second <= 3

    # Events list cost and rewards; taking part updates the bars in place and the database.
    assert "\u26a110" in await card_text(page, sakura, '.event[data-event-code="walk"] .event-terms')
    walk = page.locator(f'.card[data-waifu-id="{sakura}"] .event[data-event-code="walk"]')
    await walk.locator("button").dblclick()  # a double click applies once
    await walk.locator(".event-result").wait_for()
    assert await walk.locator(".event-result").text_content() == \
        "Walk in the park: +15 XP · \u221210 ⚡ · mood +4 · loyalty +1"
    after = await db_stats(admin, sakura)
    assert after["energy"] == 27 and after["mood"] == 65 and after["xp"] == 145
    await expect(bar(page, sakura, "energy")).to_have_attribute("aria-valuenow", "27")
    assert await stat(page, sakura, "energy") == ("27 / 100", "27")
    assert await stat(page, sakura, "mood") == ("65 / 100", "65")
    assert await stat(page, sakura, "loyalty") == ("73 / 100", "73")
    assert await stat(page, sakura, "xp") == ("45 / 300", "45")
    width = await page.locator(f'.card[data-waifu-id="{sakura}"] [data-stat="energy"] .fill').evaluate(
        "el => el.style.width")
    assert width == "27%"
    ledger = await admin.fetch("SELECT request_key, event_code FROM game.participations")
    assert len(ledger) == 1 and ledger[0]["event_code"] == "walk" and ledger[0]["request_key"].startswith("web:")
    # The other waifu was not touched.
    assert (await db_stats(admin, yuki))["energy"] == 100

    # A freshly drawn button acts again (a new key).
    await expect(walk.locator("button")).to_be_enabled()
    await expect(walk.locator("button")).to_have_text("Go")
    await walk.locator("button").click()
    await expect(bar(page, sakura, "energy")).to_have_attribute("aria-valuenow", "17")
    assert await admin.fetchval("SELECT count(*) FROM game.participations") == 2

    # A cooldown shows on the button as a countdown, the button disabled.
    cafe = page.locator(f'.card[data-waifu-id="{yuki}"] .event[data-event-code="cafe"]')
    await cafe.locator("button").click()
    await cafe.locator(".event-result").wait_for()
    await expect(cafe.locator("button")).to_be_disabled()
    await expect(cafe.locator("button")).to_have_text(re.compile(r"^⏳ \d+ (min|h)"))

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webapp.png"), full_page=True)
    assert problems == []
    await page.context.close()


async def test_dark_theme_and_a_wrong_phone_clock(browser, live_server, game, admin):
    wid = await new_player(game, ANN)
    await set_stats(admin, wid, energy=12, mood=20, loyalty=90, xp=1000, clock_age_seconds=50)
    # The phone's clock is 3 hours behind: "+1 in" and "full in" still count from the
    # server's times.
    skew = -3 * 3600
    page, problems = await open_app(browser, live_server, init=init_data(ANN, auth_date="now"), theme=DARK,
                                    scheme="dark", clock_skew_seconds=skew)
    await page.locator(f'.card[data-waifu-id="{wid}"] .event[data-event-code="walk"] button').wait_for()
    assert 8 <= seconds_left(await card_text(page, wid, ".energy-next")) <= 11
    assert await card_text(page, wid, ".energy-full") == "full in 1 h 28 min"  # 88 points, the first in ~10 s
    # Telegram's colours are applied.
    bg = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    card_bg = await page.locator(".card").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert (bg, card_bg) == ("rgb(33, 33, 33)", "rgb(24, 24, 24)")
    # Not enough energy for training (30): the button says what it needs.
    assert await card_text(page, wid, '.event[data-event-code="training"] button') == "Need \u26a130"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webapp-dark.png"), full_page=True)
    assert problems == []
    await page.context.close()


async def test_refetches_when_visible_again_and_when_telegram_reactivates_it(browser, live_server, game, admin):
    wid = await new_player(game, ANN)
    page, problems = await open_app(browser, live_server, init=init_data(ANN))
    await page.locator(f'.card[data-waifu-id="{wid}"] .event[data-event-code="walk"] button').wait_for()
    assert (await stat(page, wid, "energy"))[0] == "100 / 100"

    await set_stats(admin, wid, energy=55)
    await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    await expect(value(page, wid, "energy")).to_have_text("55 / 100")

    await set_stats(admin, wid, energy=66, mood=12)
    await page.evaluate("window.__tg.handlers.activated.forEach((h) => h())")
    await expect(value(page, wid, "mood")).to_have_text("12 / 100")
    assert (await stat(page, wid, "energy"))[0] == "66 / 100"
    assert problems == []
    await page.context.close()


async def test_outside_telegram_the_page_says_so(browser, live_server, game):
    # Telegram's script in a normal browser: WebApp exists, initData is empty.
    page, problems = await open_app(browser, live_server, init="")
    await page.locator("#status").wait_for()
    assert "Open it from the bot in Telegram" in (await page.locator("#status").text_content() or "")
    assert await page.locator(".card").count() == 0
    assert await page.evaluate("window.__tg.ready") == 0
    await page.context.close()

    # And when telegram.org cannot be reached at all: our shim stands in (with no initData).
    context = await browser.new_context()
    page = await context.new_page()
    await page.route(TELEGRAM_JS, lambda route: route.abort())
    await page.goto(f"{live_server}/webapp/")
    await expect(page.locator("#status")).to_contain_text("Open it from the bot in Telegram")
    assert await page.evaluate("window.Telegram.WebApp.isShim") is True
    english = await page.locator("#status").text_content()
    await context.close()

    # In the browser's language, or the link's (?lang=): the notice is translated (issue 21:
    # the en and ru screenshots were byte-identical).
    for options, url in (({"locale": "ru-RU"}, f"{live_server}/webapp/"), ({}, f"{live_server}/webapp/?lang=ru")):
        context = await browser.new_context(**options)
        page = await context.new_page()
        await page.route(TELEGRAM_JS, lambda route: route.abort())
        await page.goto(url)
        await expect(page.locator("#status")).to_contain_text("Открой его из бота в Telegram")
        assert await page.locator("#status").text_content() != english
        assert await page.title() == "Твои спутницы"
        await context.close()
    assert problems == []


async def test_a_user_who_never_started_the_bot_is_told_to(browser, live_server, game):
    page, problems = await open_app(browser, live_server, init=init_data(CARL, "Carl"))
    await expect(page.locator("#status")).to_contain_text("Send /start to the bot")
    assert await page.locator(".card").count() == 0
    await page.context.close()
    # The 403 from the API shows in the console as a failed resource load; nothing else.
    assert all("403" in p for p in problems), problems


async def test_expired_session_is_explained(browser, live_server, game):
    await new_player(game, ANN)
    import time

    page, _ = await open_app(browser, live_server, init=init_data(ANN, auth_date=int(time.time()) - 2 * 86400))
    await expect(page.locator("#status")).to_contain_text("This session has expired")
    assert await page.locator(".card").count() == 0
    await page.context.close()


async def test_energy_counts_up_on_the_page_when_the_next_point_is_due(browser, live_server, game, admin):
    wid = await new_player(game, ANN)
    # The next point is due in about 2 s: the page refetches then, without any action.
    await set_stats(admin, wid, energy=40, clock_age_seconds=58)
    page, problems = await open_app(browser, live_server, init=init_data(ANN))
    await expect(value(page, wid, "energy")).to_have_text("40 / 100")
    await expect(value(page, wid, "energy")).to_have_text("41 / 100", timeout=8000)
    assert (await db_stats(admin, wid))["energy"] == 41
    assert 55 <= seconds_left(await card_text(page, wid, ".energy-next")) <= 60
    assert problems == []
    await page.context.close()


async def test_a_russian_player_sees_the_page_in_russian(browser, live_server, game, admin):
    await game.register_player(ANN, "iva", "Ива", "ru")
    wid = await game.adopt_waifu(ANN, "sakura")
    await set_stats(admin, wid, energy=22, mood=61, loyalty=72, xp=130, clock_age_seconds=15)
    # Telegram's client is in English here: the player's language comes from /me.
    page, problems = await open_app(browser, live_server, init=init_data(ANN, "Ива"))
    cafe = page.locator(f'.card[data-waifu-id="{wid}"] .event[data-event-code="cafe"]')
    await expect(cafe.locator(".event-title")).to_have_text("Свидание в кафе")
    assert await page.evaluate("[document.documentElement.lang, document.title]") == ["ru", "Твои спутницы"]
    assert await page.locator("h1").text_content() == "Твои спутницы"
    assert await page.locator("#greeting").text_content() == "Привет, Ива!"
    assert await card_text(page, wid, ".name") == "Сакура"
    assert await card_text(page, wid, ".level") == "Уровень 2"
    assert await card_text(page, wid, '[data-stat="energy"] [data-text]') == "Энергия"
    assert await bar(page, wid, "mood").get_attribute("aria-label") == "Настроение"
    assert re.fullmatch(r"\+1 через \d+ секунд[уы]?", await card_text(page, wid, ".energy-next"))
    assert await card_text(page, wid, ".energy-full") == "полностью через 1 час 18 минут"  # 78 points
    assert await cafe.locator(".event-terms").text_content() == (
        "\u26a120 · +35 опыта · настроение +8 · преданность +4 · раз в 30 минут")
    assert await card_text(page, wid, '.event[data-event-code="training"] button') == "Нужно \u26a130"
    await expect(cafe.locator("button")).to_have_text("Вперёд")

    await cafe.locator("button").click()
    await cafe.locator(".event-result").wait_for()
    assert await cafe.locator(".event-result").text_content() == (
        "Свидание в кафе: +35 опыта · \u221220 ⚡ · настроение +8 · преданность +4")
    await expect(cafe.locator("button")).to_have_text(re.compile(r"^⏳ (30 минут|29 минут \d+ секунд[уы]?)$"))

    # A refusal is worded by the server, in Russian too (a forged double: the cooldown).
    message = await page.evaluate(
        """async ([id]) => {
             const r = await fetch(`../api/waifus/${id}/events/cafe`, {method: "POST",
               headers: {Authorization: `tma ${Telegram.WebApp.initData}`, "Accept-Language": "ru",
                         "Idempotency-Key": "russian-refusal-1"}});
             return (await r.json()).error.message; }""", [wid])
    assert re.fullmatch(r"Она пока не хочет повторять\. Снова можно через (30 минут|29 минут \d+ секунд[уы]?)\.",
                        message), message
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webapp-ru.png"), full_page=True)
    assert all("409" in p for p in problems), problems  # the forged refusal's failed load, nothing else
    await page.context.close()


async def test_the_daily_reward_and_the_notifications_switch_work_from_the_page(browser, live_server, game, admin):
    await game.register_player(CARL, "carl", "Carl", "en")
    wid = await game.adopt_waifu(CARL, "yuki")
    await set_stats(admin, wid, energy=40, mood=50, loyalty=50, xp=0, clock_age_seconds=0)
    page, problems = await open_app(browser, live_server, init=init_data(CARL, "Carl"))
    extras = page.locator("#extras")
    await expect(extras).to_be_visible()
    await expect(page.locator("#daily-status")).to_have_text("Ready: day 1 of your streak.")
    toggle = page.locator("#notify-toggle")
    await expect(toggle).to_be_checked()

    await page.locator("#daily-claim").click()
    await expect(page.locator("#status")).to_have_text("Daily reward claimed! Streak: 1 day.")
    await expect(page.locator("#daily-claim")).to_be_disabled()
    await expect(page.locator("#daily-status")).to_have_text(re.compile(r"^Next one in .+\. Streak: 1 day\.$"))
    assert await admin.fetchval("SELECT daily_streak FROM game.players WHERE telegram_id = $1", CARL) == 1
    reward = await admin.fetchval("SELECT energy FROM game.daily_rewards WHERE day = 1")
    assert (await db_stats(admin, wid))["energy"] == min(100, 40 + reward)
    assert await value(page, wid, "energy").text_content() == f"{min(100, 40 + reward)} / 100"

    await toggle.uncheck()
    await expect(toggle).not_to_be_checked()
    for _ in range(50):  # the POST lands a moment after the click
        if await admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = $1", CARL) is False:
            break
        await page.wait_for_timeout(100)
    assert await admin.fetchval("SELECT notifications FROM game.players WHERE telegram_id = $1", CARL) is False
    assert [p for p in problems if "409" not in p and "403" not in p] == []


async def press(page: Page, control: str) -> None:
    """Telegram's BackButton or MainButton pressed (the stub's recorded click handlers)."""
    await page.evaluate(f"window.__tg.{control}.clicks.forEach((h) => h())")


async def until_js(page: Page, expression: str, expected: object, seconds: float = 5.0) -> object:
    """The value of `expression` once it equals `expected` (or the last one after `seconds`):
    the page's state settles after its loads (the page's CSP forbids eval: wait_for_function
    cannot poll)."""
    value = await page.evaluate(expression)
    for _ in range(int(seconds * 10)):
        if value == expected:
            break
        await page.wait_for_timeout(100)
        value = await page.evaluate(expression)
    return value


async def test_the_tabs_adopt_a_second_waifu_pick_her_buy_give_and_see_the_top(browser, live_server, game, admin):
    sakura = await new_player(game, ANN)
    await admin.execute("SELECT ops.adjust_coins($1, 100, 'test')", ANN)
    for n in range(11):  # eleven players ahead: Ann's own place is outside the top 10
        await new_player(game, 7100 + n, f"Player {n}")
        await give_xp(admin, 7100 + n, 1000 + n, 100 + n)
    await give_xp(admin, ANN, 40, 40)
    page, problems = await open_app(browser, live_server, init=init_data(ANN))
    await page.locator(f'.card[data-waifu-id="{sakura}"] .event[data-event-code="walk"] button').wait_for()

    # Home: the MainButton is the daily claim (ready), no BackButton; the page's own claim
    # button wears Telegram's button colours.
    await expect(page.locator("#tabs")).to_be_visible()
    await expect(page.locator("#daily-claim")).to_be_enabled()
    main_and_back = "[window.__tg.main.visible, window.__tg.main.text, window.__tg.back.visible]"
    assert await until_js(page, main_and_back, [True, "🎁 Claim the daily reward", False]) == [
        True, "🎁 Claim the daily reward", False]
    claim_colours = await page.locator("#daily-claim").evaluate(
        "el => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]")
    assert claim_colours == ["rgb(36, 129, 204)", "rgb(255, 255, 255)"]  # LIGHT's button colours

    # Companions: hers, and the ones to adopt; the BackButton shows, the MainButton hides.
    await page.locator("#tab-btn-waifus").click()
    tile = page.locator(f'#collection .tile[data-waifu-id="{sakura}"]')
    await expect(tile.locator(".name")).to_have_text("Sakura")
    assert await page.evaluate("[window.__tg.back.visible, window.__tg.main.visible]") == [True, False]
    await expect(page.locator("#collection-count")).to_have_text("Your collection: 1 of 5")
    await expect(tile.locator(".rarity")).to_have_text("common")
    await expect(tile.locator(".active-badge")).to_be_visible()
    await expect(tile.locator(".tile-stats")).to_have_text("Level 1 · ⚡100/100 · mood 50 · loyalty 50")
    assert await tile.locator(".portrait").evaluate("img => img.complete && img.naturalWidth > 0")
    assert await page.locator("#home-status, #tab-home").first.is_hidden()
    yuki_tile = page.locator('#adoptable .tile[data-template-code="yuki"]')
    await expect(yuki_tile.locator(".rarity")).to_have_text("rare")
    await yuki_tile.locator(".tile-action").dblclick()  # a double tap adopts once
    await expect(page.locator("#waifus-status")).to_have_text("Yuki is now your companion! Take good care of her.")
    assert await admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = $1", ANN) == 2
    yuki = await admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = $1 AND template_code = 'yuki'", ANN)
    await expect(page.locator("#collection-count")).to_have_text("Your collection: 2 of 5")
    assert await page.locator('#adoptable .tile[data-template-code="yuki"]').count() == 0

    # Make her the one for events.
    yuki_owned = page.locator(f'#collection .tile[data-waifu-id="{yuki}"]')
    await yuki_owned.locator(".tile-action").click()
    await expect(page.locator("#waifus-status")).to_have_text("Yuki will take part now")
    await expect(yuki_owned).to_have_class(re.compile(r"\bactive\b"))
    await expect(yuki_owned.locator(".tile-action")).to_be_hidden()
    await expect(tile.locator(".tile-action")).to_be_visible()
    assert await admin.fetchval("SELECT active_waifu_id FROM game.players WHERE telegram_id = $1", ANN) == yuki
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webapp-collection.png"), full_page=True)

    # Back (Telegram's BackButton): home again, read fresh - both cards are there.
    await press(page, "back")
    await expect(page.locator("#tab-home")).to_be_visible()
    await expect(page.locator(f'.card[data-waifu-id="{yuki}"] .name')).to_have_text("Yuki")
    assert await until_js(page, "[window.__tg.back.visible, window.__tg.main.visible]", [False, True]) == [False, True]

    # Shop: buy flowers, then give them to her from the inventory.
    await page.locator("#tab-btn-shop").click()
    await expect(page.locator("#coins")).to_have_text("You have 100 🪙")
    flowers = page.locator('#shop-items .row[data-item-code="flowers"]')
    await expect(flowers.locator(".row-go")).to_have_text("🪙 20")
    assert await flowers.locator(".row-terms").text_content() == "mood +8 · loyalty +2 · cooldown 1 h"
    await flowers.locator(".row-go").click()
    await expect(page.locator("#shop-status")).to_have_text("Bought: Flowers. 80 🪙 left")
    await expect(page.locator("#coins")).to_have_text("You have 80 🪙")
    owned = page.locator('#inventory-items .row[data-item-code="flowers"]')
    await expect(owned.locator(".row-title")).to_have_text("Flowers × 1")
    await expect(owned.locator(".row-go")).to_have_text("🎁 To Yuki")
    assert await admin.fetchval("SELECT coins FROM game.wallets WHERE telegram_id = $1", ANN) == 80
    await owned.locator(".row-go").click()
    await expect(page.locator("#shop-status")).to_have_text(
        "Yuki got Flowers: mood +8 · loyalty +2 · energy ±0")
    await expect(page.locator("#inventory-empty")).to_be_visible()
    assert (await db_stats(admin, yuki))["mood"] == 58
    await page.screenshot(path=str(ARTIFACTS / "webapp-shop.png"), full_page=True)
    # Not enough coins: refused in words, with the error haptic.
    await admin.execute("SELECT ops.adjust_coins($1, -75, 'test')", ANN)
    await page.locator("#tab-btn-home").click()
    await page.locator("#tab-btn-shop").click()
    await expect(page.locator("#coins")).to_have_text("You have 5 🪙")
    await flowers.locator(".row-go").click()
    await expect(page.locator("#shop-status")).to_have_text("Not enough coins: this costs 20 🪙, you have 5.")
    assert await page.evaluate("window.__tg.haptics.filter((k) => k !== 'selection')") == [
        "success", "success", "success", "success", "error"]

    # Top: this week's board and the player's own place outside the top 10.
    await page.locator("#tab-btn-top").click()
    await expect(page.locator("#top-list .board-row")).to_have_count(10)
    await expect(page.locator("#top-me")).to_have_text("You: place 12 with 40 XP")
    first = page.locator("#top-list .board-row").first
    assert [await first.locator(f".board-{part}").text_content() for part in ("rank", "name", "xp")] == [
        "1", "Player 10", "110 XP"]
    await expect(page.locator("#top-resets")).to_be_visible()
    await page.locator('.board-switch [data-board="all"]').click()
    await expect(page.locator("#top-list .board-row").first.locator(".board-xp")).to_have_text("1010 XP")
    await expect(page.locator("#top-resets")).to_be_hidden()
    assert await page.locator("#top-list .board-row.me").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webapp-top.png"), full_page=True)

    # Home by tab; the MainButton claims the daily reward, then hides.
    await page.locator("#tab-btn-home").click()
    await press(page, "main")
    await expect(page.locator("#status")).to_have_text("Daily reward claimed! Streak: 1 day.")
    assert await admin.fetchval("SELECT daily_streak FROM game.players WHERE telegram_id = $1", ANN) == 1
    assert await until_js(page, "window.__tg.main.visible", False) is False
    # The 409 of the refused purchase is the only failed load.
    assert [p for p in problems if "409" not in p] == [], problems
    await page.context.close()


async def test_the_tabs_in_russian(browser, live_server, game, admin):
    await game.register_player(ANN, "iva", "Ива", "ru")
    wid = await game.adopt_waifu(ANN, "sakura")
    await admin.execute("SELECT ops.adjust_coins($1, 30, 'test')", ANN)
    page, problems = await open_app(browser, live_server, init=init_data(ANN, "Ива"))
    await page.locator(f'.card[data-waifu-id="{wid}"] .name').wait_for()
    await expect(page.locator("#tabs button")).to_have_text(["Главная", "Спутницы", "Магазин", "Рейтинг"])
    main, claim = "[window.__tg.main.visible, window.__tg.main.text]", [True, "🎁 Забрать ежедневную награду"]
    assert await until_js(page, main, claim) == claim
    await page.locator("#tab-btn-waifus").click()
    await expect(page.locator("#collection-count")).to_have_text("Твоя коллекция: 1 из 5")
    await expect(page.locator('#adoptable .tile[data-template-code="akane"] .rarity')).to_have_text("эпическая")
    await expect(page.locator('#adoptable .tile[data-template-code="akane"] .name')).to_have_text("Аканэ")
    await expect(page.locator('#adoptable .tile[data-template-code="akane"] .tile-action')).to_have_text("➕ Позвать")
    await page.locator("#tab-btn-shop").click()
    await expect(page.locator("#coins")).to_have_text("У тебя 30 🪙")
    await expect(page.locator('#shop-items .row[data-item-code="flowers"] .row-title')).to_have_text("Цветы")
    await page.locator("#tab-btn-shop").press("ArrowRight")  # the tab list's keys
    await expect(page.locator("#tab-btn-top")).to_be_focused()
    await expect(page.locator("#tab-btn-top")).to_have_attribute("aria-selected", "true")
    await expect(page.locator("#top-me")).to_have_text("У тебя пока нет опыта в этом рейтинге: его дают события.")
    await expect(page.locator('.board-switch [data-board="all"]')).to_have_text("🏆 За всё время")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webapp-ru-top.png"), full_page=True)
    assert problems == []
    await page.context.close()


async def test_make_webapp_serves_the_page_with_data_offline(browser, database) -> None:
    env = {**os.environ, "DATABASE_URL": database.bot_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.dev.webapp", "--port", "0", "--user-id", "2401", "--name", "Вера",
        "--language", "ru", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        url = ""
        assert proc.stdout is not None
        while not url.startswith("http"):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, (await proc.stderr.read()).decode() if proc.stderr else "no output"
            url = line.decode().strip()
        context = await browser.new_context(viewport={"width": 400, "height": 1000}, device_scale_factor=1)
        page = await context.new_page()
        elsewhere: list[str] = []

        async def only_local(route: Route) -> None:
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                await route.continue_()
            else:  # offline: nothing may be fetched from anywhere else
                elsewhere.append(route.request.url)
                await route.abort()

        await page.route("**/*", only_local)
        await page.goto(url)
        await expect(page.locator("#greeting")).to_have_text("Привет, Вера!")
        await expect(page.locator(".card .name")).to_have_text(["Сакура"])
        await expect(page.locator(".card .event").first).to_be_visible()
        assert await page.evaluate("window.Telegram.WebApp.isShim") is True
        # The shim draws Telegram's MainButton (the daily claim, ready) and BackButton.
        await expect(page.locator(".tg-shim-main")).to_have_text("🎁 Забрать ежедневную награду")
        await expect(page.locator(".tg-shim-back")).to_be_hidden()
        await page.locator("#tab-btn-waifus").click()
        await expect(page.locator("#collection .tile .name")).to_have_text(["Сакура"])
        assert await page.locator("#collection .portrait").evaluate("img => img.naturalWidth > 0")
        await expect(page.locator(".tg-shim-main")).to_be_hidden()
        await page.locator(".tg-shim-back").click()
        await expect(page.locator("#tab-home")).to_be_visible()
        await expect(page.locator(".tg-shim-back")).to_be_hidden()
        await page.locator(".tg-shim-main").click()
        await expect(page.locator("#status")).to_have_text("Награда получена! Серия: 1 день.")
        await expect(page.locator(".tg-shim-main")).to_be_hidden()
        assert elsewhere == []  # not even telegram.org: the page came without its script
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "webapp-dev.png"), full_page=True)
        await context.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
    assert (ARTIFACTS / "webapp-dev.png").stat().st_size > 10_000
