"""Model-based test: hypothesis drives random participations (cheap, costly, windowed,
unknown, replayed, another player's waifu), clock steps from a millisecond to hours,
restore ticks and operator corrections, and after every step compares every stat of
every waifu - effective and stored - with a small reference model written from the
rules in issue 2.

The database is driven synchronously with psycopg2 (hypothesis runs plain functions);
every action passes an explicit `now`, except ops.set_stat, which has no `now`
argument: the model reads the transaction's now() and uses that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from math import isqrt

import psycopg2
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.conftest import RESET_SQL

US = 1_000_000  # the model keeps time in integer microseconds, as PostgreSQL does
MINUTE = 60 * US
MAX_ENERGY = 100
MAX_STAT = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def to_dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def parse(value: str | None) -> int | None:
    return None if value is None else to_us(datetime.fromisoformat(value))


def norm(d: dict) -> dict:
    """Timestamps (keys ending in _at) as microseconds, whatever their text form."""
    return {k: parse(v) if k.endswith("_at") and isinstance(v, str) else v for k, v in d.items()}


# -- the reference model ------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    xp: int
    energy: int
    mood: int
    loyalty: int
    clock: int  # the energy clock, us


@dataclass(frozen=True)
class Event:
    code: str
    cost: int
    xp: int
    mood: int
    loyalty: int
    cooldown: int  # us
    starts: int | None = None
    ends: int | None = None
    coins: int = 0  # coin_reward (0013)

    def open_at(self, now: int) -> bool:
        return (self.starts is None or self.starts <= now) and (self.ends is None or now < self.ends)


def regen(s: Stats, now: int) -> Stats:
    """+1 energy per whole minute since the clock, up to the cap; the clock moves by the
    minutes used, so a partial minute is kept; at the cap the clock stops."""
    if s.energy >= MAX_ENERGY or now - s.clock < MINUTE:
        return s
    minutes = min(MAX_ENERGY - s.energy, (now - s.clock) // MINUTE)
    return replace(s, energy=s.energy + minutes, clock=s.clock + minutes * MINUTE)


def clamp(value: int) -> int:
    return max(0, min(MAX_STAT, value))


def level(xp: int) -> int:
    return 1 + isqrt(xp // 100)


def ceil_seconds(us: int) -> int:
    return -(-us // US)


@dataclass
class Ledger:
    waifu: int
    event: str
    result: dict


EXTRA_EVENTS = [  # besides the seeded ones: costly, level-jumping, clamping, windowed, free
    Event("marathon", 70, 400, -40, 35, 0),
    Event("allin", 100, 2500, 60, -70, 10 * MINUTE),
    Event("free", 0, 1, -100, 100, 0),
    Event("festival", 15, 50, 20, 20, 0, starts=60 * MINUTE, ends=240 * MINUTE),  # relative to the start
]
OWNERS = [1, 1, 2]  # waifu index -> telegram id
STATS = ("xp", "energy", "mood", "loyalty")


class GameMachine(RuleBasedStateMachine):
    conn: psycopg2.extensions.connection  # one session for every example: warm plan caches

    def __init__(self) -> None:
        super().__init__()
        self.cur = self.conn.cursor()
        # rows only (TRUNCATE would invalidate every cached plan); cascades to waifus and audit;
        # the ledger has no foreign key (it outlives deletions until its retention)
        self.cur.execute("DELETE FROM game.participations; DELETE FROM game.request_keys; DELETE FROM game.players; "
                         "DELETE FROM game.events WHERE code = ANY(%s)",
                         ([e.code for e in EXTRA_EVENTS],))
        self.cur.execute("SELECT now()")
        self.now = to_us(self.cur.fetchone()[0])
        # The tick's cursor where this game starts (other tests' ticks may have left it anywhere).
        self.cur.execute("UPDATE game.tick_state SET cursor_full_at = extract(epoch FROM %s::timestamptz), "
                         "cursor_id = 0", (to_dt(self.now),))
        self.cursor = self.now
        self.events: dict[str, Event] = {}
        self.cur.execute("SELECT code, energy_cost, xp_reward, mood_delta, loyalty_delta, cooldown, starts_at, "
                         "ends_at, coin_reward FROM game.events")
        for code, cost, xp, mood, loyalty, cooldown, starts, ends, coins in self.cur.fetchall():
            assert starts is None and ends is None
            self.events[code] = Event(code, cost, xp, mood, loyalty, cooldown // timedelta(microseconds=1),
                                      coins=coins)
        for e in EXTRA_EVENTS:
            e = replace(e, starts=e.starts and self.now + e.starts, ends=e.ends and self.now + e.ends)
            self.cur.execute("SELECT ops.create_event(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                             (e.code, e.code, e.cost, e.xp, e.mood, e.loyalty, timedelta(microseconds=e.cooldown),
                              e.starts and to_dt(e.starts), e.ends and to_dt(e.ends)))
            self.events[e.code] = e
        self.codes = sorted(self.events) + ["nope"]
        for tid in sorted(set(OWNERS)):
            self.cur.execute("SELECT api.register_player(%s, 'p', 'P', 'en')", (tid,))
        self.ids: list[int] = []
        self.stored: list[Stats] = []
        for tid, template in zip(OWNERS, ("sakura", "yuki", "rin"), strict=True):  # one waifu per template per player
            self.cur.execute("SELECT api.adopt_waifu(%s, %s)", (tid, template))
            wid = self.cur.fetchone()[0]
            self.ids.append(wid)
            self.stored.append(Stats(0, MAX_ENERGY, 50, 50, self.stored_clock(wid)))
        self.ledger: dict[tuple[int, str], Ledger] = {}
        self.last_at: dict[tuple[int, str], int] = {}
        self.xp_gained = 0
        self.next_key = 0

    def teardown(self) -> None:
        self.cur.close()

    def stored_clock(self, wid: int) -> int:
        self.cur.execute("SELECT ((dynamic ->> 'last_restore')::numeric * 1000000)::bigint FROM game.waifus "
                         "WHERE id = %s", (wid,))
        return self.cur.fetchone()[0]

    def call(self, sql: str, args: tuple) -> tuple[str | None, object]:
        """(None, result) or (sqlstate, detail)."""
        try:
            self.cur.execute(sql, args)
            return None, self.cur.fetchone()[0]
        except psycopg2.Error as exc:
            return exc.pgcode, json.loads(exc.diag.message_detail or "{}")

    # -- rules ----------------------------------------------------------------------------
    @rule(ms=st.one_of(st.integers(1, 120_000), st.integers(1, 6 * 3600).map(lambda s: s * 1000)))
    def clock_step(self, ms: int) -> None:
        self.now += ms * 1000

    @rule()
    def restore_tick(self) -> None:
        # Since 0011 the tick writes no waifu: it finds each one stored below the cap whose
        # full_at passed since its last run (to stage her "she is rested"), once.
        due = [i for i, s in enumerate(self.stored)
               if s.energy < MAX_ENERGY and self.cursor < s.clock + (MAX_ENERGY - s.energy) * MINUTE <= self.now]
        self.cur.execute("SELECT api.restore_energy(%s)", (to_dt(self.now),))
        assert self.cur.fetchone()[0] == len(due)
        self.cursor = max(self.cursor, self.now)

    @rule(w=st.integers(0, 2), as_owner=st.integers(0, 9), code=st.integers(0, 100), key=st.integers(0, 5))
    def participate(self, w: int, as_owner: int, code: int, key: int) -> None:
        tid = OWNERS[w] if as_owner else 3 - OWNERS[w]  # one call in ten by the other player
        code = self.codes[code % len(self.codes)]
        used = sorted(k for (t, k) in self.ledger if t == tid)
        if key <= 1 and used:
            request_key = used[(self.next_key * 7) % len(used)]
            if key == 0:  # a redelivered update: same key, same action
                prior = self.ledger[(tid, request_key)]
                w, code = prior.waifu, prior.event
            # else: the key of another action, unless the draw happens to match it
        else:
            self.next_key += 1
            request_key = f"k{self.next_key}"
        sqlstate, got = self.call("SELECT api.participate_in_event(%s, %s, %s, %s, %s)",
                                  (tid, self.ids[w], code, request_key, to_dt(self.now)))
        expected_state, expected = self.expect_participation(tid, w, code, request_key)
        assert sqlstate == expected_state, (sqlstate, got, expected)
        assert {k: v for k, v in norm(got).items() if k in expected} == norm(expected)
        if expected_state is None and not got["replayed"]:
            self.ledger[(tid, request_key)] = Ledger(w, code, got)

    def expect_participation(self, tid: int, w: int, code: str, key: str) -> tuple[str | None, dict]:
        now = self.now
        if OWNERS[w] != tid:
            return "WF004", {"waifu_id": self.ids[w]}
        if prior := self.ledger.get((tid, key)):
            if (prior.waifu, prior.event) != (w, code):
                return "WF007", {"request_key": key, "waifu_id": self.ids[prior.waifu], "event_code": prior.event}
            # a replay: the recorded action with her stats as they are now
            recorded = {k: prior.result[k] for k in ("event_code", "event_title", "request_key", "participated_at",
                                                     "changes")}
            return None, self.card(regen(self.stored[w], now)) | recorded | {"replayed": True}
        event = self.events.get(code)
        if event is None or not event.open_at(now):
            return "WF002", {"event_code": code}
        last = self.last_at.get((w, code))
        if last is not None and last + event.cooldown > now:
            return "WF003", {"event_code": code, "remaining_seconds": ceil_seconds(last + event.cooldown - now)}
        before = regen(self.stored[w], now)
        if before.energy < event.cost:
            return "WF001", {"energy_needed": event.cost, "energy": before.energy,
                             "enough_at": to_dt(before.clock + MINUTE * (event.cost - before.energy)).isoformat()}
        after = Stats(xp=before.xp + event.xp, energy=before.energy - event.cost,
                      mood=clamp(before.mood + event.mood), loyalty=clamp(before.loyalty + event.loyalty),
                      # a full waifu starts its clock at the spend; a regenerating one keeps it
                      clock=now if before.energy >= MAX_ENERGY else before.clock)
        self.stored[w] = after
        self.last_at[(w, code)] = max(now, last or now)
        self.xp_gained += event.xp
        return None, self.card(after) | {
            "replayed": False,
            "changes": {"energy": -event.cost, "xp": event.xp, "mood": after.mood - before.mood,
                        "loyalty": after.loyalty - before.loyalty, "level_before": level(before.xp),
                        "level_after": level(after.xp), "leveled_up": level(after.xp) > level(before.xp),
                        "coins": event.coins}}

    @rule(w=st.integers(0, 2), stat=st.sampled_from(STATS + ("charm",)),
          value=st.one_of(st.integers(-3, 103), st.integers(0, 2**31 - 1)))
    def set_stat(self, w: int, stat: str, value: int) -> None:
        valid = stat in STATS and 0 <= value <= (2**31 - 1 if stat == "xp" else MAX_STAT)
        self.cur.execute("BEGIN")
        self.cur.execute("SELECT now()")
        at = to_us(self.cur.fetchone()[0])
        sqlstate, got = self.call("SELECT ops.set_stat(%s, %s, %s, 'model')", (self.ids[w], stat, value))
        self.cur.execute("COMMIT" if sqlstate is None else "ROLLBACK")
        if not valid:
            assert sqlstate == "WF006" and got["argument"] in {"stat", "value"}
            return
        assert sqlstate is None, (sqlstate, got)
        current = regen(self.stored[w], at)
        old = getattr(current, stat)
        new = replace(current, **{stat: value})
        if stat == "energy" and old >= MAX_ENERGY:
            new = replace(new, clock=at)  # the spending rule: a full waifu starts its clock
        self.stored[w] = new
        assert got[stat] == value
        self.cur.execute("SELECT old_value, new_value FROM game.stat_corrections ORDER BY id DESC LIMIT 1")
        assert self.cur.fetchone() == (old, value)

    # -- comparisons ----------------------------------------------------------------------
    def card(self, s: Stats) -> dict:
        lvl = level(s.xp)
        below = s.energy < MAX_ENERGY
        return {"xp": s.xp, "level": lvl, "level_xp": 100 * (lvl - 1) ** 2, "next_level_xp": 100 * lvl**2,
                "energy": s.energy, "max_energy": MAX_ENERGY, "mood": s.mood, "loyalty": s.loyalty,
                "next_energy_at": to_dt(s.clock + MINUTE).isoformat() if below else None,
                "full_energy_at": to_dt(s.clock + MINUTE * (MAX_ENERGY - s.energy)).isoformat() if below else None}

    # One round trip reads everything the invariant compares.
    OBSERVE = """
        SELECT (SELECT array_agg(api.waifu_stats(w.id, %(now)s) ORDER BY w.id) FROM game.waifus AS w),
               (SELECT array_agg(api.available_events(w.id, %(now)s) ORDER BY w.id) FROM game.waifus AS w),
               (SELECT array_agg(api.player_profile(p.telegram_id, %(now)s) ORDER BY p.telegram_id)
                FROM game.players AS p),
               (SELECT array_agg(ARRAY[(dynamic ->> 'xp')::bigint, (dynamic ->> 'energy')::bigint,
                                       (dynamic ->> 'mood')::bigint, (dynamic ->> 'loyalty')::bigint,
                                       ((dynamic ->> 'last_restore')::numeric * 1000000)::bigint] ORDER BY id)
                FROM game.waifus),
               (SELECT count(*) FROM game.participations),
               (SELECT coalesce(sum(xp_gained), 0) FROM game.participations)
    """

    @invariant()
    def everything_matches_the_model(self) -> None:
        self.cur.execute(self.OBSERVE, {"now": to_dt(self.now)})
        cards, event_lists, profiles, stored, ledger_rows, ledger_xp = self.cur.fetchone()

        # every stat of every waifu, effective as of now, in the stats card and the profiles
        expected_cards = [norm(self.card(regen(s, self.now))) for s in self.stored]
        assert [{k: v for k, v in norm(c).items() if k in expected_cards[0]} for c in cards] == expected_cards
        for profile in profiles:
            mine = [i for i, owner in enumerate(OWNERS) if owner == profile["telegram_id"]]
            assert [{k: v for k, v in norm(c).items() if k in expected_cards[0]} for c in profile["waifus"]] == [
                expected_cards[i] for i in mine]

        # the stored stats, clock included: what restore ticks and actions wrote
        assert [Stats(*row) for row in stored] == self.stored

        # open events, cooldowns and whether the energy suffices
        for i, events in enumerate(event_lists):
            got = {e["code"]: (e["cooldown_remaining_seconds"], e["enough_energy"]) for e in events}
            energy = regen(self.stored[i], self.now).energy
            expected = {}
            for e in self.events.values():
                if e.open_at(self.now):
                    last = self.last_at.get((i, e.code))
                    remaining = 0 if last is None else max(0, ceil_seconds(last + e.cooldown - self.now))
                    expected[e.code] = (remaining, energy >= e.cost)
            assert got == expected, i

        assert (ledger_rows, ledger_xp) == (len(self.ledger), self.xp_gained)


@pytest.fixture
def cron_paused(database):
    """The real restore-energy job off while the model runs: ops.set_stat puts clocks at
    the real now(), and a real tick would then change stored stats behind the model."""
    conn = psycopg2.connect(database.admin_url)
    conn.autocommit = True
    toggle = "SELECT cron.alter_job(jobid, active := %s) FROM cron.job WHERE jobname = 'restore-energy'"
    try:
        with conn.cursor() as cur:
            cur.execute(toggle, (False,))
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute(toggle, (True,))
        conn.close()


def test_random_play_matches_the_reference_model(database, cron_paused):
    conn = psycopg2.connect(database.admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # This session's commits skip the flush wait: much faster, same semantics.
            cur.execute("SET synchronous_commit = off")
            cur.execute(RESET_SQL)
        GameMachine.conn = conn
        run_state_machine_as_test(GameMachine, settings=settings(
            max_examples=40, stateful_step_count=30, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow]))
    finally:
        conn.close()
