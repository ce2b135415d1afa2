"""A local stand-in for the Telegram Bot API, strict where Telegram is strict.

The bot talks to it over real HTTP (`AiohttpSession(api=TelegramAPIServer.from_base(url))`):
`POST /bot<token>/<method>` with form fields, answered `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": ..., "description": ...}` like Telegram. It records every
request, keeps the chats' messages (so edits and button presses act on what the player
really sees), and refuses what Telegram refuses:

- text longer than 4096 characters after entity parsing, or empty;
- HTML that Telegram cannot parse: unknown tags, unbalanced tags, a bare `<` or `&`;
- callback_data over 64 bytes, a web_app button outside a private chat or without https;
- an edit that changes nothing ("message is not modified"), an edit of an unknown message;
- answering a callback query twice, or one it never sent; an alert over 200 characters;
- a message to a chat that never talked to the bot ("chat not found");
- Telegram's flood limits on sent messages (`Limits`): beyond ~30 sendMessage/s overall, or
  a chat's burst allowance spent (refilled at 1/s), 429 Too Many Requests with `retry_after`;
  edits and callback answers are not counted. On by default; off in lenient mode unless
  `--limits` (the bot benchmark drives 500 updates/s through one bot on purpose);
- 403 "Forbidden: bot was blocked by the user" for a chat marked `block(chat_id)`;
- sendPhoto: an upload (multipart, `attach://` as aiogram sends it) must be a PNG or JPEG and
  gets a new file_id; a file_id string must be one this stand-in handed out (else 400 "wrong
  file identifier", as Telegram answers a stale or foreign one: `forget_files()`); a caption
  over 1024 characters is refused; editMessageText of a photo is refused ("there is no text
  in the message to edit"), editMessageCaption edits it;
- and, on demand, 429 Too Many Requests with `retry_after`.

It also serves getUpdates (long polling) from a queue, which the terminal chat uses, and
delivers an update to a webhook (`deliver`) as Telegram does: a Bot API call in the
webhook's response is carried out like a request.
Run alone (`python -m bot.dev.local_botapi --port 8081`) it serves one bot in
"lenient" mode for the benchmark: chats and callback ids it did not create are
accepted (the load generator lives in another process), everything else is as strict.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import copy
import gc
import hashlib
import html
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
PHOTO_LIMIT = 10 * 1024 ** 2  # Telegram's limit for a photo upload
ALERT_LIMIT = 200
CALLBACK_DATA_LIMIT = 64

# Form fields that carry JSON, integers or booleans (everything else is a string).
_JSON_FIELDS = {"reply_markup", "commands", "menu_button", "allowed_updates", "entities", "scope",
                "link_preview_options", "reply_parameters"}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time", "max_connections",
               "message_thread_id"}
_BOOL_FIELDS = {"show_alert", "drop_pending_updates", "disable_notification", "protect_content",
                "disable_web_page_preview"}


# Methods that send a message: counted by the flood limits, refused for a blocked chat.
_SEND_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument", "sendsticker", "sendanimation"})


class TelegramError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def bad_request(description: str) -> TelegramError:
    return TelegramError(400, f"Bad Request: {description}")


# -- Telegram's HTML -------------------------------------------------------------------------

_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_START_TAG = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?)*)\s*>")
_ATTR = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_END_TAG = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)\s*>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode())


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's parse_mode=HTML: (plain text, entities with UTF-16 offsets), or 400."""
    out: list[str] = []
    offset = 0  # UTF-16 units written so far
    stack: list[tuple[str, str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(source)
    while i < n:
        c = source[i]
        if c == "<":
            end = _END_TAG.match(source, i)
            if end:
                name = end.group(1).lower()
                if not stack:
                    raise bad_request(f"can't parse entities: unexpected end tag at byte offset "
                                      f"{_byte_offset(source, i)}")
                open_name, kind, start, attrs = stack.pop()
                if open_name != name:
                    raise bad_request(f"can't parse entities: unmatched end tag at byte offset "
                                      f"{_byte_offset(source, i)}, expected \"</{open_name}>\", found \"</{name}>\"")
                if offset > start:
                    entity: dict[str, Any] = {"type": kind, "offset": start, "length": offset - start}
                    if kind == "text_link":
                        entity["url"] = attrs["href"]
                    if kind == "pre" and attrs.get("language"):
                        entity["language"] = attrs["language"]
                    entities.append(entity)
                i = end.end()
                continue
            start_tag = _START_TAG.match(source, i)
            if not start_tag or start_tag.group(1).lower() not in _TAGS:
                shown = start_tag.group(1) if start_tag else source[i + 1:i + 11]
                raise bad_request(f"can't parse entities: unsupported start tag \"{shown}\" at byte offset "
                                  f"{_byte_offset(source, i)}")
            name = start_tag.group(1).lower()
            attrs = {m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
                     for m in _ATTR.finditer(start_tag.group(2) or "")}
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise bad_request("can't parse entities: tag \"span\" must have class \"tg-spoiler\" at byte offset "
                                  f"{_byte_offset(source, i)}")
            if name == "a" and not attrs.get("href"):
                raise bad_request("can't parse entities: tag \"a\" must have attribute \"href\"")
            stack.append((name, _TAGS[name], offset, attrs))
            i = start_tag.end()
            continue
        if c == "&":
            entity_match = _ENTITY.match(source, i)
            if not entity_match:
                raise bad_request(f"can't parse entities: character '&' is reserved and must be escaped "
                                  f"with \"&amp;\" at byte offset {_byte_offset(source, i)}")
            ref = entity_match.group(1)
            if ref.startswith("#x"):
                ch = chr(int(ref[2:], 16))
            elif ref.startswith("#"):
                ch = chr(int(ref[1:]))
            else:
                ch = _NAMED[ref]
            out.append(ch)
            offset += utf16_len(ch)
            i = entity_match.end()
            continue
        out.append(c)
        offset += utf16_len(c)
        i += 1
    if stack:
        raise bad_request(f"can't parse entities: can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _reply_params(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of a webhook's JSON response (Telegram also reads forms; the bot sends JSON)."""
    if not content_type.startswith("application/json"):
        return {}
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return dict(data) if isinstance(data, dict) else {}


# -- the state ---------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    response: dict[str, Any]
    at: float = 0.0  # time.monotonic() on arrival
    via_webhook: bool = False  # carried out from a webhook's response, not requested


@dataclass
class Limits:
    """Telegram's flood limits for sent messages, as its FAQ gives them: about 30
    messages/s overall and about one per second in a chat (short bursts pass)."""

    per_second: int = 30
    chat_per_second: float = 1.0
    # Messages a chat may get at once before the 1/s pace applies: the bot answers a
    # command with a message or two, and tests type faster than people.
    chat_burst: int = 5


@dataclass
class ChatState:
    chat: dict[str, Any]
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_message_id: int = 1


@dataclass
class Fault:
    count: int
    method: str | None
    retry_after: int
    status: int = 429


class TelegramStub:
    def __init__(self, token: str = "123456:TEST-token_for-the-stand-in", *, bot_id: int | None = None,
                 bot_username: str = "waifu_test_bot", lenient: bool = False,
                 limits: Limits | bool | None = True, first_update_id: int = 1000) -> None:
        self.token = token
        self.bot_user = {"id": bot_id or int(token.split(":")[0]), "is_bot": True, "first_name": "Waifu Test",
                         "username": bot_username, "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.lenient = lenient
        # Lenient (benchmark) mode keeps a bounded history: a long run must not slow the
        # stand-in down (its garbage collector walks everything it keeps).
        self.calls: list[Call] | collections.deque[Call] = collections.deque(maxlen=1000) if lenient else []
        self.chats: dict[int, ChatState] = {}
        self.callbacks: dict[str, dict[str, Any]] = {}  # id -> {"user_id", "answers": [params...]}
        self.faults: list[Fault] = []
        # Flood limits (Limits()) unless turned off (limits=False; lenient mode: off unless given).
        if limits is True:
            limits = None if lenient else Limits()
        self.limits: Limits | None = limits if isinstance(limits, Limits) else None
        self._sent_times: collections.deque[float] = collections.deque()
        self._chat_tokens: dict[int, tuple[float, float]] = {}  # chat -> (tokens, as of)
        self.blocked: set[int] = set()
        self.sent_per_chat: collections.Counter[int] = collections.Counter()
        self.rate_limited = 0  # 429s answered by the flood limits
        self.send_delay = 0.0  # seconds each sent message takes to be answered (tests of a slow Telegram)
        self.forbidden = 0  # 403s answered for blocked chats
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.menu_button: dict[str, Any] | None = None
        self.webhook: dict[str, Any] | None = None
        self.admins: set[tuple[int, int]] = set()  # (chat id, user id): getChatMember says administrator
        # Photos this stand-in was sent: file_id -> {"sha256", "size", "width", "height"}.
        self.files: dict[str, dict[str, Any]] = {}
        self.uploads = 0  # photos uploaded (not sent by file_id)
        self._update_ids = itertools.count(first_update_id)
        self._callback_ids = itertools.count(1)
        self._queue: list[dict[str, Any]] = []
        self._queue_changed = asyncio.Event()
        self._activity = asyncio.Condition()
        self.app = web.Application(client_max_size=1024 ** 2)
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self.app.router.add_get("/_stats", self._stats)
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.url = ""

    # -- serving -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.url = f"http://{host}:{sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        self._closing = True
        self._queue_changed.set()  # ends a long poll still waiting
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        # Recorded on arrival (status 0 until answered): a long poll is visible while it waits.
        call = Call(method, params, 0, {}, time.monotonic())
        self.calls.append(call)
        await self._notify()
        if request.match_info["token"] != self.token:
            call.status, call.response = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        else:
            call.status, call.response = await self._dispatch(method, params)
        await self._notify()
        return web.json_response(call.response, status=call.status)

    async def _notify(self) -> None:
        async with self._activity:
            self._activity.notify_all()

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        raw = await request.post()
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, web.FileField):  # an uploaded file: its bytes, as Telegram reads them
                params[key] = {"upload": value.file.read(), "filename": value.filename}
                continue
            value = str(value)
            if key in _JSON_FIELDS:
                params[key] = json.loads(value)
            elif key in _INT_FIELDS:
                params[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
            elif key in _BOOL_FIELDS:
                params[key] = value in ("true", "True", "1")
            else:
                params[key] = value
        return params

    async def deliver(self, url: str, update: dict[str, Any], secret: str | None = None) -> int:
        """POST `update` to the webhook at `url` as Telegram does, then carry out the Bot API
        call its response may hold (JSON with `method`), recorded as a call `via_webhook`.
        Returns the webhook's HTTP status."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with aiohttp.ClientSession() as http, http.post(url, json=update, headers=headers) as resp:
            status, content_type, body = resp.status, resp.headers.get("Content-Type", ""), await resp.read()
        if status != 200:
            return status
        params = _reply_params(content_type, body)
        method = params.pop("method", None)
        if isinstance(method, str) and method:
            call = Call(method, params, 0, {}, time.monotonic(), via_webhook=True)
            self.calls.append(call)
            call.status, call.response = await self._dispatch(method, params)
            await self._notify()
        return status

    async def _dispatch(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = method.lower()
        fault = self._take_fault(name)
        if fault is not None and fault.status != 429:
            return fault.status, {"ok": False, "error_code": fault.status, "description": "Bad Gateway"}
        if fault is not None:
            return 429, {"ok": False, "error_code": 429,
                         "description": f"Too Many Requests: retry after {fault.retry_after}",
                         "parameters": {"retry_after": fault.retry_after}}
        handler: Callable[[dict[str, Any]], Any] | None = getattr(self, f"_m_{name}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        try:
            sending = name in _SEND_METHODS
            if sending:
                if self.send_delay:
                    await asyncio.sleep(self.send_delay)
                self._check_send(params)
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
            if sending:
                self._count_send(params)
        except TelegramError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return exc.status, body
        return 200, {"ok": True, "result": result}

    def _chat_tokens_now(self, chat_id: int, limits: Limits, now: float) -> float:
        tokens, as_of = self._chat_tokens.get(chat_id, (float(limits.chat_burst), now))
        return min(float(limits.chat_burst), tokens + (now - as_of) * limits.chat_per_second)

    def _check_send(self, params: dict[str, Any]) -> None:
        """403 for a blocked chat; 429 beyond the flood limits."""
        chat_id = params.get("chat_id")
        if chat_id in self.blocked:
            self.forbidden += 1
            raise TelegramError(403, "Forbidden: bot was blocked by the user")
        limits = self.limits
        if limits is None or not isinstance(chat_id, int):
            return
        now = time.monotonic()
        window = self._sent_times
        while window and window[0] <= now - 1.0:
            window.popleft()
        wait = window[0] + 1.0 - now if len(window) >= limits.per_second else 0.0
        tokens = self._chat_tokens_now(chat_id, limits, now)
        if tokens < 1.0:
            wait = max(wait, (1.0 - tokens) / limits.chat_per_second)
        if wait > 0:
            self.rate_limited += 1
            retry_after = max(1, math.ceil(wait))
            raise TelegramError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    def _count_send(self, params: dict[str, Any]) -> None:
        """A message went out: it counts against the limits (a refused one does not)."""
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            return
        self.sent_per_chat[chat_id] += 1
        if self.limits is not None:
            now = time.monotonic()
            self._sent_times.append(now)
            self._chat_tokens[chat_id] = (self._chat_tokens_now(chat_id, self.limits, now) - 1.0, now)

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.count > 0 and (fault.method is None or fault.method.lower() == method):
                fault.count -= 1
                return fault
        return None

    # -- what the tests drive ---------------------------------------------------------------------

    def block(self, chat_id: int) -> None:
        """The player blocked the bot: every message to this chat is refused with 403."""
        self.blocked.add(chat_id)

    def stats(self) -> dict[str, Any]:
        """Counters of sent messages (for a benchmark in another process: GET /_stats)."""
        counts = self.sent_per_chat.values()
        return {"messages": sum(counts), "chats": len(self.sent_per_chat),
                "duplicates": sum(c - 1 for c in counts if c > 1), "rate_limited": self.rate_limited,
                "forbidden": self.forbidden}

    async def _stats(self, request: web.Request) -> web.Response:
        if request.query.get("reset"):
            self.sent_per_chat.clear()
            self.rate_limited = self.forbidden = 0
        return web.json_response(self.stats())

    def fail_next(self, count: int = 1, *, method: str | None = None, retry_after: int = 1,
                  status: int = 429) -> None:
        """The next `count` calls (of `method`, or any) get 429 with `retry_after` (or `status`, e.g. 502)."""
        self.faults.append(Fault(count, method, retry_after, status))

    def user(self, user_id: int, first_name: str = "Ann", *, username: str | None = None,
             language_code: str | None = "en", chat_type: str = "private", chat_id: int | None = None) -> Player:
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        if chat_type == "private":
            chat = {"id": user_id, "type": "private", "first_name": first_name}
        else:
            chat = {"id": chat_id or -100_000 - user_id, "type": chat_type, "title": "A group"}
        return Player(self, user, chat)

    def chat(self, chat_id: int) -> ChatState:
        return self.chats[chat_id]

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        state = self.chats.get(chat_id)
        if state is None:
            return []
        return [m for m in state.messages.values() if m["from"]["id"] == self.bot_user["id"]]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def answers(self, callback_id: str) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = self.callbacks[callback_id]["answers"]
        return answers

    def enqueue(self, update: dict[str, Any]) -> None:
        """Hand an update to getUpdates (long polling)."""
        self._queue.append(update)
        self._queue_changed.set()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until `predicate()` is truthy (checked after every request)."""
        deadline = time.monotonic() + timeout
        async with self._activity:
            while not (value := predicate()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the stand-in did not see the expected requests")
                try:
                    await asyncio.wait_for(self._activity.wait(), remaining)
                except TimeoutError:
                    pass
        return value

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def new_callback(self, user_id: int) -> str:
        callback_id = str(4_000_000_000 + next(self._callback_ids))
        self.callbacks[callback_id] = {"user_id": user_id, "answers": []}
        return callback_id

    def _remember_chat(self, chat: dict[str, Any]) -> ChatState:
        state = self.chats.get(chat["id"])
        if state is None:
            state = self.chats[chat["id"]] = ChatState(chat)
        return state

    def _store_message(self, state: ChatState, message: dict[str, Any]) -> dict[str, Any]:
        message["message_id"] = state.next_message_id
        state.next_message_id += 1
        state.messages[message["message_id"]] = message
        if self.lenient and len(state.messages) > 20:
            del state.messages[next(iter(state.messages))]
        return message

    # -- checks -------------------------------------------------------------------------------------

    def _chat_for(self, params: dict[str, Any]) -> ChatState:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise bad_request("chat not found")
        state = self.chats.get(chat_id)
        if state is None:
            if not self.lenient or chat_id <= 0:
                raise bad_request("chat not found")
            state = self._remember_chat({"id": chat_id, "type": "private", "first_name": f"player {chat_id}"})
        return state

    @staticmethod
    def _text(params: dict[str, Any], limit: int | None = MESSAGE_LIMIT) -> tuple[str, list[dict[str, Any]]]:
        raw = params.get("text")
        if raw is None:
            raise bad_request("message text is empty")
        mode = params.get("parse_mode")
        if mode is None or mode == "":
            text, entities = raw, list(params.get("entities") or [])
        elif str(mode).lower() == "html":
            text, entities = parse_html(raw)
        else:
            raise bad_request(f"unsupported parse_mode {mode!r} in this stand-in (the bot uses HTML)")
        if not text.strip():
            raise bad_request("message text is empty")
        if limit is not None and utf16_len(text) > limit:
            raise bad_request("message is too long")
        return text, entities

    @staticmethod
    def _markup(params: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any] | None:
        markup: dict[str, Any] | None = params.get("reply_markup")
        if markup is None:
            return None
        rows = markup.get("inline_keyboard")
        if not isinstance(rows, list):
            raise bad_request("inline keyboard expected")
        actions = ("callback_data", "url", "web_app", "login_url", "switch_inline_query",
                   "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
                   "callback_game", "pay")
        total = 0
        for row in rows:
            if not isinstance(row, list):
                raise bad_request("inline keyboard rows must be arrays")
            for button in row:
                total += 1
                if not isinstance(button.get("text"), str) or not button["text"].strip():
                    raise bad_request("text buttons are unallowed in the inline keyboard")
                present = [a for a in actions if button.get(a) is not None]
                if len(present) != 1:
                    raise bad_request("BUTTON_TYPE_INVALID")
                if "callback_data" in present:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT:
                        raise bad_request("BUTTON_DATA_INVALID")
                if "web_app" in present:
                    if chat["type"] != "private":
                        raise bad_request("BUTTON_TYPE_INVALID")
                    url = button["web_app"].get("url", "")
                    if not url.startswith("https://"):
                        raise bad_request(f"inline keyboard button Web App URL '{url}' is invalid: "
                                          "Only HTTPS links are allowed")
        if total > 100:
            raise bad_request("too many inline keyboard buttons")
        return markup

    # -- methods ----------------------------------------------------------------------------------------

    def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("commands must be a list of at most 100")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c.get("command", "")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(c.get("description", "")) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[params.get("language_code")] = commands
        return True

    def _m_setchatmenubutton(self, params: dict[str, Any]) -> bool:
        button = params.get("menu_button") or {"type": "default"}
        if button.get("type") == "web_app":
            url = button.get("web_app", {}).get("url", "")
            if not url.startswith("https://"):
                raise bad_request("BUTTON_URL_INVALID")
            if not button.get("text"):
                raise bad_request("BUTTON_TEXT_INVALID")
        self.menu_button = button
        return True

    def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url", "")
        if not url.startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad_request("bad webhook: secret token contains unallowed characters")
        self.webhook = params
        return True

    def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._queue.clear()
        return True

    def _m_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._queue)}

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise TelegramError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                     "use deleteWebhook to delete the webhook first")
        offset = params.get("offset")
        if isinstance(offset, int) and offset > 0:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
        timeout = params.get("timeout") or 0
        if not self._queue and timeout and not self._closing:
            self._queue_changed.clear()
            try:
                await asyncio.wait_for(self._queue_changed.wait(), timeout)
            except TimeoutError:
                pass
        return list(self._queue[: params.get("limit") or 100])

    def _photo(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The PhotoSize list of a sent photo: an upload gets a new file_id, a file_id must be known."""
        photo = params.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            photo = params.get(photo.removeprefix("attach://"))
        if isinstance(photo, dict) and isinstance(photo.get("upload"), bytes):
            data: bytes = photo["upload"]
            if len(data) > PHOTO_LIMIT:
                raise bad_request("file is too big")
            if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
                width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            elif data.startswith(b"\xff\xd8\xff"):
                width, height = 0, 0
            else:
                raise bad_request("IMAGE_PROCESS_FAILED")
            file_id = "AgACAgIAAxk" + secrets.token_urlsafe(48)
            self.files[file_id] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "width": width,
                                   "height": height}
            self.uploads += 1
        elif isinstance(photo, str) and photo in self.files:
            file_id = photo
        elif isinstance(photo, str) and photo:
            raise bad_request("wrong file identifier/HTTP URL specified")
        else:
            raise bad_request("there is no photo in the request")
        f = self.files[file_id]
        return [{"file_id": file_id, "file_unique_id": "AQAD" + f["sha256"][:16], "width": f["width"],
                 "height": f["height"], "file_size": f["size"]}]

    def _caption(self, params: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
        if params.get("caption") in (None, ""):
            return None, []
        text, entities = self._text({**params, "text": params["caption"]}, limit=None)
        if utf16_len(text) > CAPTION_LIMIT:
            raise bad_request("message caption is too long")
        return text, entities

    def forget_files(self) -> None:
        """Telegram no longer knows the photos' file_ids (another bot's, or expired)."""
        self.files.clear()

    def _m_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._chat_for(params)
        caption, entities = self._caption(params)
        markup = self._markup(params, state.chat)
        message: dict[str, Any] = {"from": self.bot_user, "chat": state.chat, "date": int(time.time()),
                                   "photo": self._photo(params)}
        if caption is not None:
            message["caption"] = caption
        if entities:
            message["caption_entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        return dict(self._store_message(state, message))

    def _m_editmessagecaption(self, params: dict[str, Any]) -> dict[str, Any]:
        state, message = self._bot_message(params)
        if "text" in message:
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self._caption(params)
        markup = self._markup(params, state.chat)
        if (caption, entities, markup) == (message.get("caption"), message.get("caption_entities", []),
                                           message.get("reply_markup")):
            raise bad_request("message is not modified: specified new message content and reply markup are "
                              "exactly the same as a current content and reply markup of the message")
        for key in ("caption", "caption_entities", "reply_markup"):
            message.pop(key, None)
        if caption is not None:
            message["caption"] = caption
        if entities:
            message["caption_entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return dict(message)

    def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._chat_for(params)
        text, entities = self._text(params)
        markup = self._markup(params, state.chat)
        message: dict[str, Any] = {"from": self.bot_user, "chat": state.chat, "date": int(time.time()), "text": text}
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        return dict(self._store_message(state, message))

    def _bot_message(self, params: dict[str, Any]) -> tuple[ChatState, dict[str, Any]]:
        if "inline_message_id" in params:
            raise bad_request("this stand-in has no inline messages")
        state = self._chat_for(params)
        message = state.messages.get(params.get("message_id"))  # type: ignore[arg-type]
        if message is None:
            raise bad_request("message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise bad_request("message can't be edited")
        return state, message

    def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        state, message = self._bot_message(params)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._text(params)
        markup = self._markup(params, state.chat)  # omitted: the keyboard goes away, as in Telegram
        if (text, entities, markup) == (message["text"], message.get("entities", []), message.get("reply_markup")):
            raise bad_request("message is not modified: specified new message content and reply markup are "
                              "exactly the same as a current content and reply markup of the message")
        message["text"] = text
        message["edit_date"] = int(time.time())
        message.pop("entities", None)
        message.pop("reply_markup", None)
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        return dict(message)

    def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        state, message = self._bot_message(params)
        markup = self._markup(params, state.chat)
        if markup == message.get("reply_markup"):
            raise bad_request("message is not modified: specified new message content and reply markup are "
                              "exactly the same as a current content and reply markup of the message")
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        return dict(message)

    def _m_deletemessage(self, params: dict[str, Any]) -> bool:
        state = self._chat_for(params)
        if state.messages.pop(params.get("message_id"), None) is None:  # type: ignore[arg-type]
            raise bad_request("message to delete not found")
        return True

    def _m_getchatmember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        status = "administrator" if (chat_id, user_id) in self.admins else "member"
        user = {"id": user_id, "is_bot": False, "first_name": "Member"}
        if status == "administrator":
            return {"status": status, "user": user, "can_be_edited": False, "is_anonymous": False,
                    "can_manage_chat": True, "can_delete_messages": True, "can_manage_video_chats": True,
                    "can_restrict_members": True, "can_promote_members": False, "can_change_info": True,
                    "can_invite_users": True, "can_post_stories": False, "can_edit_stories": False,
                    "can_delete_stories": False, "can_send_welcome_messages": False}
        return {"status": status, "user": user}

    def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        callback_id = params.get("callback_query_id", "")
        state = self.callbacks.get(callback_id)
        if state is None and self.lenient and callback_id:
            state = self.callbacks[callback_id] = {"user_id": None, "answers": []}
        if state is None or state["answers"]:
            if state is not None:
                state.setdefault("refused", []).append(params)
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text") or ""
        if len(text) > ALERT_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
        state["answers"].append(params)
        return True


class Player:
    """A scripted Telegram user: makes the updates Telegram would deliver for them."""

    def __init__(self, stub: TelegramStub, user: dict[str, Any], chat: dict[str, Any]) -> None:
        self.stub = stub
        self.user = user
        self.chat = chat
        self.id: int = user["id"]
        self.chat_id: int = chat["id"]

    def message(self, text: str) -> dict[str, Any]:
        """An update with the player's text message (it also makes the chat known)."""
        state = self.stub._remember_chat(self.chat)
        message: dict[str, Any] = {"from": self.user, "chat": self.chat, "date": int(time.time()), "text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        self.stub._store_message(state, message)
        return {"update_id": self.stub.next_update_id(), "message": dict(message)}

    def last(self) -> dict[str, Any]:
        """The bot's latest message in this chat as it is now (after edits): a snapshot, so
        pressing its buttons later is pressing what the player saw at this moment."""
        messages = self.stub.bot_messages(self.chat_id)
        if not messages:
            raise AssertionError("the bot has not sent anything to this chat")
        return copy.deepcopy(messages[-1])

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
        return [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]

    def button(self, message: dict[str, Any], label: str) -> dict[str, Any]:
        """The button whose text contains `label`."""
        found = [b for b in self.buttons(message) if label in b["text"]]
        if not found:
            raise AssertionError(f"no button {label!r} in {[b['text'] for b in self.buttons(message)]}")
        return found[0]

    def press(self, label: str | None = None, *, message: dict[str, Any] | None = None,
              data: str | None = None) -> dict[str, Any]:
        """An update for a tap on a button (by label) of `message` (default: the last one).
        Each call is a new callback query with a new id, as for a real second tap."""
        message = message or self.last()
        if data is None:
            assert label is not None
            data = self.button(message, label)["callback_data"]
        callback_id = self.stub.new_callback(self.id)
        return {"update_id": self.stub.next_update_id(), "callback_query": {
            "id": callback_id, "from": self.user, "message": copy.deepcopy(message),
            "chat_instance": f"ci{self.chat_id}", "data": data}}


def callback_id_of(update: dict[str, Any]) -> str:
    return str(update["callback_query"]["id"])


async def _serve(port: int, token: str, limits: bool = False) -> None:
    stub = TelegramStub(token, lenient=True, limits=Limits() if limits else None)
    url = await stub.start(port=port)
    gc.collect()
    gc.freeze()  # as the bot does: start-up objects out of the collector's full passes
    print(f"Bot API stand-in on {url} (token {token})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await stub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Bot API stand-in (lenient mode).")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST-token_for-the-stand-in")
    parser.add_argument("--limits", action="store_true",
                        help="enforce Telegram's flood limits (429 beyond ~30 messages/s, ~1/s per chat)")
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.port, args.token, args.limits))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
