"""docker-compose.yml end to end, as an operator runs it: the images `make images` built, a
throwaway project (its own name, ports, volumes), the Telegram stand-in of
tests/compose/docker-compose.dev.yml, and a player driven through the stand-in. `make test-compose`.

Works with Compose v2 (`docker compose`) and 1.29 (`docker-compose`); WAIFU_COMPOSE picks
one. The project is removed with `down -v` at the end, also when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-token_for-the-stand-in"
PLAYER = 4242
DEV_FILE = "tests/compose/docker-compose.dev.yml"  # the stand-in; paths in it are relative to ROOT


def compose_command() -> list[str]:
    if chosen := os.environ.get("WAIFU_COMPOSE"):
        return shlex.split(chosen)
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` (v2) nor `docker-compose` (1.29) is installed: "
                "apt-get install docker-compose, or see https://docs.docker.com/compose/install/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    project: str
    files: list[str]
    env_file: Path
    ports: dict[str, int]
    profile: str | None = None

    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [*compose_command(), "--project-name", self.project, "--env-file", str(self.env_file)]
        for f in self.files:
            command += ["-f", f]
        if self.profile:
            command += ["--profile", self.profile]
        done = subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def psql(self, sql: str, service: str = "db") -> str:
        """As an operator: psql inside the db container (superuser over the local socket)."""
        return self.compose("exec", "-T", service, "psql", "-U", "postgres", "-d", "waifu", "-X", "-A", "-t",
                            "-v", "ON_ERROR_STOP=1", "-c", sql).stdout.strip()

    def containers(self, service: str) -> list[dict[str, Any]]:
        """`docker inspect` of the service's containers, running or exited (by label, as in v1 and v2)."""
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}",
                              "--filter", f"label=com.docker.compose.service={service}"],
                             capture_output=True, text=True, check=True).stdout.split()
        if not ids:
            return []
        out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout
        return list(json.loads(out))

    def http(self, port_name: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[port_name]}{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    # -- the player, through the stand-in ------------------------------------------------------

    def last(self) -> dict[str, Any] | None:
        message: dict[str, Any] | None = self.http("telegram", f"/_control/last/{PLAYER}")
        return message

    def send(self, text: str) -> dict[str, Any]:
        before = self.last()
        self.http("telegram", "/_control/message", {"user_id": PLAYER, "first_name": "Ann", "text": text})
        return self.wait_reply(before)

    def press(self, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Taps a button of the bot's latest message; returns (the message after, the tap's answer)."""
        before = self.last()
        tap = self.http("telegram", "/_control/press", {"user_id": PLAYER, "label": label})
        message = self.wait_reply(before)
        answers = wait_for(lambda: self.http("telegram", f"/_control/answers/{tap['callback_id']}"),
                           what=f"an answer to the tap on {label!r}")
        return message, answers[0]

    def wait_reply(self, before: dict[str, Any] | None) -> dict[str, Any]:
        def changed() -> dict[str, Any] | None:
            now = self.last()
            return now if now is not None and now != before else None
        return wait_for(changed, what="the bot's reply")


def wait_for(probe: Callable[[], Any], *, what: str, timeout: float = 30.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if result := probe():
                return result
        except (OSError, urllib.error.URLError, AssertionError) as e:
            last_error = e
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})")


def healthz(stack: Stack) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports['web']}/healthz", timeout=3) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def health(stack: Stack, service: str) -> str:
    states = [c["State"].get("Health", {}).get("Status", c["State"]["Status"]) for c in stack.containers(service)]
    return states[0] if len(states) == 1 else f"{len(states)} containers"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ports = {"web": free_port(), "db": free_port(), "telegram": free_port()}
    env_file = tmp_path_factory.mktemp("compose") / "env"
    # Its own .env (the operator's .env in the checkout is not read) and its own project name:
    # nothing of a real deployment on this machine is touched.
    env_file.write_text("\n".join([
        f"POSTGRES_PASSWORD={secrets.token_hex(12)}",
        f"BOT_DB_PASSWORD={secrets.token_hex(12)}",
        f"BOT_TOKEN={TOKEN}",
        "TELEGRAM_API_URL=http://telegram:8081",
        f"WEB_PORT={ports['web']}",
        f"DB_PORT={ports['db']}",
        f"TELEGRAM_STANDIN_PORT={ports['telegram']}",
        "NOTIFY_ENABLED=false",
    ]) + "\n")
    s = Stack(f"waifutest{os.getpid()}", ["docker-compose.yml", DEV_FILE], env_file, ports)
    try:
        started = time.monotonic()
        s.compose("up", "-d", "--no-build")
        wait_for(lambda: health(s, "bot") == "healthy", what="the bot's container to be healthy", timeout=180,
                 every=1)
        print(f"\nup to healthy: {time.monotonic() - started:.1f} s")
        yield s
    finally:
        if os.environ.get("WAIFU_COMPOSE_KEEP") != "1":
            s.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
        else:
            print(f"kept: project {s.project}, env file {env_file}")


def test_one_shot_services_exit_0(stack: Stack) -> None:
    for service in ("migrate", "check-config"):
        [state] = [c["State"] for c in stack.containers(service)]
        assert (state["Status"], state["ExitCode"]) == ("exited", 0), service
    logs = stack.compose("logs", "--no-color", "migrate").stdout
    assert "0001" in logs  # it named the migrations it applied


def test_an_empty_token_stops_check_config_with_78(stack: Stack) -> None:
    done = stack.compose("run", "--rm", "--no-deps", "-e", "BOT_TOKEN=", "check-config", check=False)
    assert done.returncode == 78, done.stdout + done.stderr
    assert "BOT_TOKEN" in done.stdout + done.stderr


def test_healthz_and_ports_on_the_loopback_only(stack: Stack) -> None:
    assert healthz(stack)
    for service in ("bot", "db", "telegram"):
        [container] = stack.containers(service)
        bindings = [b for ports in container["NetworkSettings"]["Ports"].values() for b in ports or []]
        assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}, (service, bindings)


def test_the_bot_runs_as_non_root_without_the_superuser_password(stack: Stack) -> None:
    assert stack.compose("exec", "-T", "bot", "id", "-u").stdout.strip() == "10001"
    [bot] = stack.containers("bot")
    password = dict(line.split("=", 1) for line in stack.env_file.read_text().split())["POSTGRES_PASSWORD"]
    assert password not in json.dumps(bot["Config"])
    assert not [e for e in bot["Config"]["Env"] if e.startswith(("POSTGRES_", "MIGRATION_"))]
    # Nor a wheel of the build's wheelhouse, nor pip: only the installed packages.
    leftovers = stack.compose("exec", "-T", "bot", "sh", "-c",
                              "find / -xdev \\( -name '*.whl' -o -name 'pip' \\) -print 2>/dev/null; true").stdout
    assert leftovers.strip() == ""


def test_a_player_plays_through_the_stand_in(stack: Stack) -> None:
    welcome = stack.send("/start")
    assert welcome["text"].startswith("Welcome, Ann!")
    menu, answer = stack.press("Sakura")
    assert "Sakura is now your companion" in menu["text"]
    assert answer.get("text") == "Welcome home, Sakura!"
    events, _ = stack.press("Events")
    assert "Walk in the park" in events["text"]
    result, answer = stack.press("Walk in the park")
    assert result["text"].startswith("✅ Sakura: Walk in the park")
    assert answer.get("text") == "+15 XP"
    assert stack.send("/start")["text"] == "Hi, Ann! What shall we do?"
    card, _ = stack.press("Stats")
    # her card: a photo, the stats in its caption
    assert card["photo"] and "Sakura · level" in card["caption"] and "90/100" in card["caption"]
    assert stack.psql(f"SELECT count(*) FROM game.participations WHERE telegram_id = {PLAYER}") == "1"
    assert stack.psql(f"SELECT dynamic->>'energy' FROM game.waifus WHERE owner_id = {PLAYER}") == "90"


def test_pg_cron_restores_energy_inside_the_db_container(stack: Stack) -> None:
    waifu = f"(SELECT id FROM game.waifus WHERE owner_id = {PLAYER})"
    # Stored energy 95 on a clock 10.5 minutes behind: at the cap for 5.5 minutes, so the next
    # tick (every minute) finds her and stages her "she is rested". Written behind the tick's
    # back, then the operator's way to have the next ticks look again (README, "Operators in psql").
    found = int(stack.psql("SELECT filled_total FROM game.tick_state"))
    stack.psql("UPDATE game.waifus SET dynamic = dynamic || jsonb_build_object('energy', 95, "
               f"'last_restore', extract(epoch FROM now()) - 630) WHERE id = {waifu}")
    stack.psql("SELECT ops.reset_tick(now() - interval '1 hour')")
    wait_for(lambda: int(stack.psql("SELECT filled_total FROM game.tick_state")) > found,
             what="pg_cron's tick to find her at the cap", timeout=90, every=2)
    assert stack.psql(f"SELECT api.waifu_stats({waifu}) ->> 'energy'") == "100"
    job = stack.psql("SELECT last_status || ' ' || health FROM ops.cron_jobs WHERE jobname = 'restore-energy'")
    assert job == "succeeded ok"


def test_an_operator_reads_ops_overview(stack: Stack) -> None:
    out = stack.compose("exec", "-T", "db", "psql", "-U", "postgres", "waifu",
                        "-c", "select * from ops.overview").stdout
    assert "players" in out and "waifus" in out and "(1 row)" in out


def test_restarts_lose_nothing(stack: Stack) -> None:
    state = ("SELECT p.telegram_id, w.template_code, w.dynamic - 'last_restore' - 'energy', "
             f"(SELECT count(*) FROM game.participations WHERE telegram_id = {PLAYER}) "
             f"FROM game.players p JOIN game.waifus w ON w.owner_id = p.telegram_id WHERE p.telegram_id = {PLAYER}")
    before = stack.psql(state)
    assert before
    stack.compose("restart", "db")
    wait_for(lambda: health(stack, "db") == "healthy", what="db healthy after its restart", timeout=60, every=1)
    stack.compose("restart", "bot")
    wait_for(lambda: health(stack, "bot") == "healthy", what="bot healthy after its restart", timeout=120,
             every=1)
    assert stack.psql(state) == before
    assert stack.send("/start")["text"] == "Hi, Ann! What shall we do?"  # the bot polls and answers again


def test_a_missing_env_value_is_named_before_anything_starts(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text(f"BOT_TOKEN={TOKEN}\nBOT_DB_PASSWORD=x\n")  # no POSTGRES_PASSWORD
    s = Stack(f"waifuempty{os.getpid()}", ["docker-compose.yml"], env_file, {})
    done = s.compose("config", check=False)
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr
    assert not s.containers("db")
