"""Every player-facing text's English source, by key: the messages gettext translates.

`_("text")` and `ngettext("one", "other", "count")` here only mark a text for Babel's
extraction (`make messages`); bot/texts.py translates them through the catalogues in
bot/locales/<lang>/LC_MESSAGES/messages.po. Placeholders are str.format fields; the
third argument of `ngettext` names the field whose number picks the plural form. A text
needs no form of its own in English to get one in another language: `{n} min` is one
text in English and three in Russian (минуту, минуты, минут).

Add a text: a key here, `make messages`, its translation in each .po file, `make
compile-messages` (README, "Translations").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    """An English source text; `plural` and `count` for a text whose form depends on a number."""

    singular: str
    plural: str | None = None
    count: str | None = None


def _(singular: str) -> Message:
    return Message(singular)


def ngettext(singular: str, plural: str, count: str) -> Message:
    return Message(singular, plural, count)


# Texts are Telegram HTML (values are escaped by bot/texts.py). Keys `web_*` and `dur_*`
# (and texts.PAGE_KEYS) also reach the Mini App page.
MESSAGES: dict[str, Message] = {
    # /start and adoption
    "welcome_new": _("Welcome, {name}! 🌸\nChoose your companion. She will be waiting for you here:"),
    "starter_line": _("<b>{name}</b> · {description}"),
    "starter_button": _("💕 {name}"),
    "no_starters": _("There is nobody to adopt right now. Please come back a little later."),
    "adopted": _("🎉 <b>{waifu}</b> is now your companion! Take good care of her."),
    "adopted_toast": _("Welcome home, {waifu}!"),
    # main menu
    "menu": _("Hi, {name}! What shall we do?"),
    "menu_no_waifu": _("Hi, {name}! You have no companion yet. Send /start to meet one."),
    "btn_card": _("📊 Stats"),
    "btn_card_of": _("📊 {name}"),
    "btn_events": _("🎉 Events"),
    "btn_webapp": _("📱 Open the app"),
    "btn_help": _("❓ Help"),
    "btn_menu": _("⬅️ Menu"),
    "btn_refresh": _("🔄 Refresh"),
    "btn_again": _("🔁 Again: {title}"),
    "menu_button_webapp": _("Stats"),
    "pick_waifu": _("Which companion?"),
    # stat card
    "card_title": _("<b>{name}</b> · level {level}"),
    "card_xp": _("✨ XP {bar} {xp_in_level}/{xp_for_level}"),
    "card_xp_total": _("   {xp} XP in total, {to_next} to level {next_level}"),
    "card_energy": _("⚡ Energy {bar} {energy}/{max_energy}"),
    "card_energy_next": _("   next +1 in {next} · full in {full}"),
    "card_energy_full": _("   full"),
    "card_mood": _("😊 Mood {bar} {mood}/{max_stat}"),
    "card_loyalty": _("💞 Loyalty {bar} {loyalty}/{max_stat}"),
    "refreshed_toast": _("Up to date"),
    # events
    "events_title": _("<b>Events for {name}</b> (⚡ {energy}/{max_energy})"),
    "events_none": _("No events are open right now. Check again later!"),
    "event_line": _("<b>{title}</b>: {cost} ⚡ → +{xp} XP, mood {mood}, loyalty {loyalty}"),
    "event_cooldown": _("   cooldown {cooldown}"),
    "event_no_cooldown": _("   no cooldown"),
    "event_wait": _("   ⏳ ready again in {wait}"),
    "event_low_energy": _("   🪫 needs more energy"),
    "event_button": _("{title} · {cost}⚡"),
    "event_button_wait": _("⏳ {title}"),
    "event_button_low": _("🪫 {title} · {cost}⚡"),
    "more_events": _("…and {count} more"),
    # taking part
    "result_title": _("✅ <b>{waifu}</b>: {event}"),
    "result_changes": _("+{xp} XP · {energy} ⚡ · mood {mood} · loyalty {loyalty}"),
    "result_level_up": _("🎉 Level up! {before} → {after}"),
    "result_toast": _("+{xp} XP"),
    "result_replayed_toast": _("Already done: counted once."),
    # help
    # /help: this, then a line per command (texts.COMMANDS) with its cmd_* description
    "help": _("<b>How to play</b>\n"
              "Your companion has energy, mood and loyalty. Taking part in events costs energy and "
              "brings XP; energy comes back by itself, +1 every minute.\n\n"
              "<b>Commands</b>"),
    "help_command": _("/{command}: {description}"),
    "unknown_text": _("I answer to buttons and commands. Try /menu or /help."),
    "stale_button": _("This button is out of date. Send /menu for fresh ones."),
    # refusals: chosen by the error's code, numbers from its detail, never its message
    "err_not_enough_energy": _("Not enough energy: this needs {needed} ⚡, there is {energy}. Enough in {wait}."),
    "err_on_cooldown": _("She needs a break from this one. Ready again in {wait}."),
    "err_event_not_open": _("This event is not open right now. Send /events for the current ones."),
    "err_waifu_not_found": _("That companion is not one of yours. Send /menu for fresh buttons."),
    "err_player_not_registered": _("We have not met yet! Send /start to the bot first."),
    "err_invalid_argument": _("Something in that request was not right. Send /menu and try again."),
    "err_request_key_conflict": _("That button was already used. Send /menu for fresh ones."),
    "err_choice_already_made": _("You already chose from this list."),
    "err_limit_reached": _("That is the limit for now."),
    "err_already_adopted": _("She is already yours: each companion joins you once. Send /menu to see her."),
    "err_unavailable": _("I can't reach my memory right now. Please try again in a moment."),
    "err_unexpected": _("Oops, something went wrong on my side. Please try again."),
    # refusals of the Mini App's API (the web layer's own codes)
    "err_auth_expired": _("This session has expired. Close the app and open it again from the bot."),
    "err_auth_invalid": _("Telegram did not confirm who you are. Close the app and open it again from the bot."),
    "err_webapp_not_configured": _("The web app is not set up on this server yet."),
    "err_not_found": _("There is nothing here."),
    "err_rate_limited": _("Too many requests. Please wait a moment."),
    # durations: "in {wait}" reads "in 9 min 42 s"
    "dur_now": _("a moment"),
    "dur_s": ngettext("{n} s",
                      "{n} s", "n"),
    "dur_min": ngettext("{n} min",
                        "{n} min", "n"),
    "dur_h": ngettext("{h} h",
                      "{h} h", "h"),
    # Translators: a period of exactly one unit, as in «once every hour» (ru: «раз в час»)
    "dur_per_h": _("1 h"),
    "dur_per_min": _("1 min"),
    # bot commands (set_my_commands)
    "cmd_start": _("Begin, or open the menu"),
    "cmd_menu": _("Main menu"),
    "cmd_profile": _("Your companion's stats"),
    "cmd_events": _("Events you can take part in"),
    "cmd_help": _("How to play"),
    # the Mini App page
    "web_title": _("Your companions"),
    "web_loading": _("Loading…"),
    "web_outside_telegram": _("This is the game's Telegram Mini App. Open it from the bot in Telegram (the “Open "
                             "the app” button or the menu button): outside Telegram it cannot tell who you are."),
    "web_greeting": _("Hi, {name}!"),
    "web_no_waifu": _("No companion yet: open the bot and pick one with /start."),
    "web_level": _("Level {level}"),
    "web_xp": _("XP"),
    "web_xp_label": _("XP to the next level"),
    "web_energy": _("Energy"),
    "web_mood": _("Mood"),
    "web_loyalty": _("Loyalty"),
    "web_energy_full": _("Full"),
    "web_energy_next": _("+1 in {wait}"),
    "web_energy_full_in": _("full in {wait}"),
    "web_events": _("Events"),
    "web_events_loading": _("Loading events…"),
    "web_go": _("Go"),
    "web_daily": _("Daily reward"),
    "web_daily_claim": _("Claim"),
    "web_daily_ready": _("Ready: day {n} of your streak."),
    "web_daily_wait": ngettext("Next one in {time}. Streak: {n} day.",
                               "Next one in {time}. Streak: {n} days.", "n"),
    "web_daily_claimed": ngettext("Daily reward claimed! Streak: {n} day.",
                                  "Daily reward claimed! Streak: {n} days.", "n"),
    "web_notifications": _("Tell me when she is rested"),
    "web_wait": _("⏳ {wait}"),
    "web_need_energy": _("Need ⚡{cost}"),
    "web_term_xp": _("+{xp} XP"),
    "web_term_mood": _("mood {delta}"),
    "web_term_loyalty": _("loyalty {delta}"),
    "web_term_cooldown": _("cooldown {wait}"),
    "web_result": _("{title}: {changes}"),
    "web_network": _("No connection to the game."),
    "web_failed": _("That did not work."),
    # notifications (H5)
    "rested_one": _("🌸 <b>{name}</b> is rested: ⚡ {energy}. She is waiting for you!"),
    "rested_many_title": _("🌸 Your companions are rested:"),
    "rested_line": _("• <b>{name}</b> ⚡ {energy}"),
    "btn_events_of": _("🎉 {name}"),
    "btn_notify_off": _("🔕 Stop these messages"),
    # settings (H5)
    "btn_settings": _("⚙️ Settings"),
    "settings_title": _("⚙️ <b>Settings</b>"),
    "settings_notifications_on": _("🔔 Notifications: on. I write when a companion is rested."),
    "settings_notifications_off": _("🔕 Notifications: off."),
    "settings_language": _("🌐 Language: {language}"),
    "settings_timezone": _("🕒 Timezone: {timezone} (the daily reward follows your "
                          "day there; change it with /timezone Europe/Moscow)"),
    "settings_daily_ready": ngettext("🎁 Daily reward: ready! Streak: {streak} day.",
                                     "🎁 Daily reward: ready! Streak: {streak} days.", "streak"),
    "settings_daily_wait": ngettext("🎁 Daily reward: ready in {wait}. Streak: {streak} day.",
                                    "🎁 Daily reward: ready in {wait}. Streak: {streak} days.", "streak"),
    "lang_auto": _("Auto"),
    "lang_en": _("English"),
    "lang_ru": _("Русский"),
    "lang_selected": _("✅ {language}"),
    "btn_notify_on": _("🔔 Turn notifications on"),
    "btn_notify_off_settings": _("🔕 Turn notifications off"),
    "notify_on_done": _("🔔 Notifications are on: I will write when a companion is rested."),
    "notify_off_done": _("🔕 Notifications are off. Send /notify on to turn them back on."),
    "notify_usage": _("Send /notify on or /notify off."),
    "notify_on_toast": _("Notifications on"),
    "notify_off_toast": _("Notifications off. /notify on brings them back."),
    "language_toast": _("Language: {language}"),
    "timezone_set": _("🕒 Timezone: {timezone}. The daily reward now follows your day there."),
    "timezone_usage": _("Your timezone is {timezone}. To change it, send "
                       "e.g. /timezone Europe/Moscow or /timezone UTC."),
    "timezone_unknown": _("I don't know the timezone “{value}”. Try a name "
                         "like Europe/Moscow, America/New_York or UTC."),
    # daily reward (H5)
    "btn_daily_ready": _("🎁 Daily reward"),
    "btn_daily_wait": _("🎁 Daily in {wait}"),
    "daily_title": _("🎁 <b>Daily reward</b>: day {streak} of your streak!"),
    "daily_reward": _("Each companion: +{energy} ⚡ · +{xp} XP · mood +{mood} · loyalty +{loyalty}"),
    "daily_line": _("• <b>{name}</b>: ⚡ {energy}/{max_energy} · level {level}"),
    "daily_next": _("The next one is ready in {wait}: come back then to keep the streak going."),
    "daily_toast": _("+{energy} ⚡ · +{xp} XP"),
    "daily_replayed_toast": _("Already claimed: counted once."),
    "daily_no_waifu": _("There is nobody to reward yet. Send /start to meet a companion."),
    "err_daily_claimed": _("You already took today's reward. The next one is ready in {wait}."),
    "cmd_daily": _("Daily reward"),
    "cmd_settings": _("Settings and notifications"),
    "cmd_notify": _("Turn notifications on or off (/notify on, /notify off)"),
    "cmd_timezone": _("Your timezone for the daily reward (/timezone Europe/Moscow)"),
    # a duration of two units: {larger} '1 h', {smaller} '20 min'
    "dur_pair": _("{larger} {smaller}"),
    # issue 19: the collection
    "cmd_waifus": _("Your collection: adopt another, pick one"),
    "cmd_shop": _("The shop: gifts for coins"),
    "cmd_inventory": _("Your coins and gifts"),
    "cmd_top": _("Leaderboards (in a group: the group's)"),
    "cmd_gift": _("In a group, as a reply: a gift for that member's companion"),
    "cmd_group_events": _("Group events on or off (group admins)"),
    "rarity_common": _("common"),
    "rarity_rare": _("rare"),
    "rarity_epic": _("epic"),
    "collection_title": _("<b>Your collection</b>: {owned} of {max}"),
    "collection_line": _("{mark} <b>{name}</b> · {rarity} · level {level}"),
    "collection_adopt_line": _("➕ {name} · {rarity}"),
    "collection_full": _("Your collection is full."),
    "collection_hint": _("⭐ takes part in events and group events. Tap ⭐ with a name to choose her, 📊 to see "
                         "her card."),
    "btn_pick": _("⭐ {name}"),
    "btn_adopt": _("➕ {name}"),
    "btn_collection": _("💞 Collection"),
    "picked_toast": _("{name} will take part now"),
    "err_collection_full": _("Your collection is full ({max} companions)."),
    # coins, shop, inventory, gifts
    "shop_title": _("🛍 <b>Shop</b> · you have {coins} 🪙"),
    "shop_line": _("<b>{name}</b>: {price} 🪙 · {effects}"),
    "shop_empty": _("The shop is empty right now."),
    "effect_mood": _("mood {delta}"),
    "effect_loyalty": _("loyalty {delta}"),
    "effect_energy": _("energy {delta}"),
    "effect_cooldown": _("once per {period} for each companion"),
    "btn_buy": _("🪙 {price} · {name}"),
    "bought_toast": _("Bought: {name}. {coins} 🪙 left"),
    "bought_replayed_toast": _("Already bought: counted once."),
    "inventory_title": _("🎒 <b>Your things</b> · {coins} 🪙"),
    "inventory_line": _("{name} × {quantity}"),
    "inventory_empty": _("Nothing yet: the /shop has gifts."),
    "inventory_gift_hint": _("Tap to give it to {name}."),
    "btn_give": _("🎁 {item} → {name}"),
    "btn_shop": _("🛍 Shop"),
    "btn_inventory": _("🎒 Things"),
    "gift_given": _("🎁 <b>{name}</b> got {item}: mood {mood} · loyalty {loyalty} · energy {energy}"),
    "gift_given_other": _("🎁 {giver} gave <b>{name}</b> {item}: mood {mood} · loyalty {loyalty}"),
    "gift_toast": _("{name} loved it!"),
    "gift_replayed_toast": _("Already given: counted once."),
    "gift_usage": _("Reply to a member's message with /gift and the item, e.g. /gift flowers. Items: {items}."),
    "gift_private_usage": _("Give gifts from /inventory; in a group, reply to a member's message with "
                            "/gift and the item, e.g. /gift flowers."),
    "gift_no_waifu": _("{name} has no companion to give it to yet."),
    "result_coins": _("+{coins} 🪙"),
    "daily_coins": _("Coins: +{coins} 🪙"),
    "err_not_enough_coins": _("Not enough coins: this costs {needed} 🪙, you have {coins}."),
    "err_item_not_found": _("There is no such thing in the shop."),
    "err_not_in_inventory": _("You have none of these. The /shop sells them."),
    "err_not_group_member": _("That only works between members of this group: each of you uses the bot here first."),
    "err_group_event_not_open": _("This group event is over."),
    "err_not_group_admin": _("Only the group's administrators can do that."),
    "err_item_on_cooldown": _("She got this one recently. Again in {wait}."),
    # leaderboards
    "top_title_all": _("🏆 <b>Top players</b> · all time"),
    "top_title_week": _("🏆 <b>Top players</b> · this week"),
    "top_title_group_all": _("🏆 <b>Top of this group</b> · all time"),
    "top_title_group_week": _("🏆 <b>Top of this group</b> · this week"),
    "top_line": _("{rank}. {name}: {xp} XP"),
    "top_empty": _("Nobody has XP here yet."),
    "top_me": _("You: place {rank} with {xp} XP"),
    "top_me_about": _("You: about place {rank} with {xp} XP"),
    "top_week_resets": _("The week starts again on Monday 00:00 UTC."),
    "btn_top_week": _("📅 This week"),
    "btn_top_all": _("🏆 All time"),
    # group chats
    "group_hello": _("Hi, {name}! You are in this group's games now."),
    "group_events_on": _("🎉 Group events are on: one every few hours. Join with the button under its message!"),
    "group_events_off": _("Group events are off. An admin can turn them on with /group_events on."),
    "group_events_usage": _("Send /group_events on or /group_events off."),
    "group_only": _("That works in a group chat."),
    "group_event_open": _("🎉 <b>Group event!</b> Join within {wait}: {pool} 🪙 are shared among everybody who joins."),
    "btn_group_join": _("🙋 Join"),
    "group_joined_toast": _("You're in! Participants: {count}"),
    "group_joined_again_toast": _("You have already joined."),
    "group_event_result": _("🎉 <b>The group event is over!</b> {count} took part:"),
    "group_event_result_line": _("• {name}: +{coins} 🪙"),
    "group_event_nobody": _("🎉 The group event is over: nobody joined this time."),
    # the Mini App's tabs (issue 19): the collection, the shop, the leaderboards
    "web_tab_home": _("Home"),
    "web_tab_waifus": _("Companions"),
    "web_tab_shop": _("Shop"),
    "web_tab_top": _("Top"),
    "web_tabs_label": _("Sections"),
    "web_collection_count": _("Your collection: {owned} of {max}"),
    "web_rarity_common": _("common"),
    "web_rarity_rare": _("rare"),
    "web_rarity_epic": _("epic"),
    "web_tile_stats": _("Level {level} · ⚡{energy}/{max_energy} · mood {mood} · loyalty {loyalty}"),
    "web_active": _("⭐ Takes part in events"),
    "web_make_active": _("⭐ Choose"),
    "web_made_active": _("{name} will take part now"),
    "web_adopt_title": _("Adopt another"),
    "web_adopt": _("➕ Adopt"),
    "web_adopted": _("{name} is now your companion! Take good care of her."),
    "web_collection_full": _("Your collection is full ({max} companions)."),
    "web_all_adopted": _("You have every companion there is."),
    "web_portrait": _("Portrait: {name}"),
    "web_coins": _("You have {coins} 🪙"),
    "web_shop_title": _("For sale"),
    "web_shop_empty": _("The shop is empty right now."),
    "web_buy": _("🪙 {price}"),
    "web_term_energy": _("energy {delta}"),
    "web_bought": _("Bought: {name}. {coins} 🪙 left"),
    "web_inventory_title": _("Your things"),
    "web_inventory_empty": _("Nothing yet: buy a gift above."),
    "web_inventory_line": _("{name} × {quantity}"),
    "web_give": _("🎁 To {name}"),
    "web_gift_given": _("{name} got {item}: mood {mood} · loyalty {loyalty} · energy {energy}"),
    "web_top_week": _("📅 This week"),
    "web_top_all": _("🏆 All time"),
    "web_top_xp": _("{xp} XP"),
    "web_top_empty": _("Nobody has XP here yet."),
    "web_top_me": _("You: place {rank} with {xp} XP"),
    "web_top_me_about": _("You: about place {rank} with {xp} XP"),
    "web_top_me_none": _("You have no XP on this board yet: events earn it."),
    "web_top_resets": _("The week starts again on Monday 00:00 UTC."),
    "web_you": _("you"),
    "web_main_daily": _("🎁 Claim the daily reward"),
    # issue 19's extras (0014): the language of a group's messages
    "cmd_group_language": _("The group's language: en or ru (group admins)"),
    "group_language_set": _("🌐 This group's messages are in {language} now."),
    "group_language_usage": _("This group's messages are in {language}. An admin changes it with "
                              "/group_language en or /group_language ru."),
}
