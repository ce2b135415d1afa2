"""HTTP routes of the Mini App: the page and the JSON API (health: bot/webapp/health.py).

Every API answer is JSON, never cached, and errors have one shape:
`{"error": {"code": ..., "message": ..., "detail": {...}}}`. Game refusals take their
code and status from `bot.game` (the one SQLSTATE mapping the chat bot uses too);
authentication is checked before anything touches the database.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import Settings
from bot.game import Game, GameError, InvalidArgument, ItemNotFound, WaifuNotFound
from bot.texts import Texts
from bot.webapp.auth import Authenticator, AuthError, WebAppIdentity
from bot.webapp.errors import NO_STORE, ApiError, error_response
from bot.webapp.guards import LIMITS_KEY, Limits, limit_action, limits_middleware
from bot.webapp.health import setup_health

log = logging.getLogger("bot.webapp")

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_FILES = {"": "index.html", "app.js": "app.js", "style.css": "style.css", "telegram-shim.js": "telegram-shim.js"}

GAME_KEY = web.AppKey("webapp_game", Game)
AUTH_KEY = web.AppKey("webapp_authenticator", Authenticator)

# Scopes the web app's request keys in the participation ledger, so they can never
# collide with the keys the chat bot draws for its buttons.
REQUEST_KEY_PREFIX = "web:"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
EVENT_CODE_RE = re.compile(r"[a-z0-9_]{1,32}")
MAX_BIGINT = 2**63 - 1

# The page is revalidated on every load (its files are small; a stale app.js after a
# deploy would talk to a newer API).
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Only our own files and Telegram's script; no inline code, so injected markup cannot run.
    "Content-Security-Policy": "default-src 'self'; script-src 'self' https://telegram.org; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'",
}


def request_texts(request: web.Request) -> Texts:
    """Texts for an API answer: the page sends its language (the player's, from /me) as
    Accept-Language; other clients get their first preference, or English."""
    first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return Texts.for_user(first)


def localized(request: web.Request, code: str, fallback: str, detail: dict[str, Any] | None = None) -> str:
    """An error's message for people, in the request's language (bot/texts.py)."""
    return request_texts(request).api_error(code, detail) or fallback


def game_error_response(request: web.Request, exc: GameError) -> web.Response:
    message = localized(request, exc.code, str(exc), exc.detail)
    return error_response(exc.http_status, exc.code, message, exc.detail)


@web.middleware
async def api_middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """JSON errors and no-store headers for everything under /api/."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except AuthError as exc:
        # Bounded: one line per code per minute with a count (a flood of bad headers is one line).
        request.app[LIMITS_KEY].refusals.log(("auth", exc.code), "webapp auth refused", path=request.path,
                                             outcome=f"refused:{exc.code}")
        headers = {"WWW-Authenticate": "tma"} if exc.http_status == 401 else None
        return error_response(exc.http_status, exc.code, localized(request, exc.code, exc.message), headers=headers)
    except ApiError as exc:
        return error_response(exc.status, exc.code, localized(request, exc.code, exc.message, exc.detail),
                              exc.detail)
    except GameError as exc:
        request.app[LIMITS_KEY].refusals.log(("game", exc.code), "webapp refused", path=request.path,
                                             outcome=f"refused:{exc.code}",
                                             latency_ms=round((time.perf_counter() - started) * 1000, 1))
        return game_error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, code, localized(request, code, exc.reason), headers=headers)
    except Exception:
        log.exception("webapp internal error", extra={"path": request.path})
        return error_response(500, "internal_error", localized(request, "internal_error", "Internal error."))
    response.headers.update(NO_STORE)
    return response


def _identity(request: web.Request) -> WebAppIdentity:
    return request.app[AUTH_KEY](request.headers.get("Authorization"))


def _waifu_id(request: web.Request) -> int:
    raw = request.match_info["waifu_id"]
    # Out of bigint range cannot be any waifu: the same answer as an unknown one.
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= MAX_BIGINT:
        raise WaifuNotFound("waifu not found", {"waifu_id": raw})
    return int(raw)


async def get_me(request: web.Request) -> web.Response:
    identity = _identity(request)
    profile = await request.app[GAME_KEY].player_profile_json(identity.telegram_id)
    return web.Response(text=profile, content_type="application/json")


async def get_events(request: web.Request) -> web.Response:
    identity = _identity(request)
    waifu_id = _waifu_id(request)
    events = await request.app[GAME_KEY].available_events(identity.telegram_id, waifu_id)
    return web.json_response({"waifu_id": waifu_id, "events": events})


async def post_participation(request: web.Request) -> web.Response:
    identity = _identity(request)
    if (refused := await limit_action(request, identity.telegram_id)) is not None:
        return refused
    waifu_id = _waifu_id(request)
    event_code = request.match_info["event_code"]
    if not EVENT_CODE_RE.fullmatch(event_code):
        raise ApiError(404, "event_not_open", "No such event.", {"event_code": event_code[:64]})
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER, "")
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise ApiError(400, "invalid_argument",
                       f"The {IDEMPOTENCY_KEY_HEADER} header is required: 8 to 64 letters, digits, - or _.",
                       {"argument": IDEMPOTENCY_KEY_HEADER})
    result = await request.app[GAME_KEY].participate(identity.telegram_id, waifu_id, event_code,
                                                     REQUEST_KEY_PREFIX + key)
    log.info("webapp participate", extra={"user_id": identity.telegram_id, "waifu_id": waifu_id,
                                          "event": event_code, "replayed": result.get("replayed")})
    return web.json_response(result)


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER, "")
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise ApiError(400, "invalid_argument",
                       f"The {IDEMPOTENCY_KEY_HEADER} header is required: 8 to 64 letters, digits, - or _.",
                       {"argument": IDEMPOTENCY_KEY_HEADER})
    return key


async def get_settings(request: web.Request) -> web.Response:
    """The player's settings and the daily reward's state (api.player_settings)."""
    identity = _identity(request)
    return web.json_response(await request.app[GAME_KEY].player_settings(identity.telegram_id))


async def post_settings(request: web.Request) -> web.Response:
    """Change one setting: JSON {"name": "notifications"|"language"|"timezone", "value": "..."}."""
    identity = _identity(request)
    if (refused := await limit_action(request, identity.telegram_id)) is not None:
        return refused
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(body.get("value"), str):
        raise ApiError(400, "invalid_argument", 'Expected a JSON object {"name": ..., "value": ...} of strings.',
                       {"argument": "body"})
    # The database knows the names and values (WF006 otherwise).
    result = await request.app[GAME_KEY].set_player_setting(identity.telegram_id, body["name"][:64],
                                                            body["value"][:64])
    return web.json_response(result)


async def post_daily(request: web.Request) -> web.Response:
    """Claim the daily reward once per Idempotency-Key (a second claim the same day: 409 limit_reached)."""
    identity = _identity(request)
    if (refused := await limit_action(request, identity.telegram_id)) is not None:
        return refused
    key = _idempotency_key(request)
    result = await request.app[GAME_KEY].claim_daily(identity.telegram_id, REQUEST_KEY_PREFIX + "daily:" + key)
    return web.json_response(result)


# -- issue 19: the collection, the shop and the leaderboards -----------------------------------
# Thin callers of api.player_waifus, set_active_waifu, adopt_waifu, shop, inventory, buy_item,
# give_gift and leaderboard: the database decides, refuses (WF0xx, mapped in bot/game.py) and
# keeps retries idempotent by the request key. A malformed code or id is refused here, before
# any call, with the answer an unknown one would get.

CODE_RE = re.compile(r"[a-z0-9_]{1,32}")  # template and item codes (the tables' CHECK)
BOARDS = ("week", "all")  # api.leaderboard's boards: this week's XP, all-time XP


def _template_code(request: web.Request) -> str:
    code = request.match_info["template_code"]
    if not CODE_RE.fullmatch(code):
        raise InvalidArgument("unknown waifu template", {"argument": "template_code", "value": code[:64]})
    return code


def _item_code(request: web.Request) -> str:
    code = request.match_info["item_code"]
    if not CODE_RE.fullmatch(code):
        raise ItemNotFound("no such item", {"item_code": code[:64]})
    return code


async def get_waifus(request: web.Request) -> web.Response:
    """The collection: owned waifus (stats, rarity, active) and every template (waifu_id: adopted)."""
    identity = _identity(request)
    return web.json_response(await request.app[GAME_KEY].player_waifus(identity.telegram_id))


async def post_active_waifu(request: web.Request) -> web.Response:
    """Pick the waifu for events. Idempotent by its value (like POST /settings): no key needed."""
    identity = _identity(request)
    if (refused := await limit_action(request, identity.telegram_id)) is not None:
        return refused
    waifu_id = _waifu_id(request)
    return web.json_response(await request.app[GAME_KEY].set_active_waifu(identity.telegram_id, waifu_id))


async def post_adopt(request: web.Request) -> web.Response:
    """Adopt a template once per Idempotency-Key (the same key again answers the same waifu)."""
    identity = _identity(request)
    if (refused := await limit_action(request, identity.telegram_id)) is not None:
        return refused
    code = _template_code(request)
    key = _idempotency_key(request)
    waifu_id = await request.app[GAME_KEY].adopt_waifu(identity.telegram_id, code,
                                                       REQUEST_KEY_PREFIX + "adopt:" + key)
    log.info("webapp adopt", extra={"user_id": identity.telegram_id, "waifu_id": waifu_id, "template": code})
    return web.json_response({"waifu_id": waifu_id, "template_code": code})


async def get_shop(request: web.Request) -> web.Response:
    """What is on sale, in the player's language, and the player's coins."""
    identity = _identity(request)
    return web.json_response(await request.app[GAME_KEY].shop(identity.telegram_id))


async def get_inventory(request: web.Request) -> web.Response:
    """The player's coins, standing and items with their quantities."""
    identity = _identity(request)
    return web.json_response(await request.app[GAME_KEY].inventory(identity.telegram_id))


async def post_buy(request: web.Request) -> web.Response:
    """Buy one of an item once per Idempotency-Key (a replay answers "replayed": true)."""
    identity = _identity(request)
    if (refused := await limit_action(request, identity.telegram_id)) is not None:
        return refused
    code = _item_code(request)
    key = _idempotency_key(request)
    result = await request.app[GAME_KEY].buy_item(identity.telegram_id, code, REQUEST_KEY_PREFIX + "buy:" + key)
    log.info("webapp buy", extra={"user_id": identity.telegram_id, "item": code, "replayed": result.get("replayed")})
    return web.json_response(result)


async def post_gift(request: web.Request) -> web.Response:
    """Give an item from the inventory to one of the player's own waifus, once per Idempotency-Key.
    (Gifts to another player's waifu belong to group chats: without a chat, WF004 as for any stranger.)"""
    identity = _identity(request)
    if (refused := await limit_action(request, identity.telegram_id)) is not None:
        return refused
    waifu_id = _waifu_id(request)
    code = _item_code(request)
    key = _idempotency_key(request)
    result = await request.app[GAME_KEY].give_gift(identity.telegram_id, waifu_id, code,
                                                   REQUEST_KEY_PREFIX + "gift:" + key)
    log.info("webapp gift", extra={"user_id": identity.telegram_id, "waifu_id": waifu_id, "item": code,
                                   "replayed": result.get("replayed")})
    return web.json_response(result)


async def get_top(request: web.Request) -> web.Response:
    """A global leaderboard: ?board=week (default) or all. Other players are shown by name and
    place only (their Telegram ids stay in the database); `me` marks the caller's own row."""
    identity = _identity(request)
    board = request.query.get("board", "week")
    if board not in BOARDS:
        raise ApiError(400, "invalid_argument", "board must be week or all.",
                       {"argument": "board", "value": board[:64]})
    result = await request.app[GAME_KEY].leaderboard(identity.telegram_id, board)
    result["top"] = [{"rank": row["rank"], "name": row["name"], "xp": row["xp"],
                      "me": row["telegram_id"] == identity.telegram_id} for row in result["top"]]
    return web.json_response(result)


def add_collection_routes(api: web.Application) -> None:
    api.router.add_get("/waifus", get_waifus)
    api.router.add_post("/waifus/{waifu_id}/active", post_active_waifu)
    api.router.add_post("/waifus/{waifu_id}/gifts/{item_code}", post_gift)
    api.router.add_post("/templates/{template_code}/adopt", post_adopt)
    api.router.add_get("/shop", get_shop)
    api.router.add_post("/shop/{item_code}/buy", post_buy)
    api.router.add_get("/inventory", get_inventory)
    api.router.add_get("/top", get_top)


async def api_not_found(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(reason="No such API endpoint.")


def _page_handler(filename: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = STATIC_DIR / filename

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers=PAGE_HEADERS)

    return serve


async def page_texts(request: web.Request) -> web.Response:
    """The page's texts: `?language=` is a Telegram language code or a setting (en, ru);
    the answer names the language chosen for it (the same rule as the chat's)."""
    texts = Texts.for_user(request.query.get("language", "")[:16])
    return web.json_response({"language": texts.language, "texts": texts.page()}, headers=PAGE_HEADERS)


async def redirect_to_page(request: web.Request) -> web.StreamResponse:
    # Relative, so the page also works behind a proxy that mounts us under a prefix.
    raise web.HTTPPermanentRedirect("webapp/")


def build_api(game: Game, settings: Settings) -> web.Application:
    # Limits first: an oversized body or a flooding address is refused before anything runs.
    api = web.Application(middlewares=[limits_middleware, api_middleware])
    api[GAME_KEY] = game
    api[LIMITS_KEY] = Limits.from_settings(settings, game)
    api[AUTH_KEY] = Authenticator(settings.bot_token.get_secret_value(), settings.webapp_auth_max_age)
    api.router.add_get("/me", get_me)
    api.router.add_get("/waifus/{waifu_id}/events", get_events)
    api.router.add_post("/waifus/{waifu_id}/events/{event_code}", post_participation)
    api.router.add_get("/settings", get_settings)
    api.router.add_post("/settings", post_settings)
    api.router.add_post("/daily", post_daily)
    add_collection_routes(api)
    # Unknown paths under /api/ answer JSON too (the sub-application's middleware runs
    # only for routes it owns).
    api.router.add_route("*", "/{tail:.*}", api_not_found)
    return api


def setup_webapp(app: web.Application, *, game: Game, settings: Settings) -> None:
    """Mount the Mini App page (/webapp/), its API (/api/), /healthz and /readyz on `app`."""
    app[GAME_KEY] = game
    app.add_subapp("/api/", build_api(game, settings))
    setup_health(app, game, settings)
    app.router.add_get("/webapp", redirect_to_page)
    app.router.add_get("/webapp/texts.json", page_texts)
    for route, filename in PAGE_FILES.items():
        app.router.add_get(f"/webapp/{route}", _page_handler(filename))
