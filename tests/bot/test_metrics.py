"""Prometheus metrics of `python -m bot` (bot/metrics.py): off by default, on a port of
their own when METRICS_PORT is set (never the public web port), counting what a real
process did against the Bot API stand-in, with bounded labels and no secrets."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError, load_settings
from bot.dev.local_botapi import TelegramStub
from tests.bot.test_process import free_port, start_bot

# Label values the code may produce: anything else (an id, a token, a text) is a leak.
ALLOWED_LABELS = {
    "type": {"command", "text", "message", "callback", "other"},
    "outcome": {"ok", "refused", "unavailable", "error", "duplicate", "limited", "retry_after", "forbidden",
                "bad_request", "server_error", "network_error", "other_error", "sent", "retry", "blocked",
                "failed"},
    "mode": {"polling", "webhook"},
    "bucket": {"chat_user", "group_chat", "group_send", "web_action", "web_address"},
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def play(stub: TelegramStub, user_id: int) -> None:
    """/start, adopt, two walks, a cafe date and the same again (refused: on cooldown)."""
    player = stub.user(user_id, "Mia")
    stub.enqueue(player.message("/start"))
    await stub.wait_for(lambda: stub.bot_messages(player.chat_id), timeout=15)
    for label in ("Sakura", "Events", "Walk in the park", "Again", "Events", "Cafe date", "Again"):
        tap = player.press(label)
        stub.enqueue(tap)
        await stub.wait_for(lambda tap=tap: stub.answers(tap["callback_query"]["id"]), timeout=15)


async def test_metrics_count_a_real_process_on_their_own_port(stub: TelegramStub, database, admin,
                                                              tmp_path: Path) -> None:
    metrics_port = free_port()
    bot = await start_bot(stub, database, tmp_path, METRICS_PORT=str(metrics_port))
    try:
        await stub.wait_for(lambda: stub.calls_of("getUpdates"), timeout=15)
        await play(stub, 7301)
        status, text = await fetch(f"http://127.0.0.1:{metrics_port}/metrics")
        public_status, _ = await fetch(f"{bot.base}/metrics")
    finally:
        assert await bot.stop() == 0, bot.stderr.decode()[-2000:]
    assert status == 200
    assert public_status == 404  # never on the public web port
    assert not listening(metrics_port)  # closed with the process
    served = [line for line in bot.log_lines() if line.get("msg") == "serving metrics"]
    assert [(line["host"], line["port"]) for line in served] == [("127.0.0.1", metrics_port)]

    found = samples(text)
    assert value(found, "waifu_bot_mode", mode="polling") == 1
    assert value(found, "waifu_bot_mode", mode="webhook") == 0
    assert value(found, "waifu_db_call_seconds_count", function="participate_in_event") == 4
    assert value(found, "waifu_db_call_seconds_count", function="adopt_waifu") == 1
    assert value(found, "waifu_db_errors_total", sqlstate="WF003") == 1
    assert value(found, "waifu_updates_total", type="command", outcome="ok") == 1
    assert value(found, "waifu_updates_total", type="callback", outcome="ok") == 6
    assert value(found, "waifu_updates_total", type="callback", outcome="refused") == 1
    assert value(found, "waifu_telegram_requests_total", method="SendMessage", outcome="ok") >= 1
    assert value(found, "waifu_telegram_requests_total", method="AnswerCallbackQuery", outcome="ok") == 7
    # Every call waited for a connection turn (0 s when one was free) and none is busy now.
    calls = sum(v for (name, _), v in found.items() if name == "waifu_db_call_seconds_count")
    assert value(found, "waifu_db_pool_wait_seconds_count") == calls
    assert value(found, "waifu_db_pool_connections_in_use") == 0
    assert value(found, "waifu_notifier_rows_total", outcome="sent") == 0  # the sender's counters are there

    # Bounded labels, no secrets: no token, no player id in any label.
    assert stub.token not in text and stub.token.split(":")[1] not in text
    for (name, labels), _ in found.items():
        for key, label_value in labels:
            if key in ALLOWED_LABELS:
                assert label_value in ALLOWED_LABELS[key], (name, key, label_value)
            elif key == "sqlstate":
                assert len(label_value) == 5 or label_value == "client"
            elif key == "function":
                assert label_value.isidentifier() and "7301" not in label_value
            elif key == "method":
                assert label_value.isalpha()
            assert "7301" not in label_value


async def test_no_metrics_server_by_default(stub: TelegramStub, database, tmp_path: Path) -> None:
    bot = await start_bot(stub, database, tmp_path)
    try:
        status, _ = await fetch(f"{bot.base}/metrics")
    finally:
        assert await bot.stop() == 0
    assert status == 404
    assert [line for line in bot.log_lines() if line.get("msg") == "serving metrics"] == []
    assert [line for line in bot.log_lines() if line.get("msg") == "serving"]  # the process did start


def test_metrics_port_may_not_be_the_web_port() -> None:
    token = "123456:ABCdef"
    with pytest.raises(ConfigError, match="METRICS_PORT must differ from WEB_PORT"):
        load_settings(_env_file=None, bot_token=token, web_port=8080, metrics_port=8080)
    with pytest.raises(ConfigError, match="METRICS_PORT must be a TCP port"):
        load_settings(_env_file=None, bot_token=token, metrics_port=70000)
    settings = load_settings(_env_file=None, bot_token=token)
    assert settings.metrics_port is None and settings.metrics_host == "127.0.0.1"
    assert load_settings(_env_file=None, bot_token=token, metrics_port=9464).metrics_port == 9464
