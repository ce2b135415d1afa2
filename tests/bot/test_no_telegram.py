"""`python -m bot` when Telegram cannot be used: one clear line and a sysexits code, not
an aiogram traceback (issue 21: a new user's fake token without network)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.dev.local_botapi import TelegramStub
from tests.bot.test_process import ROOT, free_port


async def run_bot(database, tmp_path: Path, token: str, api_url: str) -> tuple[int, str]:
    environment = {
        "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "BOT_TOKEN": token, "TELEGRAM_API_URL": api_url,
        "DATABASE_URL": database.bot_url, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(free_port()),
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=environment,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


def plain_lines(stderr: str) -> list[str]:
    """What is not a JSON log line: what a person reads."""
    return [line for line in stderr.splitlines() if line and not line.startswith("{")]


async def test_telegram_out_of_reach_is_one_line(database, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: like no network
    code, stderr = await run_bot(database, tmp_path, "123456:a-fake-token-nobody-issued", closed)
    assert code == 69, stderr  # EX_UNAVAILABLE
    assert "Traceback" not in stderr
    assert plain_lines(stderr) == [plain_lines(stderr)[-1]]
    assert plain_lines(stderr)[-1].startswith(f"cannot reach the Telegram Bot API at {closed} (")
    assert plain_lines(stderr)[-1].endswith("check the network or TELEGRAM_API_URL; to play without Telegram: "
                                            "make play")


async def test_a_token_telegram_refuses_is_one_line(database, tmp_path: Path) -> None:
    stub = TelegramStub()
    await stub.start()
    try:
        code, stderr = await run_bot(database, tmp_path, "654321:not-the-token-of-this-bot", stub.url)
    finally:
        await stub.stop()
    assert code == 78, stderr  # EX_CONFIG
    assert "Traceback" not in stderr
    assert plain_lines(stderr) == [f"Telegram refused BOT_TOKEN (401 Unauthorized at {stub.url}): take the token "
                                   "@BotFather gave your bot (/mybots, API Token)"]
