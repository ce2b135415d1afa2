"""Every player-facing text, in one place, in English and Russian.

Chat messages, buttons, the command menu, the web API's error messages and the Mini
App page's strings all come from MESSAGES (the page fetches its share, PAGE_KEYS, from
the server). Handlers never hold text. Texts are Telegram HTML: every value put into a
template is escaped unless it is already `Html` (built here), so a player named `<b>` or
a waifu called `Tom & Jerry` cannot break a message.

Which language: `effective_language(setting, language_code)`; the database answers the
same question for a registered player (game.effective_language in 0008.i18n.sql) and
returns it as `language` with the profile, so the bot asks nothing extra.
"""

from __future__ import annotations

import html
import math
import re
import string
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


# Placeholders are str.format fields. A word that goes with a number is a plural field:
# `{n:minute|minutes}` in English (one|other), `{n:минуту|минуты|минут}` in Russian
# (one|few|many); the field prints the form for n, the number itself is a plain `{n}`.
# Every language has every key with the same fields (tests/bot/test_i18n.py): add a key
# to all of them at once. Keys `web_*` and `dur_*` (and PAGE_KEYS) also reach the Mini App.
# Russian addresses the player as «ты», as games in Telegram do, and avoids gendered
# verbs about the player.
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        # /start and adoption
        "welcome_new": "Welcome, {name}! 🌸\nChoose your companion. She will be waiting for you here:",
        "starter_line": "<b>{name}</b> · {description}",
        "starter_button": "💕 {name}",
        "no_starters": "There is nobody to adopt right now. Please come back a little later.",
        "adopted": "🎉 <b>{waifu}</b> is now your companion! Take good care of her.",
        "adopted_toast": "Welcome home, {waifu}!",
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
        "event_button_low": "🪫 {title} · {cost}⚡",
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
            "/start: choose your first companion (afterwards it opens the menu)\n/help: this text"
        ),
        "unknown_text": "I answer to buttons and commands. Try /menu or /help.",
        "stale_button": "This button is out of date. Send /menu for fresh ones.",
        # refusals: chosen by the error's code, numbers from its detail, never its message
        "err_not_enough_energy": "Not enough energy: this needs {needed} ⚡, there is {energy}. Enough in {wait}.",
        "err_on_cooldown": "She needs a break from this one. Ready again in {wait}.",
        "err_event_not_open": "This event is not open right now. Send /events for the current ones.",
        "err_waifu_not_found": "That companion is not one of yours. Send /menu for fresh buttons.",
        "err_player_not_registered": "We have not met yet! Send /start to the bot first.",
        "err_invalid_argument": "Something in that request was not right. Send /menu and try again.",
        "err_request_key_conflict": "That button was already used. Send /menu for fresh ones.",
        "err_choice_already_made": "You already chose from this list.",
        "err_limit_reached": "That is the limit for now.",
        "err_already_adopted": "She is already yours: each companion joins you once. Send /menu to see her.",
        "err_unavailable": "I can't reach my memory right now. Please try again in a moment.",
        "err_unexpected": "Oops, something went wrong on my side. Please try again.",
        # refusals of the Mini App's API (the web layer's own codes)
        "err_auth_expired": "This session has expired. Close the app and open it again from the bot.",
        "err_auth_invalid": "Telegram did not confirm who you are. Close the app and open it again from the bot.",
        "err_webapp_not_configured": "The web app is not set up on this server yet.",
        "err_not_found": "There is nothing here.",
        "err_rate_limited": "Too many requests. Please wait a moment.",
        # durations: "in {wait}" reads "in 9 min 42 s"
        "dur_now": "a moment",
        "dur_s": "{n} s",
        "dur_min": "{n} min",
        "dur_min_s": "{m} min {s} s",
        "dur_h": "{h} h",
        "dur_h_min": "{h} h {m} min",
        # bot commands (set_my_commands)
        "cmd_start": "Begin, or open the menu",
        "cmd_menu": "Main menu",
        "cmd_profile": "Your companion's stats",
        "cmd_events": "Events you can take part in",
        "cmd_help": "How to play",
        # the Mini App page
        "web_title": "Your companions",
        "web_loading": "Loading…",
        "web_outside_telegram": ("This is the game's Telegram Mini App. Open it from the bot in Telegram (the "
                                 "“Open the app” button or the menu button): outside Telegram it cannot tell "
                                 "who you are."),
        "web_greeting": "Hi, {name}!",
        "web_no_waifu": "No companion yet: open the bot and pick one with /start.",
        "web_level": "Level {level}",
        "web_xp": "XP",
        "web_xp_label": "XP to the next level",
        "web_energy": "Energy",
        "web_mood": "Mood",
        "web_loyalty": "Loyalty",
        "web_energy_full": "Full",
        "web_energy_next": "+1 in {wait}",
        "web_energy_full_in": "full in {wait}",
        "web_events": "Events",
        "web_events_loading": "Loading events…",
        "web_go": "Go",
        "web_daily": "Daily reward",
        "web_daily_claim": "Claim",
        "web_daily_ready": "Ready: day {n} of your streak.",
        "web_daily_wait": "Next one in {time}. Streak: {n} {n:day|days}.",
        "web_daily_claimed": "Daily reward claimed! Streak: {n} {n:day|days}.",
        "web_notifications": "Tell me when she is rested",
        "web_wait": "⏳ {wait}",
        "web_need_energy": "Need ⚡{cost}",
        "web_term_xp": "+{xp} XP",
        "web_term_mood": "mood {delta}",
        "web_term_loyalty": "loyalty {delta}",
        "web_term_cooldown": "cooldown {wait}",
        "web_result": "{title}: {changes}",
        "web_network": "No connection to the game.",
        "web_failed": "That did not work.",
        # notifications (H5)
        "rested_one": "🌸 <b>{name}</b> is rested: ⚡ {energy}. She is waiting for you!",
        "rested_many_title": "🌸 Your companions are rested:",
        "rested_line": "• <b>{name}</b> ⚡ {energy}",
        "btn_events_of": "🎉 {name}",
        "btn_notify_off": "🔕 Stop these messages",
        # settings (H5)
        "btn_settings": "⚙️ Settings",
        "settings_title": "⚙️ <b>Settings</b>",
        "settings_notifications_on": "🔔 Notifications: on. I write when a companion is rested.",
        "settings_notifications_off": "🔕 Notifications: off.",
        "settings_language": "🌐 Language: {language}",
        "settings_timezone": "🕒 Timezone: {timezone} (the daily reward follows your day there; "
                             "change it with /timezone Europe/Moscow)",
        "settings_daily_ready": "🎁 Daily reward: ready! Streak: {streak} {streak:day|days}.",
        "settings_daily_wait": "🎁 Daily reward: ready in {wait}. Streak: {streak} {streak:day|days}.",
        "lang_auto": "Auto",
        "lang_en": "English",
        "lang_ru": "Русский",
        "lang_selected": "✅ {language}",
        "btn_notify_on": "🔔 Turn notifications on",
        "btn_notify_off_settings": "🔕 Turn notifications off",
        "notify_on_done": "🔔 Notifications are on: I will write when a companion is rested.",
        "notify_off_done": "🔕 Notifications are off. Send /notify on to turn them back on.",
        "notify_usage": "Send /notify on or /notify off.",
        "notify_on_toast": "Notifications on",
        "notify_off_toast": "Notifications off. /notify on brings them back.",
        "language_toast": "Language: {language}",
        "timezone_set": "🕒 Timezone: {timezone}. The daily reward now follows your day there.",
        "timezone_usage": ("Your timezone is {timezone}. To change it, send e.g. /timezone Europe/Moscow "
                           "or /timezone UTC."),
        "timezone_unknown": ("I don't know the timezone “{value}”. Try a name like Europe/Moscow, "
                             "America/New_York or UTC."),
        # daily reward (H5)
        "btn_daily_ready": "🎁 Daily reward",
        "btn_daily_wait": "🎁 Daily in {wait}",
        "daily_title": "🎁 <b>Daily reward</b>: day {streak} of your streak!",
        "daily_reward": "Each companion: +{energy} ⚡ · +{xp} XP · mood +{mood} · loyalty +{loyalty}",
        "daily_line": "• <b>{name}</b>: ⚡ {energy}/{max_energy} · level {level}",
        "daily_next": "The next one is ready in {wait}: come back then to keep the streak going.",
        "daily_toast": "+{energy} ⚡ · +{xp} XP",
        "daily_replayed_toast": "Already claimed: counted once.",
        "daily_no_waifu": "There is nobody to reward yet. Send /start to meet a companion.",
        "err_daily_claimed": "You already took today's reward. The next one is ready in {wait}.",
        "cmd_daily": "Daily reward",
        "cmd_settings": "Settings and notifications",
    },
    "ru": {
        "welcome_new": "Добро пожаловать, {name}! 🌸\nВыбери себе спутницу. Она будет ждать тебя здесь:",
        "starter_line": "<b>{name}</b> · {description}",
        "starter_button": "💕 {name}",
        "no_starters": "Сейчас выбрать некого. Загляни чуть позже.",
        "adopted": "🎉 <b>{waifu}</b> теперь твоя спутница! Береги её.",
        "adopted_toast": "{waifu}, добро пожаловать домой!",
        "menu": "Привет, {name}! Чем займёмся?",
        "menu_no_waifu": "Привет, {name}! У тебя пока нет спутницы. Отправь /start, чтобы познакомиться.",
        "btn_card": "📊 Показатели",
        "btn_card_of": "📊 {name}",
        "btn_events": "🎉 События",
        "btn_webapp": "📱 Открыть приложение",
        "btn_help": "❓ Помощь",
        "btn_menu": "⬅️ Меню",
        "btn_refresh": "🔄 Обновить",
        "btn_again": "🔁 Ещё раз: {title}",
        "menu_button_webapp": "Показатели",
        "pick_waifu": "Какую спутницу?",
        "card_title": "<b>{name}</b> · уровень {level}",
        "card_xp": "✨ Опыт {bar} {xp_in_level}/{xp_for_level}",
        "card_xp_total": "   всего опыта: {xp}, до уровня {next_level} ещё {to_next}",
        "card_energy": "⚡ Энергия {bar} {energy}/{max_energy}",
        "card_energy_next": "   +1 через {next} · полная через {full}",
        "card_energy_full": "   полная",
        "card_mood": "😊 Настроение {bar} {mood}/{max_stat}",
        "card_loyalty": "💞 Преданность {bar} {loyalty}/{max_stat}",
        "refreshed_toast": "Всё актуально",
        "events_title": "<b>{name}: события</b> (⚡ {energy}/{max_energy})",
        "events_none": "Сейчас открытых событий нет. Загляни позже!",
        "event_line": "<b>{title}</b>: {cost} ⚡ → +{xp} опыта, настроение {mood}, преданность {loyalty}",
        "event_cooldown": "   не чаще раза в {cooldown}",
        "event_no_cooldown": "   без перерыва",
        "event_wait": "   ⏳ снова можно через {wait}",
        "event_low_energy": "   🪫 не хватает энергии",
        "event_button": "{title} · {cost}⚡",
        "event_button_wait": "⏳ {title}",
        "event_button_low": "🪫 {title} · {cost}⚡",
        "more_events": "…и ещё {count}",
        "result_title": "✅ <b>{waifu}</b>: {event}",
        "result_changes": "+{xp} опыта · {energy} ⚡ · настроение {mood} · преданность {loyalty}",
        "result_level_up": "🎉 Новый уровень! {before} → {after}",
        "result_toast": "+{xp} опыта",
        "result_replayed_toast": "Уже сделано: засчитано один раз.",
        "help": (
            "<b>Как играть</b>\n"
            "У твоей спутницы есть энергия, настроение и преданность. Участие в событиях тратит энергию "
            "и приносит опыт; энергия восстанавливается сама, +1 каждую минуту.\n\n"
            "/menu: главное меню\n/profile: показатели спутницы\n/events: что можно сделать сейчас\n"
            "/start: выбрать первую спутницу (потом открывает меню)\n/help: эта справка"
        ),
        "unknown_text": "Я понимаю кнопки и команды. Попробуй /menu или /help.",
        "stale_button": "Эта кнопка устарела. Отправь /menu, чтобы получить свежие.",
        "err_not_enough_energy": "Не хватает энергии: нужно {needed} ⚡, есть {energy}. Хватит через {wait}.",
        "err_on_cooldown": "Ей нужен перерыв от этого занятия. Снова можно через {wait}.",
        "err_event_not_open": "Это событие сейчас закрыто. Отправь /events, чтобы увидеть открытые.",
        "err_waifu_not_found": "Это не твоя спутница. Отправь /menu, чтобы получить свежие кнопки.",
        "err_player_not_registered": "Мы ещё не знакомы! Сначала отправь боту /start.",
        "err_invalid_argument": "В запросе что-то не так. Отправь /menu и попробуй ещё раз.",
        "err_request_key_conflict": "Эта кнопка уже использована. Отправь /menu, чтобы получить свежие.",
        "err_choice_already_made": "Из этого списка уже выбрано.",
        "err_limit_reached": "Пока это предел.",
        "err_already_adopted": ("Она уже твоя: каждая спутница приходит только один раз. "
                                "Отправь /menu, чтобы её увидеть."),
        "err_unavailable": "Не могу сейчас достучаться до своей памяти. Попробуй чуть позже.",
        "err_unexpected": "Ой, у меня что-то пошло не так. Попробуй ещё раз.",
        "err_auth_expired": "Сессия истекла. Закрой приложение и открой его снова из бота.",
        "err_auth_invalid": "Telegram не подтвердил, кто ты. Закрой приложение и открой его снова из бота.",
        "err_webapp_not_configured": "Приложение на этом сервере ещё не настроено.",
        "err_not_found": "Здесь ничего нет.",
        "err_rate_limited": "Слишком много запросов. Подожди немного.",
        # Durations follow «через»: the accusative (1 минуту, 2 минуты, 5 минут).
        "dur_now": "мгновение",
        "dur_s": "{n} {n:секунду|секунды|секунд}",
        "dur_min": "{n} {n:минуту|минуты|минут}",
        "dur_min_s": "{m} {m:минуту|минуты|минут} {s} {s:секунду|секунды|секунд}",
        "dur_h": "{h} {h:час|часа|часов}",
        "dur_h_min": "{h} {h:час|часа|часов} {m} {m:минуту|минуты|минут}",
        "cmd_start": "Начать или открыть меню",
        "cmd_menu": "Главное меню",
        "cmd_profile": "Показатели спутницы",
        "cmd_events": "События, в которых можно участвовать",
        "cmd_help": "Как играть",
        "web_title": "Твои спутницы",
        "web_loading": "Загрузка…",
        "web_outside_telegram": ("Это мини-приложение игры в Telegram. Открой его из бота в Telegram (кнопка "
                                 "«Открыть приложение» или кнопка меню): вне Telegram оно не знает, кто ты."),
        "web_greeting": "Привет, {name}!",
        "web_no_waifu": "Спутницы пока нет: открой бота и выбери её через /start.",
        "web_level": "Уровень {level}",
        "web_xp": "Опыт",
        "web_xp_label": "Опыт до следующего уровня",
        "web_energy": "Энергия",
        "web_mood": "Настроение",
        "web_loyalty": "Преданность",
        "web_energy_full": "Полная",
        "web_energy_next": "+1 через {wait}",
        "web_energy_full_in": "полная через {wait}",
        "web_events": "События",
        "web_events_loading": "Загрузка событий…",
        "web_go": "Вперёд",
        "web_daily": "Ежедневная награда",
        "web_daily_claim": "Забрать",
        "web_daily_ready": "Готово: день {n} серии.",
        "web_daily_wait": "Следующая через {time}. Серия: {n} {n:день|дня|дней}.",
        "web_daily_claimed": "Награда получена! Серия: {n} {n:день|дня|дней}.",
        "web_notifications": "Сообщать, когда она отдохнула",
        "web_wait": "⏳ {wait}",
        "web_need_energy": "Нужно ⚡{cost}",
        "web_term_xp": "+{xp} опыта",
        "web_term_mood": "настроение {delta}",
        "web_term_loyalty": "преданность {delta}",
        "web_term_cooldown": "не чаще раза в {wait}",
        "web_result": "{title}: {changes}",
        "web_network": "Нет связи с игрой.",
        "web_failed": "Не получилось.",
        # notifications
        "rested_one": "🌸 <b>{name}</b> отдохнула: ⚡ {energy}. Она ждёт тебя!",
        "rested_many_title": "🌸 Твои спутницы отдохнули:",
        "rested_line": "• <b>{name}</b> ⚡ {energy}",
        "btn_events_of": "🎉 {name}",
        "btn_notify_off": "🔕 Не присылать такие сообщения",
        # settings
        "btn_settings": "⚙️ Настройки",
        "settings_title": "⚙️ <b>Настройки</b>",
        "settings_notifications_on": "🔔 Уведомления: включены. Я напишу, когда спутница отдохнёт.",
        "settings_notifications_off": "🔕 Уведомления: выключены.",
        "settings_language": "🌐 Язык: {language}",
        "settings_timezone": "🕒 Часовой пояс: {timezone} (по нему считается день ежедневной награды; "
                             "сменить: /timezone Europe/Moscow)",
        "settings_daily_ready": "🎁 Ежедневная награда: готова! Серия: {streak} {streak:день|дня|дней}.",
        "settings_daily_wait": "🎁 Ежедневная награда: через {wait}. Серия: {streak} {streak:день|дня|дней}.",
        "lang_auto": "Авто",
        "lang_en": "English",
        "lang_ru": "Русский",
        "lang_selected": "✅ {language}",
        "btn_notify_on": "🔔 Включить уведомления",
        "btn_notify_off_settings": "🔕 Выключить уведомления",
        "notify_on_done": "🔔 Уведомления включены: я напишу, когда спутница отдохнёт.",
        "notify_off_done": "🔕 Уведомления выключены. Отправь /notify on, чтобы включить их снова.",
        "notify_usage": "Отправь /notify on или /notify off.",
        "notify_on_toast": "Уведомления включены",
        "notify_off_toast": "Уведомления выключены. /notify on вернёт их.",
        "language_toast": "Язык: {language}",
        "timezone_set": "🕒 Часовой пояс: {timezone}. Теперь день ежедневной награды считается по нему.",
        "timezone_usage": ("Твой часовой пояс: {timezone}. Чтобы сменить, отправь, например, "
                           "/timezone Europe/Moscow или /timezone UTC."),
        "timezone_unknown": ("Я не знаю часовой пояс «{value}». Попробуй название вроде Europe/Moscow, "
                             "America/New_York или UTC."),
        # daily reward
        "btn_daily_ready": "🎁 Ежедневная награда",
        "btn_daily_wait": "🎁 Награда через {wait}",
        "daily_title": "🎁 <b>Ежедневная награда</b>: день серии — {streak}!",
        "daily_reward": "Каждой спутнице: +{energy} ⚡ · +{xp} опыта · настроение +{mood} · преданность +{loyalty}",
        "daily_line": "• <b>{name}</b>: ⚡ {energy}/{max_energy} · уровень {level}",
        "daily_next": "Следующая будет через {wait}: возвращайся, чтобы не прервать серию.",
        "daily_toast": "+{energy} ⚡ · +{xp} опыта",
        "daily_replayed_toast": "Уже получено: засчитано один раз.",
        "daily_no_waifu": "Пока некого награждать. Отправь /start, чтобы познакомиться со спутницей.",
        "err_daily_claimed": "Сегодняшняя награда уже получена. Следующая будет через {wait}.",
        "cmd_daily": "Ежедневная награда",
        "cmd_settings": "Настройки и уведомления",
    },
}


DEFAULT_LANGUAGE = "en"
LANGUAGES = tuple(MESSAGES)
# The player's setting (players.language): 'auto' follows Telegram's language_code.
LANGUAGE_SETTINGS = ("auto", *LANGUAGES)
# Telegram language codes answered in Russian when the player chose nothing: Russian, and
# Belarusian, Kazakh and Kyrgyz, whose countries have Russian as an official language and
# whose Telegram users mostly read it. Not Ukrainian: many Ukrainians do not want to be
# addressed in Russian; English is the neutral default, and /settings offers Russian.
# Keep in step with game.effective_language() in 0008.i18n.sql (a test compares them).
RUSSIAN_READERS = frozenset({"ru", "be", "kk", "ky"})
COMMANDS = ("start", "menu", "profile", "events", "daily", "settings", "help")
# Texts the Mini App page needs (besides the web_* and dur_* keys): served by the web app.
PAGE_KEYS = tuple(sorted({k for k in MESSAGES[DEFAULT_LANGUAGE] if k.startswith(("web_", "dur_"))}
                         | {"events_none", "result_changes", "result_level_up"}))


# Web API error codes that share one text.
_API_ERROR_KEYS = {"auth_missing": "auth_invalid", "auth_malformed": "auth_invalid", "unauthorized": "auth_invalid",
                   "internal_error": "unexpected"}


def effective_language(setting: str | None, language_code: str | None) -> str:
    """The language to speak: the player's setting, else Telegram's language_code
    ('en-US' -> 'en'; RUSSIAN_READERS -> 'ru'), else the default."""
    if setting in MESSAGES:
        return setting
    base = (language_code or "").split("-")[0].lower()
    if base in RUSSIAN_READERS:
        return "ru"
    return base if base in MESSAGES else DEFAULT_LANGUAGE


def command_menus() -> dict[str | None, str]:
    """Telegram language_code of a command menu (None: everyone else) -> its language.
    Players whose Telegram speaks be, kk or ky are answered in Russian: so is their menu."""
    codes = sorted((set(LANGUAGES) | RUSSIAN_READERS) - {DEFAULT_LANGUAGE})
    return {None: DEFAULT_LANGUAGE, **{code: effective_language(None, code) for code in codes}}


def plural_index(language: str, n: int) -> int:
    """Which form a count takes: English one|other; Russian one|few|many (CLDR rules for
    integers: 1, 21, 101 минута; 2-4, 22-24 минуты; 0, 5-20, 25-30, 111-114 минут)."""
    n = abs(n)
    if language == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return 0
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return 1
        return 2
    return 0 if n == 1 else 1


class _Formatter(string.Formatter):
    """str.format plus plural fields: `{n:one|few|many}` prints the form for n."""

    def __init__(self, language: str) -> None:
        self.language = language

    def format_field(self, value: Any, format_spec: str) -> Any:
        if "|" in format_spec:
            forms = format_spec.split("|")
            return forms[min(plural_index(self.language, int(value)), len(forms) - 1)]
        return super().format_field(value, format_spec)


_FORMATTERS = {language: _Formatter(language) for language in MESSAGES}


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
        self.language = language if language in MESSAGES else DEFAULT_LANGUAGE
        self._messages = MESSAGES[self.language]
        self._formatter = _FORMATTERS[self.language]

    def use(self, language: str | None) -> None:
        """Speak the language the database gave for the player (`language` of a profile)."""
        if language in MESSAGES:
            self._set(language)
            self.from_player = True

    @classmethod
    def for_user(cls, language_code: str | None, setting: str | None = None) -> Texts:
        return cls(effective_language(setting, language_code))

    def __call__(self, key: str, **values: Any) -> Html:
        safe = {k: (v if isinstance(v, (int, float, Html)) else escape(v)) for k, v in values.items()}
        template = self._messages[key]
        if "|" in template:
            return Html(self._formatter.vformat(template, (), safe))
        return Html(template.format(**safe))

    def page(self) -> dict[str, str]:
        """The Mini App page's texts in this language (templates, unformatted)."""
        return {key: self._messages[key] for key in PAGE_KEYS}

    # -- pieces -------------------------------------------------------------------------

    def duration(self, seconds: float) -> Html:
        """A wait for people, in one style: '42 s', '9 min 42 s', '25 min', '1 h 20 min'.
        Seconds are shown under ten minutes; longer waits round up to the minute.
        (bot/webapp/static/app.js formats the page's countdowns by the same rule.)"""
        s = max(0, math.ceil(seconds))
        if s == 0:
            return self("dur_now")
        if s < 60:
            return self("dur_s", n=s)
        if s < 600:
            m, rest = divmod(s, 60)
            return self("dur_min_s", m=m, s=rest) if rest else self("dur_min", n=m)
        minutes = math.ceil(s / 60)
        if minutes < 60:
            return self("dur_min", n=minutes)
        h, m = divmod(minutes, 60)
        return self("dur_h", h=h) if m == 0 else self("dur_h_min", h=h, m=m)

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
        if code == "limit_reached" and "template_code" in detail:
            return self("err_already_adopted")
        if code == "limit_reached" and detail.get("limit") == "daily":
            return self("err_daily_claimed", wait=self.until(detail.get("available_at"), None))
        key = f"err_{code}"
        return self(key) if key in self._messages else self("err_unexpected")

    def api_error(self, code: str, detail: dict[str, Any] | None = None) -> str | None:
        """The Mini App API's message for an error code (plain text), or None for codes
        meant for developers only (a malformed request no page of ours sends)."""
        code = _API_ERROR_KEYS.get(code, code)
        if f"err_{code}" not in self._messages:
            return None
        return plain(self.refusal(code, detail or {}))
