"""Structured logs: one JSON object per line, and one line per handled update.

An update's line says who (user id), which update, what it was (action), how it ended
(outcome: ok, refused:<code>, error:<type>, duplicate) and how long it took.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from aiohttp.http_exceptions import HttpProcessingError

from bot import metrics
from bot.ratelimit import RateLimiter

update_logger = logging.getLogger("bot.updates")

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class BoundedServerErrors(logging.Filter):
    """Error lines a client can cause once per request or update stay bounded.

    aiohttp's server logs each request it cannot parse (an oversized header, a bad request
    line) as an ERROR with a traceback: ~800 bytes a request, for any client to trigger.
    Here a client's malformed request is a one-line warning without traceback, and every
    kind of error (exception type, else message) of the loggers it guards writes at most
    one line per `interval` seconds, with the lines held back counted in the next
    (`suppressed`). Lines below ERROR without a traceback pass untouched.
    """

    def __init__(self, interval: float = 60.0, max_message: int = 200) -> None:
        super().__init__()
        self._limiter = RateLimiter(1.0 / interval, 1)
        self._held_back: dict[str, int] = {}
        self._max_message = max_message

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and not record.exc_info:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        kind = type(exc).__name__ if exc is not None else record.getMessage()[:64]
        if self._limiter.hit(kind):
            if len(self._held_back) < 100 or kind in self._held_back:
                self._held_back[kind] = self._held_back.get(kind, 0) + 1
            return False
        record.suppressed = self._held_back.pop(kind, 0)
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "malformed request refused", ()
            record.exc_info, record.exc_text = None, None
            record.error = f"{kind}: {exc.message}"[: self._max_message]
            record.status = exc.code
        return True


# Where a request or an update can cause an error line: aiohttp's server, aiogram's
# dispatching, and ours (unexpected errors of handlers, the Mini App, the webhook, sends).
SERVER_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiogram.event", "aiogram.dispatcher", "bot.errors",
                  "bot.webapp", "bot.webhook", "bot.notifier")


def setup_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in SERVER_LOGGERS:
        server_log = logging.getLogger(name)
        server_log.filters[:] = [f for f in server_log.filters if not isinstance(f, BoundedServerErrors)]
        server_log.addFilter(BoundedServerErrors())
    # aiogram logs its own line per update and per callback answer: ours replaces them.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("aiogram.middlewares").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class UpdateLog:
    """Filled in while an update is handled; `emit` writes its one line."""

    __slots__ = ("action", "emitted", "kind", "started", "update_id", "user_id")

    def __init__(self, update_id: int, user_id: int | None, action: str) -> None:
        self.update_id = update_id
        self.user_id = user_id
        self.action = action
        self.kind = metrics.update_type(action)  # handlers rename the action; the type stays
        self.started = time.perf_counter()
        self.emitted = False

    def emit(self, outcome: str, level: int = logging.INFO) -> None:
        if self.emitted:
            return
        self.emitted = True
        metrics.update_done(self.kind, outcome)
        latency_ms = round((time.perf_counter() - self.started) * 1000, 2)
        if update_logger.isEnabledFor(level):
            update_logger.log(level, "update", extra={
                "update_id": self.update_id, "user_id": self.user_id, "action": self.action,
                "outcome": outcome, "latency_ms": latency_ms})
