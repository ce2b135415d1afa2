"""`python -m bot` as a real process: long polling and webhook against the Bot API
stand-in, the Mini App served on the same port, graceful shutdown on SIGTERM (pool and
session closed), one JSON log line per update, and a clear stop without a token."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bot.dev.local_botapi import TelegramStub
from bot.texts import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_URL = "https://bot.example.test/telegram/webhook"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BotProcess:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, app_name: str) -> None:
        self.proc = proc
        self.port = port
        self.app_name = app_name
        self.stderr = b""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_serving(self, timeout: float = 30.0) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(int(timeout * 10)):
                if self.proc.returncode is not None:
                    raise AssertionError(f"the bot exited: {(await self.proc.stderr.read()).decode()}")
                try:
                    async with http.get(f"{self.base}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the bot's web server did not come up")

    async def stop(self, timeout: float = 20.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        _, self.stderr = await asyncio.wait_for(self.proc.communicate(), timeout)
        return self.proc.returncode

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr.decode().splitlines() if line.startswith("{")]


async def start_bot(stub: TelegramStub, database, tmp_path: Path, **env: str) -> BotProcess:
    port = free_port()
    app_name = f"bot-process-test-{port}"
    environment = {
        "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": stub.token, "TELEGRAM_API_URL": stub.url,
        "DATABASE_URL": f"{database.bot_url}?application_name={app_name}",
        "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port), "WEBAPP_URL": "https://waifu.example.test/webapp/",
        **env,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    bot = BotProcess(proc, port, app_name)
    await bot.wait_serving()
    return bot


async def connections(admin: asyncpg.Connection, app_name: str) -> int:
    return await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app_name)


async def test_long_polling_process(stub: TelegramStub, database, admin, tmp_path: Path) -> None:
    bot = await start_bot(stub, database, tmp_path)
    try:
        await stub.wait_for(lambda: stub.calls_of("getUpdates"), timeout=15)
        assert [c["command"] for c in stub.commands[None]] == list(COMMANDS)
        assert COMMANDS[:5] == ("start", "menu", "profile", "events", "daily") and "top" in COMMANDS
        assert stub.menu_button["web_app"]["url"] == "https://waifu.example.test/webapp/"
        assert await connections(admin, bot.app_name) >= 1

        ann = stub.user(2001, "Ann")
        start = ann.message("/start")
        stub.enqueue(start)
        await stub.wait_for(lambda: stub.bot_messages(ann.chat_id), timeout=15)
        assert ann.last()["text"].startswith("Welcome, Ann!")
        tap = ann.press("Sakura")
        stub.enqueue(tap)
        await stub.wait_for(lambda: stub.answers(tap["callback_query"]["id"]), timeout=15)
        assert await admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 2001") == 1
    finally:
        rc = await bot.stop()
    assert rc == 0, bot.stderr.decode()[-2000:]
    assert await connections(admin, bot.app_name) == 0  # the pool was closed

    lines = bot.log_lines()
    updates = {line["update_id"]: line for line in lines if line.get("msg") == "update"}
    assert updates[start["update_id"]] | {"latency_ms": 0, "ts": ""} == {
        "ts": "", "level": "info", "logger": "bot.updates", "msg": "update", "update_id": start["update_id"],
        "user_id": 2001, "action": "/start", "outcome": "ok", "latency_ms": 0}
    assert updates[tap["update_id"]]["action"] == "adopt"
    assert updates[start["update_id"]]["latency_ms"] > 0
    # aiogram's own per-update lines are replaced by ours: exactly one line per update.
    assert sum(1 for line in lines if line.get("update_id") == start["update_id"]) == 1
    assert_clean_stop(bot)


def assert_clean_stop(bot: BotProcess) -> None:
    """A clean stop logs no error: no error line, no traceback, nothing but JSON lines."""
    text = bot.stderr.decode()
    assert "Traceback" not in text and "Task exception was never retrieved" not in text, text[-3000:]
    assert [line for line in text.splitlines() if not line.startswith("{")] == [], text[-3000:]
    assert [line for line in bot.log_lines() if line["level"] in ("error", "critical")] == []
    assert bot.log_lines()[-1]["msg"] == "stopped"


async def test_webhook_process(stub: TelegramStub, database, admin, tmp_path: Path) -> None:
    bot = await start_bot(stub, database, tmp_path, WEBHOOK_URL=WEBHOOK_URL, WEBHOOK_SECRET="s3cret-Token_1")
    try:
        await stub.wait_for(lambda: stub.webhook, timeout=15)
        assert stub.webhook["url"] == WEBHOOK_URL and stub.webhook["secret_token"] == "s3cret-Token_1"
        bea = stub.user(2002, "Bea")
        async with aiohttp.ClientSession() as http:
            url = f"{bot.base}/telegram/webhook"
            for headers in ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {}):
                async with http.post(url, json=bea.message("/start"), headers=headers) as resp:
                    assert resp.status == 401
            start = bea.message("/start")
            secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}
            async with http.post(url, json=start, headers=secret) as resp:
                assert resp.status == 200
            await stub.wait_for(lambda: stub.bot_messages(bea.chat_id), timeout=15)
            await asyncio.sleep(0.3)  # nothing else arrives: the refused deliveries were not handled
        assert len(stub.bot_messages(bea.chat_id)) == 1
        assert bea.last()["text"].startswith("Welcome, Bea!")
        assert not stub.calls_of("getUpdates")  # webhook mode does not poll
        assert await admin.fetchval("SELECT count(*) FROM game.players WHERE telegram_id = 2002") == 1
    finally:
        rc = await bot.stop()
    assert rc == 0, bot.stderr.decode()[-2000:]
    assert await connections(admin, bot.app_name) == 0
    assert_clean_stop(bot)


async def test_without_a_token_it_stops_at_once_and_says_where_to_get_one(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 78  # EX_CONFIG: docker-compose's check-config service stops there for good
    assert "BOT_TOKEN" in err.decode() and "@BotFather" in err.decode()
    assert not (tmp_path / ".localdb").exists()


async def test_terminal_chat_plays_a_round(database, admin, tmp_path: Path) -> None:
    script = "/start\n4\n2\n2\n7\n/profile\nhello\n99\n:quit\n"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.dev.terminal", "--user-id", "2003", "--name", "<b>Cleo</b>", cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "DATABASE_URL": database.bot_url,
             "NO_COLOR": "1"},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(script.encode()), 60)
    text = out.decode()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "Welcome, <b>Cleo</b>!" in text  # shown as typed: escaped for Telegram, not lost
    assert "[4] 💕 Sakura" in text and "🎉 Sakura is now your companion!" in text
    assert "Events for Sakura" in text and "[2] Walk in the park · 10⚡" in text
    assert "✅ Sakura: Walk in the park" in text and "💬 +15 XP" in text
    assert "(no button 99 here)" in text and "I answer to buttons and commands." in text
    assert "[Bot API refused" not in text
    assert await admin.fetchval("SELECT count(*) FROM game.participations WHERE telegram_id = 2003") == 1
