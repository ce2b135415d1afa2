"""The only module that talks to the database: one method per `api.*` function.

Errors raised by the SQL functions arrive with a project SQLSTATE (WF001...) and a
JSON DETAIL; they are mapped here, once, to `GameError` subclasses that the chat
handlers and the web app both use. No game rule lives here.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, ClassVar

import asyncpg

from bot import metrics


class GameError(Exception):
    """A refusal from the game. `code` is stable (used by the web API and texts)."""

    sqlstate: ClassVar[str] = ""
    code: ClassVar[str] = "game_error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str = "", detail: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.code)
        self.detail: dict[str, Any] = detail or {}


class NotEnoughEnergy(GameError):
    sqlstate, code, http_status = "WF001", "not_enough_energy", 409


class EventNotOpen(GameError):
    sqlstate, code, http_status = "WF002", "event_not_open", 409


class OnCooldown(GameError):
    sqlstate, code, http_status = "WF003", "on_cooldown", 409


class WaifuNotFound(GameError):
    sqlstate, code, http_status = "WF004", "waifu_not_found", 404


class PlayerNotRegistered(GameError):
    sqlstate, code, http_status = "WF005", "player_not_registered", 403


class InvalidArgument(GameError):
    sqlstate, code, http_status = "WF006", "invalid_argument", 400


class RequestKeyConflict(GameError):
    sqlstate, code, http_status = "WF007", "request_key_conflict", 409


class LimitReached(GameError):
    """A limit of the game, e.g. adopting a template already owned (WF008)."""

    sqlstate, code, http_status = "WF008", "limit_reached", 409


class ChoiceAlreadyMade(RequestKeyConflict):
    """WF007 from adopt_waifu: this drawn list of starters was already used for another pick."""

    code = "choice_already_made"


class GameUnavailable(GameError):
    """The database cannot be reached right now; the action was not applied."""

    code, http_status = "unavailable", 503


ERRORS_BY_SQLSTATE: dict[str, type[GameError]] = {
    cls.sqlstate: cls
    for cls in (NotEnoughEnergy, EventNotOpen, OnCooldown, WaifuNotFound, PlayerNotRegistered,
                InvalidArgument, RequestKeyConflict, LimitReached)
}

# Text the server cannot store (invalid UTF-8, a NUL byte: 22021; no equivalent in the
# encoding: 22P05) and arguments asyncpg cannot encode (a lone surrogate, an integer
# beyond int64: it raises DataError 22000 itself) are bad input, refused like WF006.
_INVALID_INPUT_SQLSTATES = frozenset({"22021", "22P05", "22000"})
# SQLSTATE classes that mean the statement did not take effect and may be retried:
# 08 connection, 40 rolled back (serialization, deadlock), 53 resources (too many
# connections), 57 operator intervention (shutdown, starting up, cancelled); 25006: a
# standby that is read-only (during a failover).
_UNAVAILABLE_CLASSES = frozenset({"08", "40", "53", "57"})
# 55P03: a row another session holds past the bot role's lock_timeout (migration 0011):
# the call did nothing and may be tried again.
_UNAVAILABLE_SQLSTATES = frozenset({"25006", "55P03"})
# Failures below SQL: the socket (OSError, ConnectionError), asyncpg's own state
# ("another operation is in progress", "cannot switch to state 12" after a connection
# broke mid-call, "pool is closing"), and timeouts. The statement did not run, or its
# result is unknown: safe to retry with the same request key.
_UNAVAILABLE_CLIENT = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


def _translate(exc: BaseException) -> GameError | None:
    """The GameError for `exc`, or None for a failure that is a bug (raised as it is)."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        cls = ERRORS_BY_SQLSTATE.get(sqlstate)
        if cls is not None:
            try:
                detail = json.loads(exc.detail) if exc.detail else {}
            except ValueError:
                detail = {"text": exc.detail}
            return cls(exc.args[0] if exc.args else "", detail if isinstance(detail, dict) else {"value": detail})
        if sqlstate in _INVALID_INPUT_SQLSTATES:
            # The server's message names no argument and may quote the bad bytes: not passed on.
            return InvalidArgument("text or number that cannot be stored", {"reason": "encoding", "sqlstate": sqlstate})
        if sqlstate[:2] in _UNAVAILABLE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES:
            return GameUnavailable(f"{type(exc).__name__}: {exc}")
        return None
    if isinstance(exc, _UNAVAILABLE_CLIENT):
        return GameUnavailable(f"{type(exc).__name__}: {exc}")
    return None


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSONB arrives as dicts and lists."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook: nothing to reset.

    asyncpg's default runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` on every release, a second round trip per call. Our calls are single
    `SELECT api.f(...)` statements that leave no session state behind (no SET, LISTEN,
    cursor or advisory lock); asyncpg still rolls back a transaction left open.
    """


class Game:
    """Calls into schema `api`, as the bot's role, through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        # Callers queue here, first come first served, rather than in the pool: its
        # queue lets a newcomer take a connection from a caller just woken for it,
        # and under load that unfairness alone made p99 four times p50.
        self._turns = asyncio.Semaphore(pool.get_max_size())

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Game:
        try:
            pool = await asyncpg.create_pool(dsn, init=init_connection, reset=keep_session, min_size=min_size,
                                             max_size=max_size, command_timeout=30)
        except Exception as exc:
            translated = _translate(exc)
            if translated is None:
                raise
            raise translated from exc
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def _call(self, sql: str, *args: Any) -> Any:
        # Metrics (bot/metrics.py): the wait for a turn, the call's latency by api
        # function and failures by SQLSTATE, counted here for every call.
        started = time.perf_counter()
        try:
            async with self._turns:
                metrics.POOL_WAIT.observe(time.perf_counter() - started)
                metrics.POOL_IN_USE.inc()
                try:
                    return await self.pool.fetchval(sql, *args)
                finally:
                    metrics.POOL_IN_USE.dec()
        except Exception as exc:
            metrics.db_error(exc)
            translated = _translate(exc)
            if translated is None:
                raise
            raise translated from exc
        finally:
            metrics.db_call_histogram(sql).observe(time.perf_counter() - started)

    async def ping(self) -> bool:
        """True if the database answers (for /healthz)."""
        try:
            return await self._call("SELECT api.waifu_templates() IS NOT NULL") is True
        except GameError:
            return False

    async def register_player(self, telegram_id: int, username: str | None, first_name: str | None,
                              language_code: str | None) -> dict[str, Any]:
        return await self._call("SELECT api.register_player($1, $2, $3, $4)",
                                telegram_id, username, first_name, language_code)

    async def waifu_templates(self, language: str | None = None) -> list[dict[str, Any]]:
        """Starters with names and descriptions in `language` (English where not translated)."""
        return await self._call("SELECT api.waifu_templates($1)", language)

    async def player_language(self, telegram_id: int) -> str | None:
        """The language to speak to this player ('en', 'ru'); None if not registered."""
        return await self._call("SELECT api.player_language($1)", telegram_id)

    async def adopt_waifu(self, telegram_id: int, template_code: str, request_key: str | None = None) -> int:
        try:
            return await self._call("SELECT api.adopt_waifu($1, $2, $3)", telegram_id, template_code, request_key)
        except RequestKeyConflict as exc:
            raise ChoiceAlreadyMade(str(exc), exc.detail) from exc

    async def player_profile(self, telegram_id: int) -> dict[str, Any]:
        return await self._call("SELECT api.player_profile($1)", telegram_id)

    async def player_profile_json(self, telegram_id: int) -> str:
        """api.player_profile's answer as the database wrote it, for an HTTP body: parsing
        it to send it on as JSON again cost the Mini App's /api/me ~20 us a request."""
        return await self._call("SELECT api.player_profile($1)::text", telegram_id)

    async def waifu_stats(self, telegram_id: int, waifu_id: int) -> dict[str, Any]:
        """Stats of a waifu this player owns (WaifuNotFound otherwise)."""
        return await self._call("SELECT api.player_waifu_stats($1, $2)", telegram_id, waifu_id)

    async def available_events(self, telegram_id: int, waifu_id: int) -> list[dict[str, Any]]:
        """Open events for a waifu this player owns (WaifuNotFound otherwise)."""
        return await self._call("SELECT api.player_available_events($1, $2)", telegram_id, waifu_id)

    async def participate(self, telegram_id: int, waifu_id: int, event_code: str,
                          request_key: str) -> dict[str, Any]:
        """Take part once per request key; a repeated key returns the recorded result."""
        return await self._call("SELECT api.participate_in_event($1, $2, $3, $4)",
                                telegram_id, waifu_id, event_code, request_key)

    # -- settings, daily reward (H5) ---------------------------------------------------------

    async def player_settings(self, telegram_id: int) -> dict[str, Any]:
        """Settings and the daily reward's state ({notifications, language, timezone, daily})."""
        return await self._call("SELECT api.player_settings($1)", telegram_id)

    async def set_player_setting(self, telegram_id: int, name: str, value: str) -> dict[str, Any]:
        """notifications on|off, language auto|en|ru, timezone (IANA name or UTC); InvalidArgument otherwise."""
        return await self._call("SELECT api.set_player_setting($1, $2, $3)", telegram_id, name, value)

    async def claim_daily(self, telegram_id: int, request_key: str) -> dict[str, Any]:
        """Today's reward, once per request key; LimitReached (detail.available_at) on a second claim."""
        return await self._call("SELECT api.claim_daily($1, $2)", telegram_id, request_key)

    # -- limits shared by every process (bot/ratelimit.py) ----------------------------------------

    async def rate_limit(self, bucket: str, key: str) -> float:
        """0.0 if `key` may make one more request in `bucket` (ops.rate_limits), else seconds to wait."""
        return float(await self._call("SELECT api.rate_limit($1, $2)", bucket, key))

    async def rate_limit_lease(self, bucket: str, key: str, wanted: int) -> tuple[int, float]:
        """Up to `wanted` requests of `key` in `bucket` at once: (granted, 0.0), or (0, seconds to wait)."""
        granted, wait = await self._call(
            "SELECT ARRAY[l.granted::float8, l.retry_after] FROM api.rate_limit_lease($1, $2, $3) AS l",
            bucket, key, wanted)
        return int(granted), float(wait)

    async def admit_update(self, bot_id: int, update_id: int, user_id: int | None,
                           chat_id: int | None) -> dict[str, Any]:
        """{"admit": true}, or {"admit": false, "reason": "duplicate" | "limited", "retry_after": s}."""
        return await self._call("SELECT api.admit_update($1, $2, $3, $4)", bot_id, update_id, user_id, chat_id)

    async def forget_update(self, bot_id: int, update_id: int) -> bool:
        """Let an admitted update be handled again (its handling failed)."""
        return bool(await self._call("SELECT api.forget_update($1, $2)", bot_id, update_id))

    # -- the notification outbox (bot/notifier.py) ----------------------------------------------

    async def claim_notifications(self, worker: str, batch_size: int, lease_seconds: int) -> list[dict[str, Any]]:
        return await self._call("SELECT api.claim_notifications($1, $2, $3)", worker, batch_size, lease_seconds)

    async def finish_notifications(self, worker: str, ids: list[int], outcome: str,
                                   retry_after_seconds: int | None = None) -> int:
        """outcome: sent, failed, retry (after retry_after_seconds), blocked (turns notifications off)."""
        return await self._call("SELECT api.finish_notifications($1, $2, $3, $4)",
                                worker, ids, outcome, retry_after_seconds)

    # -- 0013 (issue 19): the collection, coins and the shop, leaderboards, groups ---------------

    async def player_waifus(self, telegram_id: int) -> dict[str, Any]:
        """The collection: {active_waifu_id, max, owned, waifus (+ rarity, active), templates (+ waifu_id)}."""
        return await self._call("SELECT api.player_waifus($1)", telegram_id)

    async def set_active_waifu(self, telegram_id: int, waifu_id: int) -> dict[str, Any]:
        """Pick the waifu for events; WaifuNotFound if not this player's."""
        return await self._call("SELECT api.set_active_waifu($1, $2)", telegram_id, waifu_id)

    async def shop(self, telegram_id: int) -> dict[str, Any]:
        """{coins, items: [{code, name, description, price, mood, loyalty, energy, cooldown_seconds}]}."""
        return await self._call("SELECT api.shop($1)", telegram_id)

    async def inventory(self, telegram_id: int) -> dict[str, Any]:
        """{coins, standing, items: [item + quantity]}."""
        return await self._call("SELECT api.inventory($1)", telegram_id)

    async def buy_item(self, telegram_id: int, item_code: str, request_key: str, quantity: int = 1) -> dict[str, Any]:
        """Once per request key; NotEnoughCoins, ItemNotFound, RequestKeyConflict."""
        return await self._call("SELECT api.buy_item($1, $2, $3, $4)", telegram_id, item_code, request_key, quantity)

    async def give_gift(self, telegram_id: int, waifu_id: int, item_code: str, request_key: str,
                        chat_id: int | None = None) -> dict[str, Any]:
        """Once per request key; another player's waifu only with the group's chat_id. OnCooldown,
        NotInInventory, NotGroupMember, ItemNotFound, WaifuNotFound."""
        return await self._call("SELECT api.give_gift($1, $2, $3, $4, $5)",
                                telegram_id, waifu_id, item_code, request_key, chat_id)

    async def leaderboard(self, telegram_id: int, board: str, chat_id: int | None = None) -> dict[str, Any]:
        """board 'all' or 'week'; chat_id: a group's board. {top: [{rank, name, xp}], me: {rank, xp, exact}}."""
        return await self._call("SELECT api.leaderboard($1, $2, $3)", telegram_id, board, chat_id)

    async def register_group_member(self, chat_id: int, telegram_id: int, title: str | None) -> dict[str, Any]:
        """Record a registered player's use of the bot in a group: {chat_id, events_on, members, ...}."""
        return await self._call("SELECT api.register_group_member($1, $2, $3)", chat_id, telegram_id, title)

    async def set_group_events(self, chat_id: int, telegram_id: int, enabled: bool, is_admin: bool) -> dict[str, Any]:
        """/group_events on|off; is_admin from Telegram's getChatMember. NotGroupAdmin, NotGroupMember."""
        return await self._call("SELECT api.set_group_events($1, $2, $3, $4)", chat_id, telegram_id, enabled,
                                is_admin)

    async def join_group_event(self, telegram_id: int, event_id: int, waifu_id: int | None = None) -> dict[str, Any]:
        """Join once (a second tap answers replayed); GroupEventNotOpen, NotGroupMember."""
        return await self._call("SELECT api.join_group_event($1, $2, $3)", telegram_id, event_id, waifu_id)

    async def claim_group_messages(self, worker: str, batch_size: int, lease_seconds: int) -> list[dict[str, Any]]:
        """Due messages to groups, within each group's shared group_send limit (20 a minute)."""
        return await self._call("SELECT api.claim_group_messages($1, $2, $3)", worker, batch_size, lease_seconds)

    async def finish_group_messages(self, worker: str, ids: list[int], outcome: str,
                                    retry_after_seconds: int | None = None) -> int:
        """outcome: sent, failed, retry (after retry_after_seconds)."""
        return await self._call("SELECT api.finish_group_messages($1, $2, $3, $4)",
                                worker, ids, outcome, retry_after_seconds)

    # -- 0014 (issue 19's extras): the stat card's photo, groups' language -------------------------

    async def stat_card(self, telegram_id: int, waifu_id: int, bot_id: int) -> dict[str, Any]:
        """Fresh stats of a waifu this player owns, with rarity, the player's language and
        the cached photo of her card's picture for this bot ({file_id, design} or None)."""
        return await self._call("SELECT api.stat_card($1, $2, $3)", telegram_id, waifu_id, bot_id)

    async def remember_card_photo(self, bot_id: int, template_code: str, language: str, rarity: str, design: str,
                                  file_id: str) -> dict[str, Any]:
        """Keep Telegram's file_id of an uploaded card picture (replacing a stale one)."""
        return await self._call("SELECT api.remember_card_photo($1, $2, $3, $4, $5, $6)",
                                bot_id, template_code, language, rarity, design, file_id)

    async def set_group_language(self, chat_id: int, telegram_id: int, language: str | None,
                                 is_admin: bool) -> dict[str, Any]:
        """/group_language en|ru; None: the caller's language if the group has none. NotGroupAdmin."""
        return await self._call("SELECT api.set_group_language($1, $2, $3, $4)", chat_id, telegram_id, language,
                                is_admin)

    async def group_languages(self, chat_ids: list[int]) -> dict[int, str]:
        """{chat_id: language} of these groups (at most 100); groups without one are left out."""
        rows = await self._call("SELECT api.group_languages($1)", chat_ids)
        return {int(r["chat_id"]): str(r["language"]) for r in rows}


# -- 0013 (issue 19): refusals of the shop and the groups ------------------------------------------

class NotEnoughCoins(GameError):
    sqlstate, code, http_status = "WF009", "not_enough_coins", 409


class ItemNotFound(GameError):
    """No such item, or (buying) not on sale."""

    sqlstate, code, http_status = "WF010", "item_not_found", 404


class NotInInventory(GameError):
    sqlstate, code, http_status = "WF011", "not_in_inventory", 409


class NotGroupMember(GameError):
    """The player (or, for a gift, the waifu's owner) has not used the bot in that group."""

    sqlstate, code, http_status = "WF012", "not_group_member", 403


class GroupEventNotOpen(GameError):
    sqlstate, code, http_status = "WF013", "group_event_not_open", 409


class NotGroupAdmin(GameError):
    sqlstate, code, http_status = "WF014", "not_group_admin", 403


ERRORS_BY_SQLSTATE.update({cls.sqlstate: cls for cls in (NotEnoughCoins, ItemNotFound, NotInInventory,
                                                         NotGroupMember, GroupEventNotOpen, NotGroupAdmin)})
