"""Several bot processes: webhook deliveries of one update to two processes apply once.

Both processes are real `python -m bot` processes in webhook mode, connected to the
PL/Proxy database as waifu_bot (the bot does not know it is partitioned). Nothing in
a process's memory is needed for correctness: the request key of a button comes from
the update itself (message id and the button's nonce), and the database applies a key
once. The in-memory duplicate-update skip (bot/middlewares.py) is an optimisation only.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg

from bot.dev.local_botapi import TelegramStub
from bot.polling_lock import EX_TEMPFAIL
from db.localdb import BOT_ROLE, password, with_user
from tests.bot.test_process import ROOT, WEBHOOK_URL, BotProcess, free_port, start_bot
from tests.proxy.harness import PartitionSet

SECRET = "two-processes"


async def deliver(stub: TelegramStub, bot: BotProcess, update: dict[str, Any]) -> int:
    """As Telegram delivers: a button's answer in the response is carried out too."""
    return await stub.deliver(f"{bot.base}/telegram/webhook", update, SECRET)


async def test_one_update_delivered_to_two_processes_applies_once(
        pset: PartitionSet, proxy_admin: asyncpg.Connection, tmp_path: Path) -> None:
    stub = TelegramStub()
    await stub.start()
    database = SimpleNamespace(bot_url=with_user(pset.proxy_url, BOT_ROLE, password(BOT_ROLE)))
    env = {"WEBHOOK_URL": WEBHOOK_URL, "WEBHOOK_SECRET": SECRET}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bots = [await start_bot(stub, database, tmp_path / "a", **env),
            await start_bot(stub, database, tmp_path / "b", **env)]
    try:
        dee = stub.user(3001, "Dee")
        assert await deliver(stub, bots[0], dee.message("/start")) == 200
        await stub.wait_for(lambda: stub.bot_messages(dee.chat_id), timeout=15)
        tap = dee.press("Sakura")
        # The same update (same update_id) to both processes at once, as a retried
        # delivery landing on the other process would be.
        assert await asyncio.gather(*(deliver(stub, b, tap) for b in bots)) == [200, 200]
        await stub.wait_for(lambda: len(stub.answers(tap["callback_query"]["id"])) >= 1, timeout=15)
        assert await proxy_admin.fetchval("SELECT count(*) FROM game.waifus WHERE owner_id = 3001") == 1

        assert await deliver(stub, bots[1], dee.message("/events")) == 200
        await stub.wait_for(lambda: "Walk" in str(dee.last()), timeout=15)
        join = dee.press("Walk")
        assert await asyncio.gather(*(deliver(stub, b, join) for b in bots)) == [200, 200]
        await stub.wait_for(lambda: len(stub.answers(join["callback_query"]["id"])) >= 1, timeout=15)
        await asyncio.sleep(0.5)  # both processes are done with it
        assert await proxy_admin.fetchval("SELECT count(*) FROM game.participations WHERE telegram_id = 3001") == 1
        energy = await proxy_admin.fetchval("SELECT (dynamic ->> 'energy')::int FROM game.waifus WHERE owner_id = 3001")
        assert energy == 100 - 10  # one walk paid for, not two
    finally:
        for b in bots:
            await b.stop()
        await stub.stop()
    for b in bots:
        assert b.proc.returncode == 0, b.stderr.decode()[-2000:]


async def test_a_second_poller_stops_at_once_and_the_first_goes_on(
        pset: PartitionSet, proxy_admin: asyncpg.Connection, tmp_path: Path) -> None:
    stub = TelegramStub()
    await stub.start()
    bot_url = with_user(pset.proxy_url, BOT_ROLE, password(BOT_ROLE))
    first = await start_bot(stub, SimpleNamespace(bot_url=bot_url), tmp_path)
    try:
        await stub.wait_for(lambda: stub.calls_of("getUpdates"), timeout=15)
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "BOT_TOKEN": stub.token,
                 "TELEGRAM_API_URL": stub.url, "DATABASE_URL": bot_url, "WEB_HOST": "127.0.0.1",
                 "WEB_PORT": str(free_port()), "WEBAPP_URL": "https://waifu.example.test/webapp/"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == EX_TEMPFAIL, err.decode()[-2000:]
        assert "another process is already polling" in err.decode()
        # The first poller still answers.
        eve = stub.user(3002, "Eve")
        stub.enqueue(eve.message("/start"))
        await stub.wait_for(lambda: stub.bot_messages(eve.chat_id), timeout=15)
        assert await proxy_admin.fetchval("SELECT count(*) FROM game.players WHERE telegram_id = 3002") == 1
    finally:
        rc = await first.stop()
        await stub.stop()
    assert rc == 0, first.stderr.decode()[-2000:]
