"""The Mini App on this machine, with data, without Telegram: `python -m bot.dev.webapp`.

Serves the page and its API (the bot's own web app, bot/webapp/) on 127.0.0.1, signed
for the local Telegram stand-in (bot/dev/local_botapi.py: its token is the bot's token
here), and prints a URL that opens the page as a local player: the player's initData,
signed the way Telegram signs it, in the URL's fragment where Telegram puts it
(#tgWebAppData=...). The page is served without Telegram's script, so it works offline:
bot/webapp/static/telegram-shim.js stands in for it.

The player (--user-id, default 1: the one `make play` plays) is registered, and given a
starter waifu if they have none. Play in the terminal (`make play`) beside it and
refresh the page: same database, same player. DATABASE_URL picks the database; without it
the local one (.localdb/dev) is started and migrated. The URL's sign-in holds for
WEBAPP_AUTH_MAX_AGE (a day by default): start again for a fresh one.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.app import connect_game
from bot.config import load_settings
from bot.dev.local_botapi import TelegramStub
from bot.game import Game, GameError
from bot.portraits import add_portrait_routes
from bot.webapp import setup_webapp
from bot.webapp.routes import PAGE_HEADERS, STATIC_DIR

TELEGRAM_SCRIPT = '<script src="https://telegram.org/js/telegram-web-app.js"></script>'
STARTER = "sakura"


def sign_init_data(bot_token: str, user: dict[str, Any], auth_date: int | None = None) -> str:
    """initData as Telegram builds it: the fields, and `hash` = HMAC-SHA256 of their sorted
    `key=value` lines with the key HMAC-SHA256("WebAppData", bot token)."""
    fields = {"query_id": f"DEV{user['id']}", "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
              "auth_date": str(auth_date if auth_date is not None else int(time.time()))}
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    return urlencode({**fields, "hash": hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()})


def page_url(base: str, init_data: str) -> str:
    """The page's URL as Telegram opens it: initData in the fragment (never sent to a server)."""
    fragment = urlencode({"tgWebAppData": init_data, "tgWebAppVersion": "7.0", "tgWebAppPlatform": "dev"},
                         quote_via=quote)
    return f"{base}/webapp/#{fragment}"


@web.middleware
async def offline_page(request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """The page without Telegram's script: nothing waits on telegram.org, the shim stands in."""
    if request.method == "GET" and request.path == "/webapp/":
        page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        page = page.replace(TELEGRAM_SCRIPT, "<!-- make webapp: Telegram's script left out (offline) -->")
        return web.Response(text=page, content_type="text/html", headers=PAGE_HEADERS)
    return await handler(request)


async def ensure_player(game: Game, user: dict[str, Any]) -> str | None:
    """Register the player; adopt a starter if they have no waifu. Says what it did."""
    await game.register_player(user["id"], user.get("username"), user["first_name"], user.get("language_code"))
    profile = await game.player_profile(user["id"])
    if profile["waifus"]:
        return None
    try:
        await game.adopt_waifu(user["id"], STARTER, f"dev-webapp-{user['id']}")
    except GameError as exc:
        return f"(no starter adopted: {exc.code})"
    return f"(player {user['id']} had no waifu: adopted {STARTER!r})"


async def serve(args: argparse.Namespace) -> None:
    stub = TelegramStub()  # the bot's "Telegram": its token signs and checks initData
    await stub.start()
    settings = load_settings(bot_token=stub.token, telegram_api_url=stub.url, webhook_url=None)
    database_url = settings.database_url
    if not database_url:
        from db.migrate import ensure_local_database

        print("starting the local database (.localdb/dev)...", file=sys.stderr)
        database_url = ensure_local_database()
    game = await connect_game(database_url, settings, wait_seconds=10)
    runner: web.AppRunner | None = None
    try:
        user = {"id": args.user_id, "first_name": args.name, "language_code": args.language}
        if note := await ensure_player(game, user):
            print(note)
        app = web.Application(middlewares=[offline_page])
        setup_webapp(app, game=game, settings=settings)
        add_portrait_routes(app)  # as bot/app.py: the collection tab shows them
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port)
        await site.start()
        port = runner.addresses[0][1]
        url = page_url(f"http://127.0.0.1:{port}", sign_init_data(stub.token, user))
        print(f"The Mini App for {args.name} (Telegram id {args.user_id}), valid for "
              f"{settings.webapp_auth_max_age // 3600} h:\n{url}\nCtrl-C stops.", flush=True)
        await asyncio.Event().wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        await game.close()
        await stub.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.dev.webapp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0: any free one)")
    parser.add_argument("--user-id", type=int, default=1, help="the player's Telegram id (default 1, as make play)")
    parser.add_argument("--name", default="Player", help="the player's first name")
    parser.add_argument("--language", default="en", help="the player's Telegram language code (en, ru, ...)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
