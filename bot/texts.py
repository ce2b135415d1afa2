"""Every player-facing text, in one place, keyed by language.

A second language is one more entry in MESSAGES with the same keys (a test checks that
every language has every key); handlers never hold text. Texts are Telegram HTML: every
value put into a template is escaped unless it is already `Html` (built here), so a
player named `<b>` or a waifu called `Tom & Jerry` cannot break a message.
"""

from __future__ import annotations

import html
import math
import re
from datetime import UTC, datetime
from typing import Any

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


MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        # /start and adoption
        "welcome_new": "Welcome, {name}! 🌸\nChoose your companion. She will be waiting for you here:",
        "starter_line": "<b>{name}</b> · {description}",
        "starter_button": "💕 {name}",
        "no_starters": "There is nobody to adopt right now. Please come back a little later.",
        "adopted": "🎉 <b>{waifu}</b> is now your companion! Take good care of her.",
        "adopted_toast": "Welcome home, {waifu}!",
        "already_adopted_toast": "Already done: she is yours.",
        # main menu
        "menu": "Hi, {name}! What shall we do?",
        "menu_no_waifu": "Hi, {name}! You have no companion yet. Send /start to meet one.",
        "btn_card": "📊 Stats",
        "btn_card_of": "📊 {name}",
        "btn_events": "🎉 Events",
        "btn_webapp": "📱 Open the app",
        "btn_help": "❓ Help",
        "btn_menu": "⬅️ Menu",
        "btn_refresh": "🔄 Refresh",
        "btn_again": "🔁 Again: {title}",
        "menu_button_webapp": "Stats",
        "pick_waifu": "Which companion?",
        # stat card
        "card_title": "<b>{name}</b> · level {level}",
        "card_xp": "✨ XP {bar} {xp_in_level}/{xp_for_level}",
        "card_xp_total": "   {xp} XP in total, {to_next} to level {next_level}",
        "card_energy": "⚡ Energy {bar} {energy}/{max_energy}",
        "card_energy_next": "   next +1 in {next} · full in {full}",
        "card_energy_full": "   full",
        "card_mood": "😊 Mood {bar} {mood}/{max_stat}",
        "card_loyalty": "💞 Loyalty {bar} {loyalty}/{max_stat}",
        "refreshed_toast": "Up to date",
        # events
        "events_title": "<b>Events for {name}</b> (⚡ {energy}/{max_energy})",
        "events_none": "No events are open right now. Check again later!",
        "event_line": "<b>{title}</b>: {cost} ⚡ → +{xp} XP, mood {mood}, loyalty {loyalty}",
        "event_cooldown": "   cooldown {cooldown}",
        "event_no_cooldown": "   no cooldown",
        "event_wait": "   ⏳ ready again in {wait}",
        "event_low_energy": "   🪫 needs more energy",
        "event_button": "{title} · {cost}⚡",
        "event_button_wait": "⏳ {title}",
        "more_events": "…and {count} more",
        # taking part
        "result_title": "✅ <b>{waifu}</b>: {event}",
        "result_changes": "+{xp} XP · {energy} ⚡ · mood {mood} · loyalty {loyalty}",
        "result_level_up": "🎉 Level up! {before} → {after}",
        "result_toast": "+{xp} XP",
        "result_replayed_toast": "Already done: counted once.",
        # help
        "help": (
            "<b>How to play</b>\n"
            "Your companion has energy, mood and loyalty. Taking part in events costs energy and "
            "brings XP; energy comes back by itself, +1 every minute.\n\n"
            "/menu: the main menu\n/profile: your companion's stats\n/events: what you can do now\n"
            "/start: meet a companion\n/help: this text"
        ),
        "unknown_text": "I answer to buttons and commands. Try /menu or /help.",
        "stale_button": "This button is out of date. Send /menu for fresh ones.",
        # refusals: from the error's class and its detail, never from its message
        "err_not_enough_energy": "Not enough energy: this needs {needed} ⚡, there is {energy}. Enough in {wait}.",
        "err_on_cooldown": "She needs a break from this one. Ready again in {wait}.",
        "err_event_not_open": "This event is not open right now. Send /events for the current ones.",
        "err_waifu_not_found": "That companion is not one of yours. Send /menu for fresh buttons.",
        "err_player_not_registered": "We have not met yet! Send /start first.",
        "err_invalid_argument": "Something in that request was not right. Send /menu and try again.",
        "err_request_key_conflict": "That button was already used. Send /menu for fresh ones.",
        "err_adopt_key_conflict": "You already chose from this list.",
        "err_limit_reached": "That is the limit for now.",
        "err_already_adopted": "She is already yours: each companion joins you once. Send /menu to see her.",
        "err_unavailable": "I can't reach my memory right now. Please try again in a moment.",
        "err_unexpected": "Oops, something went wrong on my side. Please try again.",
        # durations
        "dur_now": "a moment",
        "dur_seconds": "{n} s",
        "dur_minutes": "{n} min",
        "dur_min_sec": "{m}:{s:02d}",
        "dur_hours": "{h} h",
        "dur_hours_minutes": "{h} h {m} min",
        # bot commands (set_my_commands)
        "cmd_start": "Meet your companion",
        "cmd_menu": "Main menu",
        "cmd_profile": "Your companion's stats",
        "cmd_events": "Events you can take part in",
        "cmd_help": "How to play",
    },
}

DEFAULT_LANGUAGE = "en"
COMMANDS = ("start", "menu", "profile", "events", "help")


def pick_language(language_code: str | None) -> str:
    """'en-US' -> 'en'; unknown languages fall back to the default."""
    base = (language_code or "").split("-")[0].lower()
    return base if base in MESSAGES else DEFAULT_LANGUAGE


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
    """Texts in one language. `t(key, **values)` escapes every value that is not Html."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = language if language in MESSAGES else DEFAULT_LANGUAGE
        self._messages = MESSAGES[self.language]

    @classmethod
    def for_user(cls, language_code: str | None) -> Texts:
        return cls(pick_language(language_code))

    def __call__(self, key: str, **values: Any) -> Html:
        safe = {k: (v if isinstance(v, (int, float, Html)) else escape(v)) for k, v in values.items()}
        return Html(self._messages[key].format(**safe))

    # -- pieces -------------------------------------------------------------------------

    def duration(self, seconds: float) -> Html:
        """A wait for people: '42 s', '3:05', '25 min', '1 h 20 min'."""
        s = max(0, math.ceil(seconds))
        if s == 0:
            return self("dur_now")
        if s < 60:
            return self("dur_seconds", n=s)
        if s < 600:
            return self("dur_min_sec", m=s // 60, s=s % 60)
        minutes = math.ceil(s / 60)
        if minutes < 60:
            return self("dur_minutes", n=minutes)
        h, m = divmod(minutes, 60)
        return self("dur_hours", h=h) if m == 0 else self("dur_hours_minutes", h=h, m=m)

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
                lines.append(self("event_cooldown", cooldown=self.duration(e["cooldown_seconds"])))
            else:
                lines.append(self("event_no_cooldown"))
            if not e.get("enough_energy", True):
                lines.append(self("event_low_energy"))
        return self.lines(lines)

    def event_button(self, e: dict[str, Any]) -> str:
        title = shorten(e["title"], BUTTON_LABEL_LIMIT)
        if e.get("cooldown_remaining_seconds"):
            return plain(self("event_button_wait", title=title))
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

    def refusal(self, code: str, detail: dict[str, Any], *, adopting: bool = False) -> Html:
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
        if code == "request_key_conflict" and adopting:
            return self("err_adopt_key_conflict")
        if code == "limit_reached" and "template_code" in detail:
            return self("err_already_adopted")
        key = f"err_{code}"
        return self(key) if key in self._messages else self("err_unexpected")
