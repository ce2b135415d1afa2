"""Prometheus metrics of a bot process, on a port of their own (off by default).

`METRICS_PORT` set (and different from `WEB_PORT`) starts a second HTTP server on
`METRICS_HOST:METRICS_PORT` (default host 127.0.0.1) that serves `/metrics` and nothing
else; the public web server never serves them. Unset, nothing listens, and the counters
below still count in memory (a few nanoseconds each).

Every label has a bounded set of values fixed by the code (update types, outcomes,
SQLSTATEs, `api.*` function names, rate-limit buckets, Bot API method names): no player,
chat or waifu id and no token ever becomes a label, so the number of series stays the
same whatever the players do. What the database knows (the tick, the outbox, the
ledger) is exported by the database itself (`ops.metrics()`, db/monitoring/).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class Notifier(Protocol):
    """What the collector reads of bot.notifier.Notifier (not imported: it imports bot.game,
    which counts its calls here)."""

    @property
    def stats(self) -> Any: ...

log = logging.getLogger("bot.metrics")

# Update types: what an update was when it arrived (handlers rename the action later).
UPDATE_TYPES = ("command", "text", "message", "callback", "other")
UPDATE_OUTCOMES = ("ok", "refused", "unavailable", "error", "duplicate", "limited")

UPDATES = Counter("waifu_updates_total", "Telegram updates by type and how their handling ended.",
                  ["type", "outcome"])
REPLIES = Counter("waifu_telegram_requests_total",
                  "Requests to the Bot API (replies, edits, callback answers...) by method and outcome; "
                  "each attempt counts (a 429 then a success is two).", ["method", "outcome"])
GAME_ERRORS = Counter("waifu_db_errors_total", "Failed database calls by SQLSTATE (client: no SQLSTATE, "
                      "the connection or the driver failed).", ["sqlstate"])
DB_CALLS = Histogram("waifu_db_call_seconds", "Database calls by api function: time from asking for a "
                     "connection to the result, errors included.", ["function"],
                     buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0))
POOL_WAIT = Histogram("waifu_db_pool_wait_seconds", "Time a database call waited for a free connection of "
                      "its pool (0 when one was free).",
                      buckets=(0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0))
POOL_IN_USE = Gauge("waifu_db_pool_connections_in_use", "Connections of the process's pools busy with a call now.")
RATE_LIMITED = Counter("waifu_rate_limited_total", "Requests refused by the shared rate limits, by bucket "
                       "(ops.rate_limits).", ["bucket"])
MODE = Gauge("waifu_bot_mode", "How this process receives updates: 1 for its mode.", ["mode"])
# Every series of a fixed label set exists from the start at 0, so that a rate or a ratio
# over it is 0 rather than empty before the first event (the error-rate alert, the graphs).
for _type in UPDATE_TYPES:
    for _outcome in UPDATE_OUTCOMES:
        UPDATES.labels(_type, _outcome)
for _bucket in ("chat_user", "group_chat", "web_action", "web_address"):
    RATE_LIMITED.labels(_bucket)

_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
_FUNCTION = re.compile(r"\bapi\.([a-z_][a-z0-9_]*)\s*\(")
_db_children: dict[str, Any] = {}
_METHOD = re.compile(r"[A-Za-z]{1,40}")


def update_type(action: str) -> str:
    """The type label of an update from its first action (bot/middlewares.describe)."""
    if action.startswith("/"):
        return "command"
    if action.startswith("button:"):
        return "callback"
    if action in ("text", "message"):
        return action
    return "other"


def update_done(kind: str, outcome: str) -> None:
    """Count an update: outcome is the log line's (ok, refused:<code>, error:<type>, ...)."""
    head, _, code = outcome.partition(":")
    if head == "refused" and code == "unavailable":
        head = "unavailable"
    UPDATES.labels(kind if kind in UPDATE_TYPES else "other",
                   head if head in UPDATE_OUTCOMES else "error").inc()


def function_of(sql: str) -> str:
    """The api function a statement calls (`SELECT api.f(...)` -> f; else "other")."""
    match = _FUNCTION.search(sql)
    return match.group(1) if match else "other"


def db_call_histogram(sql: str) -> Any:
    """The latency histogram's child for this statement, remembered per text: the texts are
    the constants of bot/game.py, so the cache and the label set stay small."""
    child = _db_children.get(sql)
    if child is None:
        child = DB_CALLS.labels(function_of(sql))
        if len(_db_children) < 200:
            _db_children[sql] = child
    return child


def db_error(exc: BaseException) -> None:
    sqlstate = getattr(exc, "sqlstate", None)
    GAME_ERRORS.labels(sqlstate if isinstance(sqlstate, str) and _SQLSTATE.fullmatch(sqlstate) else "client").inc()


def telegram_request(method: str, outcome: str) -> None:
    REPLIES.labels(method if _METHOD.fullmatch(method) else "other", outcome).inc()


def rate_limited(bucket: str) -> None:
    """A refusal by a shared limit; `bucket` is a row of ops.rate_limits (fixed names)."""
    RATE_LIMITED.labels(bucket if re.fullmatch(r"[a-z_]{1,32}", bucket) else "other").inc()


def set_mode(mode: str) -> None:
    for name in ("polling", "webhook"):
        MODE.labels(name).set(1 if name == mode else 0)


class NotifierCollector(Collector):
    """The outbox sender's counters, read from its `Stats` at each scrape."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def collect(self) -> Iterator[CounterMetricFamily]:
        s = self.notifier.stats
        rows = CounterMetricFamily("waifu_notifier_rows", "Outbox rows this process finished, by outcome "
                                   "(sent; retry: given back after a 429 or a network error; blocked: 403, "
                                   "the player blocked the bot; failed: refused by Telegram).", labels=["outcome"])
        for outcome, value in (("sent", s.sent), ("retry", s.retried), ("blocked", s.blocked),
                               ("failed", s.failed)):
            rows.add_metric([outcome], value)
        yield rows
        yield CounterMetricFamily("waifu_outbox_claimed_rows", "Outbox rows this process claimed.",
                                  value=s.claimed)
        yield CounterMetricFamily("waifu_outbox_lease_expired_rows", "Claimed rows not sent here because their "
                                  "lease could end before the send (claimed again later).", value=s.expired)
        yield CounterMetricFamily("waifu_notifier_rate_limited", "429 answers to the sender (each pauses every "
                                  "send of this process for retry_after).", value=s.rate_limited)
        yield CounterMetricFamily("waifu_notifier_send_errors", "Sends whose outcome is unknown (network, 5xx): "
                                  "sent again later.", value=s.errors)


_notifier_collector: NotifierCollector | None = None


def watch_notifier(notifier: Notifier | None) -> None:
    """Export this notifier's counters (replacing a previous one's: one sender per process)."""
    global _notifier_collector
    if _notifier_collector is not None:
        REGISTRY.unregister(_notifier_collector)
        _notifier_collector = None
    if notifier is not None:
        _notifier_collector = NotifierCollector(notifier)
        REGISTRY.register(_notifier_collector)


async def serve(host: str, port: int) -> web.AppRunner:
    """Start the metrics server (only `/metrics`); the caller cleans the runner up."""
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(REGISTRY))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def start(settings: Any, *, mode: str, notifier: Notifier | None = None) -> web.AppRunner | None:
    """What a process calls at start-up: its mode and sender, and the server if METRICS_PORT is set."""
    set_mode(mode)
    watch_notifier(notifier)
    if not settings.metrics_port:
        return None
    runner = await serve(settings.metrics_host, settings.metrics_port)
    log.info("serving metrics", extra={"host": settings.metrics_host, "port": settings.metrics_port})
    return runner
