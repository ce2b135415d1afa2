"""Integrity soak (issue 7): hostile load on the real stack, then proof that nothing was
lost and nothing applied twice.

    .venv/bin/python -m tests.benchmarks.soak_integrity [--seconds 60] [--connections 100] [--quick]
        [--players 2000] [--hot 10] [--no-restart] [--keep]

What runs, all at once, through bot.game.Game as the bot's role (waifu_bot, so on the
server's real clock: the bot cannot pass `now`):
- `--connections` callers on a pool of as many connections; half of the calls go to
  `--hot` players (the same few rows, locked again and again), the rest to cold ones;
- participations in events that cost 1-10 energy, move mood up and loyalty down (so the
  0..100 clamps are hit), some with a cooldown (refusals are expected and counted);
- duplicate keys: a replay of an applied key (must answer `replayed` with the recorded
  changes), and double taps (two concurrent calls with one new key: one applies);
- adoptions again with a new key (must be refused, WF008) and with the old key (same id);
- a restore tick every 50 ms (api.restore_energy as superuser, default now), with every
  waifu's energy clock started up to five minutes back, so the ticks restore energy all
  through the soak while the callers spend it;
- a server restart in the middle (pg_ctl fast stop, start), on the soak's own throwaway
  cluster; every call that ends GameUnavailable is retried with its key afterwards;
- issue 19 (0013): events pay coins; purchases (new keys, replays, double taps, more than
  the wallet holds), gifts from the inventory to one's own waifu and, in the player's group,
  to another member's (cooldowns and empty inventories refused), and group events: every
  group opted in, pg_cron's job function game.group_events_job() run every second, members
  joining (twice, concurrently), and every event paid at the end.

Then, from the database: no request key twice in the ledger; every call acknowledged as
applied is in the ledger and nothing else is; for every waifu, XP, mood and loyalty equal
what the ledger says (start + sum of recorded changes), energy within 0..100 and no
more regained than one point a minute since her clock started; one waifu per template per player;
every acknowledged purchase, gift and group-event join recorded once and nothing else;
every wallet equal to its coin ledger (and each ledger row's balance to the one before plus
its delta); every inventory equal to its purchases less its gifts; every paid group event
shared exactly its pool among its participants. Gifts count in the stat check (mood,
loyalty and energy as applied).
Prints a table and writes bench-results/soak_integrity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bot import game as g
from db import localdb
from tests.benchmarks.common import (
    Metric,
    add_database_args,
    bench_database,
    info,
    machine_load,
    parse_settings,
    report,
    server_settings,
    target_at_least,
    target_at_most,
)

NAME = "soak_integrity"
CLUSTER = "soak-integrity"
TEMPLATES = ("sakura", "yuki", "akane", "hana", "rin")
START = {"xp": 0, "mood": 50, "loyalty": 50}  # energy and its clock: see age_clocks
# (code, title, cost, xp, mood, loyalty, cooldown): cheap enough that energy lasts, mood
# pushed up and loyalty down so both clamps are reached; one with a cooldown.
EVENTS = [
    ("soak_tap", "Soak tap", 1, 3, 2, -1, "0"),
    ("soak_chat", "Soak chat", 2, 5, 3, -2, "0"),
    ("soak_walk", "Soak walk", 10, 15, -4, 1, "0"),
    ("soak_gift", "Soak gift", 5, 10, 10, 5, "30 seconds"),
]
EVENT_WEIGHTS = [50, 25, 15, 10]
EVENT_COINS = {"soak_tap": 1, "soak_chat": 2, "soak_walk": 5, "soak_gift": 3}
TICK_SECONDS = 0.05
START_COINS = 50  # ops.adjust_coins at the start: the ledger holds it like every other change
ITEMS = ("flowers", "chocolate", "teddy")
GROUPS = 10  # player p is a member of group GROUP_BASE - p % GROUPS
GROUP_BASE = -1_000_000


@dataclass
class Waifu:
    id: int
    owner: int
    template: str
    adopt_key: str


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)  # by kind of call
    outcomes: Counter[str] = field(default_factory=Counter)  # applied, replayed, refused:<code>, unavailable
    unavailable_causes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)  # anything that is neither a result nor a GameError
    replay_mismatches: list[str] = field(default_factory=list)
    double_tap_both_applied: int = 0
    adopt_limit_breaches: list[str] = field(default_factory=list)
    double_buys_both_applied: int = 0
    double_joins_both_new: int = 0
    group_job_runs: int = 0
    ticks: int = 0
    tick_rows: int = 0
    tick_errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


class Soak:
    def __init__(self, game: g.Game, waifus: list[Waifu], hot: list[Waifu], seed: int) -> None:
        self.game = game
        self.waifus = waifus
        self.hot = hot
        self.cold = [w for w in waifus if w not in hot]
        self.rng = random.Random(seed)
        self.stats = Stats()
        # request key -> ("applied", changes) | ("refused", code); the final word on each key.
        self.acked: dict[tuple[int, str], tuple[str, Any]] = {}
        self.applied_keys: list[tuple[Waifu, str, str]] = []  # (waifu, event, key) for replays
        self.unavailable: list[tuple[Waifu, str, str]] = []  # to retry with the same key
        self.stop = asyncio.Event()
        self._keys = 0
        # 0013: purchases and gifts by (player, key) -> ("applied", what) | ("refused", code);
        # joins by (event, player); the open event of each group, as the job opened it.
        self.buys: dict[tuple[int, str], tuple[str, Any]] = {}
        self.gifts: dict[tuple[int, str], tuple[str, Any]] = {}
        self.joins: set[tuple[int, int]] = set()
        self.open_events: dict[int, int] = {}
        self.by_group: dict[int, list[Waifu]] = {}
        for w in waifus:
            self.by_group.setdefault(GROUP_BASE - w.owner % GROUPS, []).append(w)
        self.unavailable_shop: list[tuple[str, tuple[Any, ...]]] = []

    def new_key(self, prefix: str = "k") -> str:
        self._keys += 1
        return f"{prefix}{self._keys:08d}"

    def pick(self) -> Waifu:
        pool = self.hot if self.hot and self.rng.random() < 0.5 else self.cold
        return self.rng.choice(pool)

    def event(self) -> str:
        return self.rng.choices([e[0] for e in EVENTS], EVENT_WEIGHTS)[0]

    async def participate(self, w: Waifu, event: str, key: str, kind: str) -> dict[str, Any] | None:
        """One call; records its outcome. None if refused or unavailable."""
        self.stats.calls[kind] += 1
        started = time.perf_counter()
        try:
            result = await self.game.participate(w.owner, w.id, event, key)
        except g.GameUnavailable as exc:
            self.stats.outcomes["unavailable"] += 1
            self.stats.unavailable_causes[type(exc.__cause__).__name__ if exc.__cause__ else "-"] += 1
            self.unavailable.append((w, event, key))
            return None
        except g.GameError as exc:
            self.stats.outcomes[f"refused:{exc.code}"] += 1
            self.acked.setdefault((w.owner, key), ("refused", exc.code))
            return None
        except Exception as exc:  # noqa: BLE001 - a fault of the edge: reported, never hidden
            self.stats.unexpected.append(f"{type(exc).__name__}: {exc}"[:300])
            return None
        finally:
            self.stats.latencies.append(time.perf_counter() - started)
        changes = {k: result["changes"][k] for k in ("energy", "xp", "mood", "loyalty")}
        if result["replayed"]:
            self.stats.outcomes["replayed"] += 1
        else:
            self.stats.outcomes["applied"] += 1
        previous = self.acked.get((w.owner, key))
        if previous is not None and previous[0] == "applied" and previous[1] != changes:
            self.stats.replay_mismatches.append(f"{key}: {previous[1]} then {changes}")
        self.acked[(w.owner, key)] = ("applied", changes)
        if not result["replayed"]:
            self.applied_keys.append((w, event, key))
        return result

    async def worker(self) -> None:
        while not self.stop.is_set():
            roll = self.rng.random()
            w = self.pick()
            if roll < 0.70:
                await self.participate(w, self.event(), self.new_key(), "participate")
            elif roll < 0.80 and self.applied_keys:
                rw, event, key = self.rng.choice(self.applied_keys)
                result = await self.participate(rw, event, key, "replay")
                if result is not None and not result["replayed"]:
                    self.stats.replay_mismatches.append(f"{key}: applied again")
            elif roll < 0.85:
                key, event = self.new_key("d"), self.event()
                results = await asyncio.gather(self.participate(w, event, key, "double_tap"),
                                               self.participate(w, event, key, "double_tap"))
                if all(r is not None and not r["replayed"] for r in results):
                    self.stats.double_tap_both_applied += 1
            elif roll < 0.87:
                await self.adopt_again(w)
            elif roll < 0.97:  # 0013: the shop, gifts, group events
                await self.shop_call(w)
            else:
                self.stats.calls["read"] += 1
                try:
                    await self.game.player_profile(w.owner)
                    self.stats.outcomes["read"] += 1
                except g.GameUnavailable:
                    self.stats.outcomes["unavailable"] += 1
                except g.GameError as exc:
                    self.stats.outcomes[f"refused:{exc.code}"] += 1
                except Exception as exc:  # noqa: BLE001
                    self.stats.unexpected.append(f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(0)

    async def buy(self, owner: int, item: str, key: str, quantity: int, kind: str) -> dict[str, Any] | None:
        self.stats.calls[kind] += 1
        try:
            result = await self.game.buy_item(owner, item, key, quantity)
        except g.GameUnavailable:
            self.stats.outcomes["unavailable"] += 1
            self.unavailable_shop.append(("buy", (owner, item, key, quantity)))
            return None
        except g.GameError as exc:
            self.stats.outcomes[f"refused:{exc.code}"] += 1
            self.buys.setdefault((owner, key), ("refused", exc.code))
            return None
        except Exception as exc:  # noqa: BLE001
            self.stats.unexpected.append(f"buy: {type(exc).__name__}: {exc}"[:300])
            return None
        self.stats.outcomes["buy_replayed" if result["replayed"] else "buy_applied"] += 1
        what = (item, quantity, result["coins_spent"])
        previous = self.buys.get((owner, key))
        if previous is not None and previous[0] == "applied" and previous[1] != what:
            self.stats.replay_mismatches.append(f"buy {key}: {previous[1]} then {what}")
        self.buys[(owner, key)] = ("applied", what)
        return result

    async def gift(self, giver: int, target: Waifu, item: str, key: str, chat_id: int | None,
                   kind: str) -> dict[str, Any] | None:
        self.stats.calls[kind] += 1
        try:
            result = await self.game.give_gift(giver, target.id, item, key, chat_id)
        except g.GameUnavailable:
            self.stats.outcomes["unavailable"] += 1
            self.unavailable_shop.append(("gift", (giver, target, item, key, chat_id)))
            return None
        except g.GameError as exc:
            self.stats.outcomes[f"refused:{exc.code}"] += 1
            self.gifts.setdefault((giver, key), ("refused", exc.code))
            return None
        except Exception as exc:  # noqa: BLE001
            self.stats.unexpected.append(f"gift: {type(exc).__name__}: {exc}"[:300])
            return None
        self.stats.outcomes["gift_replayed" if result["replayed"] else "gift_applied"] += 1
        what = (target.id, item, result["changes"])
        previous = self.gifts.get((giver, key))
        if previous is not None and previous[0] == "applied" and previous[1] != what:
            self.stats.replay_mismatches.append(f"gift {key}: {previous[1]} then {what}")
        self.gifts[(giver, key)] = ("applied", what)
        return result

    async def join(self, owner: int, event_id: int, kind: str) -> dict[str, Any] | None:
        self.stats.calls[kind] += 1
        try:
            result = await self.game.join_group_event(owner, event_id)
        except g.GameUnavailable:
            self.stats.outcomes["unavailable"] += 1
            self.unavailable_shop.append(("join", (owner, event_id)))
            return None
        except g.GameError as exc:
            self.stats.outcomes[f"refused:{exc.code}"] += 1
            return None
        except Exception as exc:  # noqa: BLE001
            self.stats.unexpected.append(f"join: {type(exc).__name__}: {exc}"[:300])
            return None
        self.stats.outcomes["join_replayed" if result["replayed"] else "join_applied"] += 1
        self.joins.add((event_id, owner))
        return result

    async def shop_call(self, w: Waifu) -> None:
        """A purchase (sometimes a replay or a double tap), a gift, or joining the group's event."""
        roll = self.rng.random()
        group = GROUP_BASE - w.owner % GROUPS
        if roll < 0.35:
            key, item, quantity = self.new_key("b"), self.rng.choice(ITEMS), self.rng.choice((1, 1, 2))
            if self.rng.random() < 0.2:
                results = await asyncio.gather(self.buy(w.owner, item, key, quantity, "buy_double_tap"),
                                               self.buy(w.owner, item, key, quantity, "buy_double_tap"))
                if all(r is not None and not r["replayed"] for r in results):
                    self.stats.double_buys_both_applied += 1
            else:
                await self.buy(w.owner, item, key, quantity, "buy")
        elif roll < 0.45:
            applied = [k for k, (word, _) in self.buys.items() if word == "applied"]
            if applied:
                owner, key = self.rng.choice(applied)
                item, quantity, _ = self.buys[(owner, key)][1]
                result = await self.buy(owner, item, key, quantity, "buy_replay")
                if result is not None and not result["replayed"]:
                    self.stats.replay_mismatches.append(f"buy {key}: applied again")
        elif roll < 0.8:
            item = self.rng.choice(ITEMS)
            if self.rng.random() < 0.5:
                await self.gift(w.owner, w, item, self.new_key("g"), None, "gift_own")
            else:
                target = self.rng.choice(self.by_group[group])
                await self.gift(w.owner, target, item, self.new_key("g"), group, "gift_other")
        else:
            event_id = self.open_events.get(group)
            if event_id is not None:
                results = await asyncio.gather(self.join(w.owner, event_id, "join"),
                                               self.join(w.owner, event_id, "join"))
                if all(r is not None and not r["replayed"] for r in results):
                    self.stats.double_joins_both_new += 1

    async def group_ticker(self, admin_url: str) -> None:
        """pg_cron's group-events job function every second (as the superuser), and the open
        event of every group for the callers."""
        conn: asyncpg.Connection | None = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(admin_url, timeout=2)
                await conn.fetchval("SELECT game.group_events_job()")
                self.stats.group_job_runs += 1
                self.open_events = {r["chat_id"]: r["id"] for r in await conn.fetch(
                    "SELECT chat_id, id FROM game.group_events WHERE paid_at IS NULL")}
            except Exception as exc:  # noqa: BLE001 - the restart
                self.stats.tick_errors[f"group job: {type(exc).__name__}"] += 1
                if conn is not None:
                    conn.terminate()
                conn = None
            await asyncio.sleep(1.0)
        if conn is not None:
            await conn.close()

    async def retry_shop(self, deadline_seconds: float = 60.0) -> None:
        """Retry every purchase, gift and join that ended unavailable, with its key."""
        deadline = time.monotonic() + deadline_seconds
        while self.unavailable_shop and time.monotonic() < deadline:
            batch, self.unavailable_shop = self.unavailable_shop, []
            for what, args in batch:
                if what == "buy":
                    await self.buy(*args, "retry")
                elif what == "gift":
                    await self.gift(*args, "retry")
                else:
                    await self.join(*args, "retry")
            if self.unavailable_shop:
                await asyncio.sleep(0.5)

    async def adopt_again(self, w: Waifu) -> None:
        """The same template with a new key must be refused; with the old key, the same id."""
        self.stats.calls["adopt"] += 1
        try:
            again = await self.game.adopt_waifu(w.owner, w.template, self.new_key("a"))
            self.stats.adopt_limit_breaches.append(f"player {w.owner} got a second {w.template}: {again}")
        except g.LimitReached:
            self.stats.outcomes["refused:limit_reached"] += 1
        except g.GameUnavailable:
            self.stats.outcomes["unavailable"] += 1
        except Exception as exc:  # noqa: BLE001
            self.stats.unexpected.append(f"adopt: {type(exc).__name__}: {exc}"[:300])
        self.stats.calls["adopt_replay"] += 1
        try:
            same = await self.game.adopt_waifu(w.owner, w.template, w.adopt_key)
            if same != w.id:
                self.stats.adopt_limit_breaches.append(f"replayed adoption {w.adopt_key} gave {same}, not {w.id}")
            self.stats.outcomes["adopt_replayed"] += 1
        except g.GameUnavailable:
            self.stats.outcomes["unavailable"] += 1
        except Exception as exc:  # noqa: BLE001
            self.stats.unexpected.append(f"adopt replay: {type(exc).__name__}: {exc}"[:300])

    async def ticker(self, admin_url: str) -> None:
        """api.restore_energy() every 50 ms as the superuser, on the server's clock."""
        conn: asyncpg.Connection | None = None
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(admin_url, timeout=2)
                self.stats.tick_rows += await conn.fetchval("SELECT api.restore_energy()")
                self.stats.ticks += 1
            except Exception as exc:  # noqa: BLE001 - the restart: counted, reconnect (asyncpg's
                # InternalClientError "cannot switch to state 12" is one of these)
                self.stats.tick_errors[type(exc).__name__] += 1
                if conn is not None:
                    conn.terminate()
                conn = None
            await asyncio.sleep(max(0.0, TICK_SECONDS - (time.monotonic() - started)))
        if conn is not None:
            await conn.close()

    async def retry_unavailable(self, deadline_seconds: float = 60.0) -> int:
        """Retry every call that ended unavailable, with its key, until it answers."""
        deadline = time.monotonic() + deadline_seconds
        retried = 0
        while self.unavailable and time.monotonic() < deadline:
            batch, self.unavailable = self.unavailable, []
            for w, event, key in batch:
                retried += 1
                await self.participate(w, event, key, "retry")
            if self.unavailable:
                await asyncio.sleep(0.5)
        return retried


async def setup_players(admin_url: str, game: g.Game, players: int, hot: int) -> tuple[list[Waifu], list[Waifu]]:
    admin = await asyncpg.connect(admin_url)
    try:
        for code, title, cost, xp, mood, loyalty, cooldown in EVENTS:
            await admin.execute("SELECT ops.create_event($1, $2, $3, $4, $5, $6, $7::text::interval, NULL, NULL)",
                                code, title, cost, xp, mood, loyalty, cooldown)
            await admin.execute("SELECT ops.set_event_coins($1, $2)", code, EVENT_COINS[code])
        # Group events: a minute to join, the smallest window there is; the soak pays them at its end.
        await admin.execute("SELECT ops.set_economy(group_event_window => '1 minute', group_event_every => "
                            "'15 minutes', group_event_pool => 101)")
    finally:
        await admin.close()
    waifus: list[Waifu] = []
    hot_waifus: list[Waifu] = []

    async def one(player: int) -> None:
        await game.register_player(player, f"p{player}", f"Player {player}", "en")
        count = 2 if player % 3 == 0 else 1
        for template in TEMPLATES[player % 5: player % 5 + count] or TEMPLATES[:count]:
            key = f"adopt-{player}-{template}"
            w = Waifu(await game.adopt_waifu(player, template, key), player, template, key)
            waifus.append(w)
            if player <= hot:
                hot_waifus.append(w)

    for start in range(1, players + 1, 100):
        await asyncio.gather(*(one(p) for p in range(start, min(start + 100, players + 1))))

    async def member(player: int) -> None:
        group = GROUP_BASE - player % GROUPS
        await game.register_group_member(group, player, f"Soak {player % GROUPS}")
        if player <= GROUPS:  # one admin per group turns its events on
            await game.set_group_events(group, player, True, True)

    for start in range(1, players + 1, 100):
        await asyncio.gather(*(member(p) for p in range(start, min(start + 100, players + 1))))
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute("SELECT ops.adjust_coins(p, $1, 'soak start') FROM generate_series(1, $2) AS p",
                            START_COINS, players)
        await admin.execute("UPDATE game.groups SET next_event_at = now()")  # the first events open at once
    finally:
        await admin.close()
    return waifus, hot_waifus


async def age_clocks(admin_url: str, seed: int) -> dict[int, tuple[int, float]]:
    """Every waifu starts somewhere between empty and full with her energy clock started
    up to five minutes ago, so the 50 ms ticks restore energy all through the soak (while
    the callers spend it), and the check "no more than a point a minute" stays tight.
    Returns {waifu id: (energy, clock as epoch seconds)} at the start."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute("SELECT setseed($1)", (seed % 1000) / 1000)
        rows = await admin.fetch("""
            UPDATE game.waifus AS w
            SET dynamic = w.dynamic || jsonb_build_object(
                'energy', floor(random() * (game.max_energy() + 1))::int,
                'last_restore', extract(epoch FROM now()) - round((random() * 300)::numeric, 6))
            RETURNING w.id, (w.dynamic ->> 'energy')::int AS energy, (w.dynamic ->> 'last_restore')::float8 AS clock""")
        await admin.fetchval("SELECT ops.reset_tick(now() - interval '1 hour')")  # clocks written by hand
    finally:
        await admin.close()
    return {r["id"]: (r["energy"], r["clock"]) for r in rows}


async def verify(admin_url: str, soak: Soak, start: dict[int, tuple[int, float]]) -> dict[str, Any]:
    admin = await asyncpg.connect(admin_url)
    try:
        doubles = await admin.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM game.participations GROUP BY telegram_id, request_key "
            "HAVING count(*) > 1) AS d")
        ledger_keys = {(r["telegram_id"], r["request_key"]) for r in await admin.fetch(
            "SELECT telegram_id, request_key FROM game.participations")}
        sums = {r["waifu_id"]: r for r in await admin.fetch(
            "SELECT waifu_id, count(*) AS n, sum(xp_gained) AS xp, sum(mood_change) AS mood, "
            "sum(loyalty_change) AS loyalty, sum(energy_spent) AS spent FROM game.participations GROUP BY 1")}
        rows = await admin.fetch(
            "SELECT id, owner_id, template_code, (dynamic ->> 'xp')::bigint AS xp, "
            "(dynamic ->> 'energy')::int AS energy, (dynamic ->> 'mood')::int AS mood, "
            "(dynamic ->> 'loyalty')::int AS loyalty, "
            "extract(epoch FROM now())::float8 AS now FROM game.waifus")
        per_template = await admin.fetchval(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM game.waifus "
            "GROUP BY owner_id, template_code) AS t")
        # 0013: gifts as applied to each waifu; the shop's and the groups' records; coins.
        gift_sums = {r["waifu_id"]: r for r in await admin.fetch(
            "SELECT waifu_id, sum(mood_change) AS mood, sum(loyalty_change) AS loyalty, "
            "sum(energy_change) AS energy FROM game.gifts GROUP BY 1")}
        purchase_keys = {(r["telegram_id"], r["request_key"]) for r in await admin.fetch(
            "SELECT telegram_id, request_key FROM game.purchases")}
        gift_keys = {(r["giver_id"], r["request_key"]) for r in await admin.fetch(
            "SELECT giver_id, request_key FROM game.gifts")}
        joined = {(r["event_id"], r["telegram_id"]) for r in await admin.fetch(
            "SELECT event_id, telegram_id FROM game.group_event_participants")}
        wallets_off_ledger = await admin.fetchval("""
            SELECT count(*) FROM game.wallets AS w
            WHERE w.coins <> coalesce((SELECT sum(l.delta) FROM game.coin_ledger AS l
                                       WHERE l.telegram_id = w.telegram_id), 0)""")
        ledger_chain_breaks = await admin.fetchval("""
            SELECT count(*) FROM (SELECT l.balance - l.delta AS before,
                                         coalesce(lag(l.balance) OVER (PARTITION BY l.telegram_id ORDER BY l.id), 0)
                                             AS previous
                                  FROM game.coin_ledger AS l) AS x
            WHERE x.before <> x.previous""")
        inventory_mismatches = await admin.fetchval("""
            WITH bought AS (SELECT telegram_id, item_code, sum(quantity) AS n FROM game.purchases GROUP BY 1, 2),
                 given AS (SELECT giver_id AS telegram_id, item_code, count(*) AS n FROM game.gifts GROUP BY 1, 2)
            SELECT count(*) FROM bought AS b
            FULL JOIN game.inventory AS i USING (telegram_id, item_code)
            LEFT JOIN given AS g USING (telegram_id, item_code)
            WHERE coalesce(i.quantity, 0) <> coalesce(b.n, 0) - coalesce(g.n, 0)""")
        events = await admin.fetchrow("""
            SELECT count(*) AS events, count(*) FILTER (WHERE e.paid_at IS NULL AND e.closes_at <= now()) AS unpaid,
                   count(*) FILTER (WHERE e.participants > 0) AS with_members,
                   count(*) FILTER (WHERE e.participants <> (SELECT count(*) FROM game.group_event_participants AS x
                                                             WHERE x.event_id = e.id)) AS miscounted,
                   count(*) FILTER (WHERE e.paid_at IS NOT NULL AND e.participants > 0
                                    AND e.pool <> (SELECT sum(x.coins) FROM game.group_event_participants AS x
                                                   WHERE x.event_id = e.id)) AS pool_not_shared
            FROM game.group_events AS e""")
        group_coins = await admin.fetchrow("""
            SELECT (SELECT coalesce(sum(delta), 0) FROM game.coin_ledger WHERE reason = 'group_event') AS ledger,
                   (SELECT coalesce(sum(coins), 0) FROM game.group_event_participants) AS shares,
                   (SELECT coalesce(sum(coins), 0) FROM game.wallets) AS held,
                   (SELECT count(*) FROM game.coin_ledger) AS rows""")
    finally:
        await admin.close()
    applied = {k for k, (word, _) in soak.acked.items() if word == "applied"}
    bought_acked = {k for k, (word, _) in soak.buys.items() if word == "applied"}
    gifts_acked = {k for k, (word, _) in soak.gifts.items() if word == "applied"}
    lost = applied - ledger_keys  # acknowledged as applied, not in the ledger
    unaccounted = ledger_keys - applied  # in the ledger, but the caller was told otherwise
    stat_mismatches: list[str] = []
    energy_out_of_bounds: list[str] = []
    regained_total = 0
    for r in rows:
        s = sums.get(r["id"])
        n, xp, mood, loyalty, spent = (s["n"], s["xp"], s["mood"], s["loyalty"], s["spent"]) if s else (0, 0, 0, 0, 0)
        gs = gift_sums.get(r["id"])
        g_mood, g_loyalty, g_energy = (gs["mood"], gs["loyalty"], gs["energy"]) if gs else (0, 0, 0)
        expected = (START["xp"] + xp, START["mood"] + mood + g_mood, START["loyalty"] + loyalty + g_loyalty)
        if (r["xp"], r["mood"], r["loyalty"]) != expected:
            stat_mismatches.append(f"waifu {r['id']}: stored xp/mood/loyalty {(r['xp'], r['mood'], r['loyalty'])}, "
                                   f"ledger says {expected} ({n} rows)")
        # Energy: never outside 0..max, and never more regained than one point a minute
        # since her clock's start (stored energy may lag the effective by < 50 ms of ticks).
        start_energy, start_clock = start[r["id"]]
        regained = r["energy"] - (start_energy - spent + g_energy)
        minutes = math.floor((r["now"] - start_clock) / 60)
        if not 0 <= r["energy"] <= 100 or not 0 <= regained <= minutes:
            energy_out_of_bounds.append(f"waifu {r['id']}: energy {start_energy} -> {r['energy']}, spent {spent}, "
                                        f"regained {regained} in {minutes} min")
        regained_total += max(regained, 0)
    return {
        "ledger_rows": len(ledger_keys), "double_applied": doubles, "lost": sorted(lost)[:10], "lost_count": len(lost),
        "unaccounted": sorted(unaccounted)[:10], "unaccounted_count": len(unaccounted),
        "stat_mismatches": stat_mismatches[:10], "stat_mismatch_count": len(stat_mismatches),
        "energy_out_of_bounds": energy_out_of_bounds[:10], "energy_out_of_bounds_count": len(energy_out_of_bounds),
        "waifus": len(rows), "max_waifus_per_template": per_template, "energy_regained": regained_total,
        # 0013
        "purchases": len(purchase_keys), "gifts": len(gift_keys), "joins": len(joined),
        "purchases_lost": len(bought_acked - purchase_keys), "purchases_unaccounted": len(purchase_keys - bought_acked),
        "gifts_lost": len(gifts_acked - gift_keys), "gifts_unaccounted": len(gift_keys - gifts_acked),
        "joins_lost": len(soak.joins - joined), "joins_unaccounted": len(joined - soak.joins),
        "wallets_off_ledger": wallets_off_ledger, "ledger_chain_breaks": ledger_chain_breaks,
        "inventory_mismatches": inventory_mismatches, "group_events": dict(events), "group_coins": dict(group_coins),
    }


async def run(args: argparse.Namespace) -> int:
    settings = parse_settings(args.settings)
    with bench_database(CLUSTER, args.database_url, args.bot_database_url, args.keep, settings) as db:
        cluster = None if args.database_url else localdb.cluster(CLUSTER)
        server = await server_settings(db.admin_url)
        game = await g.Game.connect(db.bot_url, min_size=args.connections, max_size=args.connections)
        try:
            waifus, hot = await setup_players(db.admin_url, game, args.players, args.hot)
            start = await age_clocks(db.admin_url, args.seed)
            soak = Soak(game, waifus, hot, args.seed)
            started = time.monotonic()
            tasks = [asyncio.create_task(soak.worker()) for _ in range(args.connections)]
            ticker = asyncio.create_task(soak.ticker(db.admin_url))
            group_ticker = asyncio.create_task(soak.group_ticker(db.admin_url))
            restart: dict[str, Any] = {"done": False}
            loop = asyncio.get_running_loop()
            await asyncio.sleep(args.seconds / 2)
            if cluster is not None and not args.no_restart:
                calls_before = sum(soak.stats.calls.values())
                down = time.monotonic()
                await loop.run_in_executor(None, cluster.stop)
                await asyncio.sleep(0.5)
                await loop.run_in_executor(None, cluster.start)
                restart = {"done": True, "at_seconds": round(down - started, 1),
                           "stop_start_seconds": round(time.monotonic() - down, 2), "calls_before": calls_before}
                print(f"server restarted after {restart['at_seconds']} s "
                      f"(stop + start {restart['stop_start_seconds']} s)", file=sys.stderr)
            await asyncio.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
            soak.stop.set()
            await asyncio.gather(*tasks, ticker, group_ticker)
            elapsed = time.monotonic() - started
            unavailable_first = len(soak.unavailable)
            retried = await soak.retry_unavailable()
            await soak.retry_shop()
            # The events still open close within their minute: pay them all now, twice (the
            # second pays nothing: each event is paid once).
            admin = await asyncpg.connect(db.admin_url)
            try:
                payouts = [dict(await admin.fetchrow(
                    "SELECT * FROM game.group_events_step(now() + make_interval(mins => $1))", m)) for m in (2, 3)]
            finally:
                await admin.close()
        finally:
            await game.close()
        proof = await verify(db.admin_url, soak, start)

    st = soak.stats
    total_calls = sum(st.calls.values())
    lat = sorted(st.latencies)

    def p(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0.0

    refusals = {k.split(":", 1)[1]: v for k, v in st.outcomes.items() if k.startswith("refused:")}
    metrics: list[Metric] = [
        info("duration", round(elapsed, 1), "s"),
        info("connections", args.connections),
        info("players (hot)", f"{args.players} ({args.hot})"),
        info("waifus", proof["waifus"]),
        info("calls", total_calls, note=", ".join(f"{k} {v}" for k, v in sorted(st.calls.items()))),
        info("calls per second", round(total_calls / elapsed, 1), "/s"),
        info("p50 / p99 latency", f"{p(0.5):.1f} / {p(0.99):.1f}", "ms"),
        info("applied", st.outcomes["applied"]),
        info("replayed", st.outcomes["replayed"], note="replays of applied keys, double taps, retries"),
        info("refused", sum(refusals.values()), note=", ".join(f"{k} {v}" for k, v in sorted(refusals.items()))),
        info("unavailable", st.outcomes["unavailable"],
             note=", ".join(f"{k} {v}" for k, v in st.unavailable_causes.most_common())),
        info("unavailable calls retried", retried, note=f"{unavailable_first} after the load, then until answered"),
        info("restore ticks", st.ticks, note=f"{st.tick_rows} waifus found at the cap, "
             f"{proof['energy_regained']} energy regained in all; errors: {dict(st.tick_errors)}"),
        info("server restart", "yes" if restart["done"] else "no",
             note=f"after {restart.get('at_seconds')} s, stop+start {restart.get('stop_start_seconds')} s"
             if restart["done"] else ""),
        info("ledger rows", proof["ledger_rows"]),
        target_at_most("unexpected errors", len(st.unexpected), 0, note="; ".join(st.unexpected[:3])),
        target_at_most("calls still unavailable after retrying", len(soak.unavailable), 0),
        target_at_most("lost (acknowledged, not in ledger)", proof["lost_count"], 0),
        target_at_most("unaccounted (in ledger, not acknowledged)", proof["unaccounted_count"], 0),
        target_at_most("double-applied keys", proof["double_applied"], 0),
        target_at_most("double taps applied twice", st.double_tap_both_applied, 0),
        target_at_most("replays that differ or re-apply", len(st.replay_mismatches), 0,
                       note="; ".join(st.replay_mismatches[:3])),
        target_at_most("xp/mood/loyalty != ledger", proof["stat_mismatch_count"], 0,
                       note="; ".join(proof["stat_mismatches"][:3])),
        target_at_most("energy out of bounds", proof["energy_out_of_bounds_count"], 0,
                       note="; ".join(proof["energy_out_of_bounds"][:3])),
        target_at_most("waifus per template per player", proof["max_waifus_per_template"], 1,
                       note="; ".join(st.adopt_limit_breaches[:3])),
        target_at_least("unavailable calls (restart felt)", st.outcomes["unavailable"],
                        1 if restart["done"] else 0),
        # 0013: coins, the shop, gifts, group events
        info("purchases / gifts / group event joins", f"{proof['purchases']} / {proof['gifts']} / {proof['joins']}",
             note=f"group events {proof['group_events']}, paid at the end {payouts}; job runs {st.group_job_runs}"),
        target_at_least("purchases applied", proof["purchases"], 1),
        target_at_least("gifts applied", proof["gifts"], 1),
        target_at_least("group event joins", proof["joins"], 1),
        target_at_most("purchases lost / unaccounted", proof["purchases_lost"] + proof["purchases_unaccounted"], 0),
        target_at_most("gifts lost / unaccounted", proof["gifts_lost"] + proof["gifts_unaccounted"], 0),
        target_at_most("joins lost / unaccounted", proof["joins_lost"] + proof["joins_unaccounted"], 0),
        target_at_most("double-tapped purchases applied twice", st.double_buys_both_applied, 0),
        target_at_most("double-tapped joins both new", st.double_joins_both_new, 0),
        target_at_most("wallets != coin ledger", proof["wallets_off_ledger"], 0,
                       note=f"{proof['group_coins']}"),
        target_at_most("coin ledger balance breaks", proof["ledger_chain_breaks"], 0),
        target_at_most("inventories != purchases - gifts", proof["inventory_mismatches"], 0),
        target_at_most("group events closed and unpaid", proof["group_events"]["unpaid"], 0),
        target_at_most("group events paid other than their pool", proof["group_events"]["pool_not_shared"]
                       + proof["group_events"]["miscounted"], 0),
        target_at_most("group event coins: ledger != shares",
                       abs(proof["group_coins"]["ledger"] - proof["group_coins"]["shares"]), 0),
        target_at_most("events paid twice", payouts[1]["paid"], 0),
    ]
    context = {"args": {k: v for k, v in vars(args).items() if k != "database_url"}, "source": db.source,
               "server": server, "machine": machine_load(), "restart": restart, "proof": proof,
               "calls": dict(st.calls), "outcomes": dict(st.outcomes),
               "unavailable_causes": dict(st.unavailable_causes)}
    report(NAME, metrics, context)
    return 0 if all(m.passed is not False for m in metrics) else 1


def main(argv: list[str] | None = None) -> int:
    # asyncpg's pool logs a traceback each time it fails to reconnect during the restart;
    # those failures are counted in the report instead.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.soak_integrity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load (default 60)")
    parser.add_argument("--connections", type=int, default=100, help="pool size = concurrent callers (default 100)")
    parser.add_argument("--players", type=int, default=2000, help="players (default 2000)")
    parser.add_argument("--hot", type=int, default=10, help="hot players taking half of the calls (default 10)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-restart", action="store_true", help="no server restart in the middle")
    parser.add_argument("--quick", action="store_true", help="small and short: 10 s, 20 connections, 200 players")
    add_database_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.connections, args.players, args.hot = min(args.seconds, 10.0), 20, 200, 5
    if args.hot >= args.players:
        parser.error("--hot must be smaller than --players")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())

