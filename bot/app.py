"""Assembling the bot: Bot, Dispatcher, routers, middlewares, and the one aiohttp server.

One aiohttp application is served on WEB_HOST:WEB_PORT in both modes: it carries the
Mini App (page, API, /healthz) always, and the webhook endpoint when WEBHOOK_URL is set.
Without WEBHOOK_URL the bot uses long polling.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageText,
    GetMe,
    GetUpdates,
    SendMessage,
    SetChatMenuButton,
    SetMyCommands,
    SetWebhook,
)
from aiogram.methods.base import Response
from aiogram.types import BotCommand, MenuButtonWebApp, WebAppInfo
from aiogram.webhook.aiohttp_server import setup_application
from aiohttp import web

from bot import group_sender, metrics
from bot.config import Settings
from bot.game import Game, GameUnavailable
from bot.handlers import build_routers
from bot.i18n import I18N, PlayerLocale
from bot.languages import PlayerLanguages
from bot.middlewares import RetryAfter, UpdateContext
from bot.notifier import Notifier
from bot.polling_lock import EX_TEMPFAIL, AnotherPoller, PollingLock
from bot.texts import COMMANDS, DEFAULT_LANGUAGE, Texts, command_menus
from bot.webhook import ValidatingRequestHandler

log = logging.getLogger("bot.app")

# aiogram parses every reply as `Response[T]`; pydantic caches such classes only weakly,
# so after a garbage collection the class is built again (~3 ms, measured: 13% of the
# bot's CPU under load). Holding the ones the bot uses keeps them built.
_RESPONSE_TYPES = [Response[m.__returning__] for m in (  # type: ignore[name-defined]
    SendMessage, EditMessageText, AnswerCallbackQuery, GetUpdates, GetMe, SetMyCommands,
    SetChatMenuButton, SetWebhook, DeleteWebhook)]

DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
SHUTDOWN_GRACE_SECONDS = 10.0


def create_bot(settings: Settings, *, session: AiohttpSession | None = None) -> Bot:
    if session is None:
        session = (AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
                   if settings.telegram_api_url else AiohttpSession())
    session.middleware(RetryAfter())
    return Bot(settings.bot_token.get_secret_value(), session=session,
               default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True))


def create_dispatcher(game: Game, settings: Settings, **workflow_data: Any) -> Dispatcher:
    """The dispatcher with its dependencies: handlers receive `game` and `settings`."""
    update_context = UpdateContext()
    dp = Dispatcher(disable_fsm=True, game=game, settings=settings, update_context=update_context,
                    player_languages=PlayerLanguages(), **workflow_data)
    dp.update.outer_middleware(update_context)
    dp.update.outer_middleware(PlayerLocale(I18N))  # after update_context: its `texts` name the language
    dp.include_routers(*build_routers())
    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return dp


def webhook_path(settings: Settings) -> str:
    return (urlsplit(settings.webhook_url).path if settings.webhook_url else "") or DEFAULT_WEBHOOK_PATH


async def on_startup(bot: Bot, settings: Settings, webhook_secret: str | None = None, **_: Any) -> None:
    """Commands, the chat's menu button, and where updates come from (webhook or polling)."""
    for language_code, language in command_menus().items():
        texts = Texts(language)
        commands = [BotCommand(command=c, description=texts(f"cmd_{c}")) for c in COMMANDS]
        await bot.set_my_commands(commands, language_code=language_code)
    if settings.webapp_url:
        texts = Texts(DEFAULT_LANGUAGE)
        await bot.set_chat_menu_button(menu_button=MenuButtonWebApp(
            text=texts("menu_button_webapp"), web_app=WebAppInfo(url=settings.webapp_url)))
    if settings.webhook_url:
        await bot.set_webhook(settings.webhook_url, secret_token=webhook_secret,
                              allowed_updates=["message", "callback_query"], drop_pending_updates=False)
        log.info("webhook set", extra={"url": settings.webhook_url})
    else:
        # getUpdates is refused while a webhook is set: clear one left from a webhook run.
        await bot.delete_webhook(drop_pending_updates=False)


async def on_shutdown(update_context: UpdateContext, **_: Any) -> None:
    if not await update_context.wait_idle(SHUTDOWN_GRACE_SECONDS):
        log.warning("shutting down with updates still in flight", extra={"in_flight": update_context.in_flight})


def create_web_app(bot: Bot, dp: Dispatcher, game: Game, settings: Settings,
                   webhook_secret: str | None = None) -> web.Application:
    """The bot's HTTP server: the Mini App always; the webhook endpoint in webhook mode."""
    from bot.webapp import setup_webapp

    app = web.Application()
    setup_webapp(app, game=game, settings=settings)
    from bot.portraits import add_portrait_routes  # issue 19: /webapp/portraits/<code>.svg

    add_portrait_routes(app)
    if settings.webhook_url:
        # Startup/shutdown of the dispatcher ride on the app's (webhook mode only; polling
        # emits them itself). Registered before the handler so that on shutdown in-flight
        # updates finish before the handler closes the bot's session.
        setup_application(app, dp, bot=bot, webhook_secret=webhook_secret)
        ValidatingRequestHandler(dispatcher=dp, bot=bot, secret_token=webhook_secret).register(
            app, path=webhook_path(settings))
    return app


def freeze_startup_objects() -> None:
    """Leave the objects made at start-up (aiogram's ~200k: types, methods, routers) out of
    the garbage collector's full passes: otherwise each full pass stops the bot ~90 ms
    (measured), which was the whole p99 latency under load."""
    gc.collect()
    gc.freeze()


async def connect_game(database_url: str, settings: Settings, wait_seconds: float = 60.0) -> Game:
    """Connect the pool, waiting for a database that is still starting."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.5
    while True:
        try:
            return await Game.connect(database_url, min_size=settings.db_pool_min_size,
                                      max_size=settings.db_pool_max_size)
        except GameUnavailable as exc:
            if loop.time() + delay > deadline:
                parts = urlsplit(database_url)
                raise SystemExit(f"cannot reach the database at {parts.hostname}:{parts.port or 5432} "
                                 f"(DATABASE_URL): {exc}") from exc
            log.warning("database not reachable yet, retrying", extra={"retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def run(settings: Settings, database_url: str) -> None:
    game = await connect_game(database_url, settings)
    bot = create_bot(settings)
    webhook_secret = None
    if settings.webhook_url:
        webhook_secret = (settings.webhook_secret.get_secret_value() if settings.webhook_secret
                          else secrets.token_urlsafe(32))
    dp = create_dispatcher(game, settings, webhook_secret=webhook_secret)
    app = create_web_app(bot, dp, game, settings, webhook_secret)
    # The outbox sender runs beside the updates in both modes (bot/notifier.py).
    notifier = await Notifier.connect(settings, database_url) if settings.notify_enabled else None
    polling_lock = None
    if not settings.webhook_url:  # one poller per bot: a second one stops here (bot/polling_lock.py)
        try:
            polling_lock = await PollingLock.acquire(
                database_url, settings.bot_token.get_secret_value(),
                on_lost=lambda: _stop_polling(dp))
        except AnotherPoller as exc:
            log.error(str(exc))
            await game.close()
            await bot.session.close()
            raise SystemExit(EX_TEMPFAIL) from None
    freeze_startup_objects()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    metrics_runner = None
    group_stop = asyncio.Event()
    group_task: asyncio.Task[None] | None = None
    try:
        metrics_runner = await metrics.start(settings, mode="webhook" if settings.webhook_url else "polling",
                                             notifier=notifier)
        await runner.setup()  # webhook mode: the dispatcher's startup runs here
        site = web.TCPSite(runner, settings.web_host, settings.web_port)
        await site.start()
        log.info("serving", extra={"host": settings.web_host, "port": settings.web_port,
                                   "mode": "webhook" if settings.webhook_url else "polling"})
        if notifier is not None:
            notifier.start()
        # issue 19: messages to groups (group events), within each group's shared limit
        group_task = asyncio.create_task(group_sender.run(bot, game, group_stop))
        if settings.webhook_url:
            await _wait_for_signal()
        else:
            await dp.start_polling(bot, handle_signals=True, close_bot_session=False,
                                   allowed_updates=["message", "callback_query"])
    finally:
        await runner.cleanup()  # webhook mode: the dispatcher's shutdown waits for in-flight updates
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await dp["update_context"].wait_idle(SHUTDOWN_GRACE_SECONDS)
        if group_task is not None:
            group_stop.set()
            await group_task
        if notifier is not None:
            await notifier.stop()  # gives back the rows it holds: another process sends them
            await notifier.close()
        await game.close()
        if polling_lock is not None:
            await polling_lock.release()
        with suppress(TelegramAPIError):
            await bot.session.close()
        log.info("stopped")


def _stop_polling(dp: Dispatcher) -> None:
    """Stop polling (the lock is gone) without leaving a failed task unretrieved: polling
    that has not started yet or has already stopped is nothing to stop."""

    async def stop() -> None:
        with suppress(RuntimeError):  # aiogram: "Polling is not started"
            await dp.stop_polling()

    task = asyncio.ensure_future(stop())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


_BACKGROUND: set[asyncio.Future[None]] = set()  # held until done (the loop keeps only weak references)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
