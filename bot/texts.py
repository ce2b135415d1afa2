"""Every player-facing text, in the player's language: gettext catalogues, used by key.

Chat messages, buttons, the command menu, the web API's error messages and the Mini
App page's strings all come from bot/messages.py (English, by key), translated by the
catalogues bot/locales/<lang>/LC_MESSAGES/messages.po through aiogram's I18n (bot/i18n.py;
the page fetches its share, PAGE_KEYS, from the server). Handlers never hold text.
Texts are Telegram HTML: every value put into a template is escaped unless it is already
`Html` (built here), so a player named `<b>` or a waifu called `Tom & Jerry` cannot break
a message.

Which language: `effective_language(setting, language_code)`; the database answers the
same question for a registered player (game.effective_language in 0008.i18n.sql) and
returns it as `language` with the profile, so the bot asks nothing extra.
"""

from __future__ import annotations

import html
import math
import re
from datetime import UTC, datetime
from typing import Any

from babel import Locale

from bot.i18n import I18N
from bot.messages import MESSAGES, Message

# Telegram's limits, counted on the text after entity parsing.
MESSAGE_LIMIT = 4096
ALERT_LIMIT = 200
BUTTON_LABEL_LIMIT = 48


class Html(str):
    """A string that is already safe Telegram HTML (not escaped again)."""


def escape(value: Any) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=False))


DEFAULT_LANGUAGE = "en"
# English is the source language (bot/messages.py); the others are the compiled catalogues.
LANGUAGES = (DEFAULT_LANGUAGE, *sorted(set(I18N.available_locales) - {DEFAULT_LANGUAGE}))
# The player's setting (players.language): 'auto' follows Telegram's language_code.
LANGUAGE_SETTINGS = ("auto", *LANGUAGES)
# Telegram language codes answered in Russian when the player chose nothing: Russian, and
# Belarusian, Kazakh and Kyrgyz, whose countries have Russian as an official language and
# whose Telegram users mostly read it. Not Ukrainian: many Ukrainians do not want to be
# addressed in Russian; English is the neutral default, and /settings offers Russian.
# Keep in step with game.effective_language() in 0008.i18n.sql (a test compares them).
RUSSIAN_READERS = frozenset({"ru", "be", "kk", "ky"})
# Every command, in the order of the command menu (set_my_commands) and of /help, each
# with its description `cmd_<command>`: add a new command here (a test checks that every
# command a handler answers is listed).
COMMANDS = ("start", "menu", "profile", "events", "daily", "waifus", "shop", "inventory", "top", "gift",
            "group_events", "group_language", "settings", "notify", "timezone", "help")
# Texts the Mini App page needs (besides the web_* and dur_* keys): served by the web app.
PAGE_KEYS = tuple(sorted({k for k in MESSAGES if k.startswith(("web_", "dur_"))}
                         | {"events_none", "result_changes", "result_level_up"}))


# Web API error codes that share one text.
_API_ERROR_KEYS = {"auth_missing": "auth_invalid", "auth_malformed": "auth_invalid", "unauthorized": "auth_invalid",
                   "internal_error": "unexpected"}


def effective_language(setting: str | None, language_code: str | None) -> str:
    """The language to speak: the player's setting, else Telegram's language_code
    ('en-US' -> 'en'; RUSSIAN_READERS -> 'ru'), else the default."""
    if setting in LANGUAGES:
        return setting
    base = (language_code or "").split("-")[0].lower()
    if base in RUSSIAN_READERS:
        return "ru"
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def command_menus() -> dict[str | None, str]:
    """Telegram language_code of a command menu (None: everyone else) -> its language.
    Players whose Telegram speaks be, kk or ky are answered in Russian: so is their menu."""
    codes = sorted((set(LANGUAGES) | RUSSIAN_READERS) - {DEFAULT_LANGUAGE})
    return {None: DEFAULT_LANGUAGE, **{code: effective_language(None, code) for code in codes}}


def plural_index(language: str, n: int) -> int:
    """Which plural form a count takes: the rule of the language's catalogue (its
    Plural-Forms header); English, the source language, one|other."""
    translations = I18N.locales.get(language)
    if translations is None:
        return 0 if n == 1 else 1
    return int(translations.plural(abs(n)))  # type: ignore[attr-defined]  # set from the header


def bar(value: int, maximum: int, width: int = 10) -> str:
    if maximum <= 0:
        return "▱" * width
    filled = max(0, min(width, math.floor(width * value / maximum + 1e-9)))
    return "▰" * filled + "▱" * (width - filled)


def signed(n: int) -> str:
    return f"+{n}" if n > 0 else ("±0" if n == 0 else f"−{-n}")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_TAG = re.compile(r"<[^>]*>")


def visible_length(text: str) -> int:
    """Length as Telegram counts it: after entity parsing, in UTF-16 code units."""
    plain = html.unescape(_TAG.sub("", text))
    return len(plain.encode("utf-16-le")) // 2


def plain(text: str) -> str:
    """Texts shown without HTML (callback alerts)."""
    return html.unescape(_TAG.sub("", text))


def shorten(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class Texts:
    """Texts in one language. `t(key, **values)` escapes every value that is not Html.

    One object per update; `use(language)` switches it in place when the database says
    which language the player speaks (the responder and error handlers hold the same object)."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        # True once the language is the one the database chose for the player.
        self.from_player = False
        self._set(language)

    def _set(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE

    def use(self, language: str | None) -> None:
        """Speak the language the database gave for the player (`language` of a profile)."""
        if language in LANGUAGES:
            self._set(language)
            self.from_player = True
            if I18N.get_current(no_error=True) is I18N:  # inside bot.i18n.PlayerLocale: aiogram's too
                I18N.current_locale = self.language

    @classmethod
    def for_user(cls, language_code: str | None, setting: str | None = None) -> Texts:
        return cls(effective_language(setting, language_code))

    def __call__(self, key: str, **values: Any) -> Html:
        safe = {k: (v if isinstance(v, (int, float, Html)) else escape(v)) for k, v in values.items()}
        message = MESSAGES[key]
        count = int(values[message.count]) if message.count else 1
        return Html(self.template(message, count).format(**safe))

    def template(self, message: Message, count: int = 1) -> str:
        """A message's text in this language, in the plural form for `count`."""
        return I18N.gettext(message.singular, message.plural, count, locale=self.language)

    def page(self) -> dict[str, str | dict[str, Any]]:
        """The Mini App page's texts in this language (templates, unformatted); a text with
        plural forms is `{"count": field, "forms": {CLDR category: template}}`."""
        return {key: _page_text(self, MESSAGES[key]) for key in PAGE_KEYS}

    # -- pieces -------------------------------------------------------------------------

    def duration(self, seconds: float) -> Html:
        """A wait for people, in one style for every wait (energy, cooldowns, the daily
        reward): '42 s', '9 min 42 s', '59 min 59 s', '1 h 20 min'. To the second under an
        hour, to the minute beyond; always rounded up, so a wait never reads shorter than it
        is, and "1 h" never stands for 59 minutes.
        (bot/webapp/static/app.js formats the page's countdowns by the same rule.)"""
        s = max(0, math.ceil(seconds))
        if s == 0:
            return self("dur_now")
        if s < 3600:
            m, rest = divmod(s, 60)
            if m == 0:
                return self("dur_s", n=rest)
            return self._pair(self("dur_min", n=m), self("dur_s", n=rest)) if rest else self("dur_min", n=m)
        h, m = divmod(math.ceil(s / 60), 60)
        return self("dur_h", h=h) if m == 0 else self._pair(self("dur_h", h=h), self("dur_min", n=m))

    def _pair(self, larger: Html, smaller: Html) -> Html:
        return self("dur_pair", larger=larger, smaller=smaller)

    def period(self, seconds: float) -> Html:
        """How often something may happen, for "once every ...": a duration, but exactly one
        hour or minute is a word of its own in some languages (ru «раз в час», not «в 1 час»).
        (app.js `period` is the same.)"""
        if round(seconds) == 3600:
            return self("dur_per_h")
        if round(seconds) == 60:
            return self("dur_per_min")
        return self.duration(seconds)

    def until(self, moment: str | None, now: datetime | str | None) -> Html:
        """Time from `now` (the database's as_of when we have it) to `moment`."""
        at = parse_time(moment)
        if at is None:
            return self("dur_now")
        if isinstance(now, str):
            now = parse_time(now)
        now = now or datetime.now(UTC)
        return self.duration((at - now).total_seconds())

    def lines(self, lines: list[str], limit: int = MESSAGE_LIMIT) -> Html:
        """Join lines, dropping whole lines from the end (never cutting a tag) to fit `limit`."""
        out: list[str] = []
        total = 0
        for n, line in enumerate(lines):
            size = visible_length(line) + (1 if out else 0)
            if total + size > limit - 40:
                rest = len(lines) - n
                out.append(self("more_events", count=rest))
                break
            out.append(line)
            total += size
        return Html("\n".join(out))

    def alert(self, text: str) -> str:
        """Callback alerts are plain text of at most 200 characters."""
        return shorten(plain(text), ALERT_LIMIT)

    # -- screens ------------------------------------------------------------------------

    def help(self) -> Html:
        """How to play, then every command with its description (the command menu's)."""
        lines: list[str] = [self("help")]
        lines += [self("help_command", command=c, description=self(f"cmd_{c}")) for c in COMMANDS]
        return self.lines(lines)

    def welcome_new(self, name: str, templates: list[dict[str, Any]]) -> Html:
        if not templates:
            return self("no_starters")
        lines = [self("welcome_new", name=name), ""]
        lines += [self("starter_line", name=t["name"], description=t["description"]) for t in templates]
        return self.lines(lines)

    def menu(self, name: str, waifus: list[dict[str, Any]]) -> Html:
        if not waifus:
            return self("menu_no_waifu", name=name)
        return self("menu", name=name)

    def card(self, s: dict[str, Any]) -> Html:
        span = max(1, s["next_level_xp"] - s["level_xp"])
        into = s["xp"] - s["level_xp"]
        lines: list[str] = [
            self("card_title", name=s["name"], level=s["level"]),
            self("card_xp", bar=bar(into, span), xp_in_level=into, xp_for_level=span),
            self("card_xp_total", xp=s["xp"], to_next=s["next_level_xp"] - s["xp"], next_level=s["level"] + 1),
            self("card_energy", bar=bar(s["energy"], s["max_energy"]), energy=s["energy"],
                 max_energy=s["max_energy"]),
        ]
        if s.get("next_energy_at"):
            lines.append(self("card_energy_next", next=self.until(s["next_energy_at"], s.get("as_of")),
                              full=self.until(s["full_energy_at"], s.get("as_of"))))
        else:
            lines.append(self("card_energy_full"))
        lines += [
            self("card_mood", bar=bar(s["mood"], s["max_stat"]), mood=s["mood"], max_stat=s["max_stat"]),
            self("card_loyalty", bar=bar(s["loyalty"], s["max_stat"]), loyalty=s["loyalty"],
                 max_stat=s["max_stat"]),
        ]
        return self.lines(lines)

    def events(self, stats: dict[str, Any] | None, name: str, events: list[dict[str, Any]]) -> Html:
        head = self("events_title", name=name, energy=stats["energy"] if stats else "?",
                    max_energy=stats["max_energy"] if stats else "?")
        if not events:
            return self.lines([head, "", self("events_none")])
        lines = [head, ""]
        for e in events:
            lines.append(self("event_line", title=e["title"], cost=e["energy_cost"], xp=e["xp_reward"],
                              mood=signed(e["mood_delta"]), loyalty=signed(e["loyalty_delta"])))
            if e.get("cooldown_remaining_seconds"):
                lines.append(self("event_wait", wait=self.duration(e["cooldown_remaining_seconds"])))
            elif e.get("cooldown_seconds"):
                lines.append(self("event_cooldown", cooldown=self.period(e["cooldown_seconds"])))
            else:
                lines.append(self("event_no_cooldown"))
            if not e.get("enough_energy", True):
                lines.append(self("event_low_energy"))
        return self.lines(lines)

    def event_button(self, e: dict[str, Any]) -> str:
        title = shorten(e["title"], BUTTON_LABEL_LIMIT)
        if e.get("cooldown_remaining_seconds"):
            return plain(self("event_button_wait", title=title))
        if not e.get("enough_energy", True):
            return plain(self("event_button_low", title=title, cost=e["energy_cost"]))
        return plain(self("event_button", title=title, cost=e["energy_cost"]))

    def result(self, r: dict[str, Any]) -> Html:
        c = r["changes"]
        lines: list[str] = [
            self("result_title", waifu=r["name"], event=r["event_title"]),
            self("result_changes", xp=c["xp"], energy=signed(c["energy"]), mood=signed(c["mood"]),
                 loyalty=signed(c["loyalty"])),
        ]
        if c.get("leveled_up"):
            lines.append(self("result_level_up", before=c["level_before"], after=c["level_after"]))
        lines += ["", self.card(r)]
        return self.lines(lines)

    def refusal(self, code: str, detail: dict[str, Any]) -> Html:
        """The friendly text for a GameError, chosen by its code; numbers from its detail."""
        if code == "not_enough_energy":
            return self("err_not_enough_energy", needed=detail.get("energy_needed", "?"),
                        energy=detail.get("energy", "?"), wait=self.until(detail.get("enough_at"), None))
        if code == "on_cooldown":
            if "remaining_seconds" in detail:
                wait = self.duration(detail["remaining_seconds"])
            else:
                wait = self.until(detail.get("available_at"), None)
            return self("err_on_cooldown", wait=wait)
        if code == "on_cooldown" and "item_code" in detail:  # a gift given to her too recently (0013)
            return self("err_item_on_cooldown", wait=self.duration(detail.get("remaining_seconds", 0)))
        if code == "limit_reached" and detail.get("limit") == "waifus_per_player":
            return self("err_collection_full", max=detail.get("max", "?"))
        if code == "not_enough_coins":
            return self("err_not_enough_coins", needed=detail.get("coins_needed", "?"), coins=detail.get("coins", "?"))
        if code == "limit_reached" and "template_code" in detail:
            return self("err_already_adopted")
        if code == "limit_reached" and detail.get("limit") == "daily":
            return self("err_daily_claimed", wait=self.until(detail.get("available_at"), None))
        key = f"err_{code}"
        return self(key) if key in MESSAGES else self("err_unexpected")

    def api_error(self, code: str, detail: dict[str, Any] | None = None) -> str | None:
        """The Mini App API's message for an error code (plain text), or None for codes
        meant for developers only (a malformed request no page of ours sends)."""
        code = _API_ERROR_KEYS.get(code, code)
        if f"err_{code}" not in MESSAGES:
            return None
        return plain(self.refusal(code, detail or {}))


def _page_text(texts: Texts, message: Message) -> str | dict[str, Any]:
    """A page text; one with plural forms as its forms by CLDR category ("one", "few",
    "many", "other"), which the page picks with the browser's Intl.PluralRules."""
    if message.count is None:
        return texts.template(message)
    locale = Locale.parse(texts.language)
    forms: dict[str, str] = {}
    for n in range(200):  # every CLDR rule shows each of its integer categories below 200
        forms.setdefault(locale.plural_form(n), texts.template(message, n))
    return {"count": message.count, "forms": forms}
