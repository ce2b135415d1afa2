"""A real Prometheus (Debian's) with the project's scrape config and alert rules scrapes a
running bot (against the Bot API stand-in) and prometheus-postgres-exporter (the
project's queries file, logged in as waifu_monitor); PromQL over its HTTP API then finds
the participations, the game's refusals, pg_cron's real tick and the notification it
caused, with the right values. Every panel query of the Grafana dashboard runs too."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from bot.dev.local_botapi import TelegramStub
from tests.bot.test_metrics import play
from tests.bot.test_process import free_port, start_bot
from tests.core.conftest import set_stored

MONITORING = Path(__file__).resolve().parents[2] / "db" / "monitoring"
MONITOR_PASSWORD = "monitor-test-password"
PLAYER = 7401


@pytest.fixture
async def stub() -> AsyncIterator[TelegramStub]:
    s = TelegramStub()
    await s.start()
    yield s
    await s.stop()


async def spawn(*args: str, env: dict[str, str] | None = None, log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(*args, stdout=out, stderr=out,
                                                    env={"PATH": os.environ["PATH"], **(env or {})})


async def stop(proc: asyncio.subprocess.Process) -> None:
    """By its pid: SIGTERM, then SIGKILL after 10 s."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    async def api(self, path: str, **params: str) -> Any:
        async with aiohttp.ClientSession() as http, http.get(f"{self.base}/api/v1/{path}", params=params) as resp:
            body = await resp.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, promql: str) -> list[dict[str, Any]]:
        return (await self.api("query", query=promql))["result"]

    async def value(self, promql: str) -> float | None:
        """The single value of an instant query (None: no series)."""
        result = await self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    async def until(self, promql: str, check: Callable[[float | None], bool], timeout: float = 150) -> float | None:
        """Poll until the value passes `check` (scrapes are 15 s apart, pg_cron ticks each minute)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.value(promql)
            if check(value):
                return value
            assert asyncio.get_running_loop().time() < deadline, f"{promql} = {value}"
            await asyncio.sleep(1)


async def wait_http(url: str, proc: asyncio.subprocess.Process, log: Path, timeout: float = 30) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(int(timeout * 10)):
            assert proc.returncode is None, log.read_text()[-3000:]
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered: {log.read_text()[-3000:]}")


async def test_prometheus_sees_the_game(stub: TelegramStub, database, admin: asyncpg.Connection,
                                       tmp_path: Path) -> None:
    await admin.execute(f"ALTER ROLE waifu_monitor PASSWORD '{MONITOR_PASSWORD}'")
    db = urlsplit(database.admin_url)
    exporter_port, prometheus_port, metrics_port = free_port(), free_port(), free_port()
    # The project's files as they are; only the targets (file_sd) name this test's ports.
    config = tmp_path / "prometheus"
    (config / "targets").mkdir(parents=True)
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(MONITORING / name, config / name)
    (config / "targets" / "bot.yml").write_text(f'- targets: ["127.0.0.1:{metrics_port}"]\n')
    (config / "targets" / "postgres.yml").write_text(f'- targets: ["127.0.0.1:{exporter_port}"]\n')

    exporter_log, prometheus_log = tmp_path / "exporter.log", tmp_path / "prometheus.log"
    exporter = await spawn(
        "prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{exporter_port}",
        f"--extend.query-path={MONITORING / 'queries.yaml'}", "--disable-default-metrics",
        "--disable-settings-metrics", log=exporter_log,
        env={"DATA_SOURCE_NAME": f"postgresql://waifu_monitor:{MONITOR_PASSWORD}@{db.hostname}:{db.port}"
                                 f"{db.path}?sslmode=disable"})
    prometheus = await spawn(
        "prometheus", f"--config.file={config / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}", log=prometheus_log)
    bot = await start_bot(stub, database, tmp_path, METRICS_PORT=str(metrics_port), NOTIFY_POLL_SECONDS="1")
    try:
        await wait_http(f"http://127.0.0.1:{exporter_port}/metrics", exporter, exporter_log)
        await wait_http(f"http://127.0.0.1:{prometheus_port}/-/ready", prometheus, prometheus_log)
        prom = Prometheus(prometheus_port)
        before = dict(await admin.fetchrow("SELECT * FROM ops.metrics()"))

        await play(stub, PLAYER)  # 4 participations: 3 taken part, 1 refused (on cooldown)
        # Her energy as if spent two hours ago: pg_cron's next tick fills her, and the bot's
        # sender delivers "she is rested" (the cursor is moved back to see a clock set by hand).
        waifu_id = await admin.fetchval("SELECT id FROM game.waifus WHERE owner_id = $1", PLAYER)
        await set_stored(admin, waifu_id, energy=40,
                         clock=await admin.fetchval("SELECT now() - interval '2 hours'"))
        await admin.execute("SELECT ops.reset_tick(now() - interval '1 day')")

        # The bot's own figures.
        assert await prom.until('waifu_db_call_seconds_count{function="participate_in_event", job="waifu-bot"}',
                                lambda v: v is not None and v >= 4) == 4
        assert await prom.value('waifu_db_errors_total{sqlstate="WF003"}') == 1
        assert await prom.value('sum(waifu_updates_total{outcome="refused"})') == 1
        assert await prom.value('sum(waifu_updates_total{outcome="ok"})') == 7
        assert await prom.value('waifu_bot_mode{mode="polling"}') == 1
        # The database's: players, waifus, the ledger's three new rows.
        await prom.until("waifu_players", lambda v: v == 1, timeout=60)
        await prom.until("waifu_waifus", lambda v: v == 1, timeout=60)
        await prom.until("waifu_ledger_inserted_rows_total",
                         lambda v: v == before["ledger_inserted_rows_total"] + 3, timeout=60)
        # pg_cron's real tick filled her, and the sender sent her message.
        await prom.until("waifu_tick_filled_total", lambda v: v == before["tick_filled_total"] + 1)
        assert await prom.value("waifu_tick_runs_total") > before["tick_runs_total"]
        assert await prom.value('waifu_cron_last_success_age_seconds{cron_job="restore-energy"}') < 90
        assert await prom.value('waifu_cron_last_failed{cron_job="restore-energy"}') == 0
        await prom.until('waifu_notifier_rows_total{outcome="sent"}', lambda v: v == 1)
        assert await prom.value("waifu_outbox_claimed_rows_total") == 1
        await prom.until("waifu_outbox_waiting", lambda v: v == 0)
        await prom.until('waifu_outbox_notifications{outcome="sent"}', lambda v: v == 1, timeout=200)
        assert stub.bot_messages(PLAYER)[-1]["text"].startswith("🌸 Sakura is rested: ⚡ 100.")
        # Both targets up, the rules loaded and healthy, the tick's alert quiet.
        assert await prom.value("pg_up") == 1
        assert {r["metric"]["job"]: r["value"][1] for r in await prom.query("up")} == {
            "waifu-bot": "1", "waifu-postgres": "1"}
        groups = (await prom.api("rules"))["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert len(rules) == 8 and all(r["health"] == "ok" for r in rules), rules
        assert await prom.query('ALERTS{alertname=~"WaifuTickNotRunning|WaifuDatabaseUnreachable|WaifuBotDown"}') \
            == []
        # Every panel of the dashboard is a valid query with data here.
        dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
        empty = []
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                if not await prom.query(target["expr"]):
                    empty.append(target["expr"])
        assert empty == []
    finally:
        assert await bot.stop() == 0, bot.stderr.decode()[-2000:]
        await stop(prometheus)
        await stop(exporter)
