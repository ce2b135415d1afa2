"""The Mini App API's guards: request body size, requests per client address (before
authentication: costs no HMAC), and actions per player.

The limiters are bot/ratelimit.py's (the one rate-limit module); this is the HTTP side.
The address and action budgets are the shared ones (buckets `web_address` and
`web_action` of ops.rate_limits): every bot and web process draws on
the same budget, and a refused address is refused in memory until its wait ends, so a
flood costs the database one call per refusal window. Refusals answer the API's JSON
error shape with `Retry-After` (429) and are logged at a bounded rate (one line per key
per minute with a count).

Every handler that changes the game (a POST) calls `limit_action` right after
authentication, before it touches the game.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import hdrs, web

from bot import metrics
from bot.config import Settings
from bot.game import Game
from bot.ratelimit import ACTION_BUCKET, ADDRESS_BUCKET, BoundedLog, SharedLimits, retry_after_header
from bot.webapp.errors import error_response

log = logging.getLogger("bot.webapp.limits")  # the name operators filter on

# A refused body up to this size is drained (read and dropped, aiohttp's default
# lingering, 10 s at most) so that the client reliably reads the 413; beyond it, or
# with no length, the connection is closed at once.
DRAIN_LIMIT_BYTES = 1024 * 1024



@dataclass
class Limits:
    max_body_bytes: int
    shared: SharedLimits
    trusted_proxies: int
    refusals: BoundedLog

    @classmethod
    def from_settings(cls, settings: Settings, game: Game) -> Limits:
        return cls(
            max_body_bytes=settings.webapp_max_body_bytes,
            shared=SharedLimits(game, on_refused=metrics.rate_limited),
            trusted_proxies=settings.webapp_trusted_proxies,
            refusals=BoundedLog(log, interval=60.0),
        )


LIMITS_KEY = web.AppKey("webapp_limits", Limits)


def client_address(request: web.Request, trusted_proxies: int) -> str:
    """The client's address: the peer's, or - behind `trusted_proxies` proxies that each
    append the address they saw to X-Forwarded-For - the one the outermost proxy saw.
    Entries further left were written by the client and prove nothing."""
    peer = request.remote or "unknown"
    if trusted_proxies <= 0:
        return peer
    hops = [part.strip() for part in ",".join(request.headers.getall(hdrs.X_FORWARDED_FOR, [])).split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < trusted_proxies:
        return peer
    return hops[-trusted_proxies][:64]


def too_many(request: web.Request, scope: str, who: str | int, wait: float) -> web.Response:
    limits = request.app[LIMITS_KEY]
    limits.refusals.log((scope, who), "webapp rate limited", scope=scope, who=who, path=request.path)
    retry_after = retry_after_header(wait)
    return error_response(429, "rate_limited", "Too many requests: wait a moment and try again.",
                    {"scope": scope, "retry_after": int(retry_after)}, {"Retry-After": retry_after})


async def limit_action(request: web.Request, telegram_id: int) -> web.Response | None:
    """None if this player may act now; otherwise the 429 answer to return."""
    wait = await request.app[LIMITS_KEY].shared.wait(ACTION_BUCKET, telegram_id)
    return too_many(request, "player", telegram_id, wait) if wait else None


async def _refuse_body(request: web.Request, status: int, code: str, message: str) -> web.Response:
    limits = request.app[LIMITS_KEY]
    address = client_address(request, limits.trusted_proxies)
    limits.refusals.log((code, address), "webapp body refused", status=status, who=address, path=request.path)
    response = error_response(status, code, message, {"max_bytes": limits.max_body_bytes})
    response.force_close()  # the body is never read into the app; the connection is not reused
    length = request.content_length
    if (length is None or length > DRAIN_LIMIT_BYTES) and request.protocol is not None:
        # Too big to drain: send the answer, then close at once. (Up to the limit aiohttp
        # reads and drops the rest of the body before closing, so that the client surely
        # gets the 413: a socket closed with unread data may send a reset instead.)
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()
    return response


@web.middleware
async def limits_middleware(request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Body size, then the client address's budget, before anything else runs."""
    limits = request.app[LIMITS_KEY]
    length = request.content_length
    if length is not None and length > limits.max_body_bytes:
        return await _refuse_body(request, 413, "payload_too_large",
                            f"The request body is larger than {limits.max_body_bytes} bytes.")
    if length is None and "chunked" in request.headers.get(hdrs.TRANSFER_ENCODING, "").lower():
        # The size of a chunked body is known only by reading it: ask for a length.
        return await _refuse_body(request, 411, "length_required", "Send the request body with a Content-Length.")
    address = client_address(request, limits.trusted_proxies)
    wait = await limits.shared.wait(ADDRESS_BUCKET, address)
    if wait:
        return too_many(request, "address", address, wait)
    return await handler(request)
