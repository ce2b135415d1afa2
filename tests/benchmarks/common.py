"""Small helpers shared by the benchmark scripts (bench_core, bench_bot, bench_webapp).

Benchmarks are scripts, not tests: they report figures against targets and never fail
a run because a target is missed. The API, all of it:

- `add_database_args(parser)`: adds --database-url, --bot-database-url and --keep.
- `bench_database(name, database_url=None, bot_url=None, keep=False, settings=None)`: a
  context manager yielding a `BenchDatabase` (admin_url, bot_url, source). Without a URL
  it starts a throwaway local cluster `.localdb/<name>` (db.localdb, PostgreSQL defaults:
  fsync and synchronous_commit on; `settings` such as {"shared_buffers": "512MB"} are set
  with ALTER SYSTEM and a restart, for experiments) and stops and removes it on exit
  unless `keep`. Migrations are applied either way. One cluster name per script
  (bench_core uses "bench").
- `server_settings(url)`: the server's durability/memory settings, as the server reports them.
- `machine_load()`: cpu count and load averages, to print beside the figures.
- CPU readers (Linux /proc; the one place that parses it): `cpu_seconds(pid)` (user +
  system of one process; `children=True` adds the children it reaped),
  `cpu_seconds_of(pids)` (a sum, None if one is unreadable), `machine_busy_seconds()`
  (every CPU of the machine), `server_cpu_seconds(postmaster)` (a local PostgreSQL: the
  postmaster, its live children and the ones it reaped), `postmaster_of(data_dir)`.
- `BackendCpu(conn)`: CPU seconds used by that connection's server process (local server
  only; `.available` is False otherwise): CPU cost that other load on the machine hardly
  changes, unlike wall time.
- `CpuShares.of(conn, url)`: `.start()` / `.stop()` around a run -> cores used by this
  Python process, by the whole PostgreSQL server behind `conn`, and by everything else
  on the machine (local server only; otherwise only the first and the machine total).
- `init_connection(conn)`: the bot's own asyncpg connection initialiser (bot.game), so a
  benchmark's connections decode exactly as the bot's do.
- `closed_loop(call, callers, seconds, max_calls=None)`: `callers` concurrent tasks each
  awaiting `call(i)` back to back for `seconds`; returns a `LoadResult` (calls/s, latencies).
- `fixed_rate(call, callers, rate, seconds, max_calls=None)`: the same callers starting `rate`
  calls a second on fixed schedules, latency counted from each call's scheduled moment.
- `percentile(values, p)` and `latency_ms(seconds)`: percentiles (linear interpolation).
- `Metric` and `target_at_most` / `target_at_least` / `info`: one row of the report.
- `report(name, metrics, context)`: prints the table and writes bench-results/<name>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bot.game import init_connection as init_connection  # re-exported: the one initialiser
from db import localdb, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS_DIR = PROJECT_ROOT / "bench-results"


# -- the database ----------------------------------------------------------------------


@dataclass(frozen=True)
class BenchDatabase:
    admin_url: str  # superuser: data loading, settings, EXPLAIN
    bot_url: str  # role waifu_bot: what the bot really connects as (EXECUTE on api only)
    source: str  # "local cluster <path>" or "--database-url"


def add_database_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="superuser URL of a migrated-or-empty database the benchmark may WIPE "
        "(default: start a throwaway local cluster)",
    )
    parser.add_argument(
        "--bot-database-url",
        help="URL as role waifu_bot (default: --database-url with the user replaced by waifu_bot)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the local cluster running at the end")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="server setting for the local cluster (ALTER SYSTEM + restart), e.g. "
                        "shared_buffers=512MB; repeatable. Default: PostgreSQL's defaults")


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """["a=1", "b=2"] (from --set) -> {"a": "1", "b": "2"}."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--set expects NAME=VALUE, got {pair!r}")
        out[name.strip()] = value.strip()
    return out


@contextmanager
def bench_database(
    name: str, database_url: str | None = None, bot_url: str | None = None, keep: bool = False,
    settings: dict[str, str] | None = None,
) -> Iterator[BenchDatabase]:
    """A migrated database; a fresh local cluster `name` when no URL is given."""
    if database_url:
        if settings:
            raise SystemExit("server settings (--set) apply only to the benchmark's own local cluster")
        migrate.apply(database_url)
        yield BenchDatabase(database_url, bot_url or localdb.with_user(database_url, localdb.BOT_ROLE),
                            "--database-url")
        return
    cluster = localdb.cluster(name)
    cluster.destroy()  # a fresh cluster: the settings are PostgreSQL's defaults, nothing left over
    cluster.start()
    try:
        if settings:
            import psycopg2

            conn = psycopg2.connect(cluster.url())
            conn.autocommit = True
            with conn.cursor() as cur:
                for key, value in settings.items():
                    cur.execute(f"ALTER SYSTEM SET {key} = %s", (value,))
            conn.close()
            cluster.stop()
            cluster.start()
        migrate.apply(cluster.url())
        # The bot role's password is in .localdb/pgpass (PGPASSFILE, set by db.localdb).
        yield BenchDatabase(cluster.url(), bot_url or cluster.url(user=localdb.BOT_ROLE),
                            f"local cluster {cluster.home}")
    finally:
        if keep:
            print(f"cluster kept running: {cluster.url()}  (stop: python -m db.localdb destroy --name {name})")
        else:
            cluster.destroy()


async def server_settings(url: str) -> dict[str, str]:
    """What the server really runs with (not what we think we configured)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1::text[])",
            ["server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
             "shared_buffers", "work_mem", "max_connections", "jit"],
        )
    finally:
        await conn.close()
    return {r["name"]: r["value"] for r in rows}


def machine_load() -> dict[str, Any]:
    """CPU count, load averages and CPU pressure (a shared machine gives noisy numbers)."""
    one, five, fifteen = os.getloadavg()
    load: dict[str, Any] = {"cpus": os.cpu_count(), "load_1m": round(one, 2), "load_5m": round(five, 2),
                            "load_15m": round(fifteen, 2)}
    try:  # Linux pressure stall info: % of the last 10 s some task waited for a CPU
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        load["cpu_pressure_10s"] = float(some.split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        pass
    return load


# -- CPU (Linux /proc: the one reader every benchmark uses) ------------------------------


def _stat_fields(pid: int | str) -> list[str]:
    # After the ")" closing the command name (which may hold spaces): state, ppid, ...
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | str, *, children: bool = False) -> float:
    """User + system CPU seconds of process `pid` so far; `children` adds the CPU of the
    children it has reaped (a postmaster's ended backends). OSError if it is gone."""
    fields = _stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(pids: list[int]) -> float | None:
    """Sum of `cpu_seconds` over `pids`; None if one cannot be read (gone, other namespace)."""
    try:
        return sum(cpu_seconds(pid) for pid in pids)
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_seconds() -> float:
    """CPU seconds every CPU of the machine has been busy (all processes, since boot)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = sum(values[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(postmaster: int) -> float:
    """A local PostgreSQL server's CPU seconds: the postmaster, the children it reaped, and
    its live children (backends, background workers such as pg_cron's jobs)."""
    total = cpu_seconds(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry.name)
            if int(fields[1]) == postmaster:
                total += cpu_seconds(entry.name)
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return total


def postmaster_of(data_dir: Path) -> int | None:
    """The postmaster pid of the local cluster in `data_dir` (its postmaster.pid), or None."""
    try:
        return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class BackendCpu:
    """CPU seconds (user + system) used so far by the server process behind `conn`.

    Read from /proc, so only for a server on this machine that we may inspect."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:  # the pid must be a postgres process here (not one in another pid namespace)
            self.available = "(postgres)" in Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            self.available = False

    @classmethod
    async def of(cls, conn: asyncpg.Connection, url: str) -> BackendCpu:
        host = urlsplit(url).hostname or "localhost"
        cpu = cls(await conn.fetchval("SELECT pg_backend_pid()"))
        cpu.available = cpu.available and host in ("localhost", "127.0.0.1", "::1")
        return cpu

    def seconds(self) -> float:
        return cpu_seconds(self.pid) if self.available else math.nan


class CpuShares:
    """Who used the machine's CPUs during a run: this process (the benchmark client), the
    PostgreSQL server (postmaster, its live children, and the children it reaped), and
    everyone else. Figures in cores (CPU seconds per second of the run)."""

    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = postmaster
        self._start: tuple[float, float, float, float] | None = None

    @classmethod
    async def of(cls, conn: asyncpg.Connection, url: str) -> CpuShares:
        backend = await BackendCpu.of(conn, url)
        return cls(int(_stat_fields(backend.pid)[1]) if backend.available else None)  # its parent

    def _server_seconds(self) -> float:
        return math.nan if self.postmaster is None else server_cpu_seconds(self.postmaster)

    def _snapshot(self) -> tuple[float, float, float, float]:
        return (time.perf_counter(), machine_busy_seconds(), time.process_time(), self._server_seconds())

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> dict[str, float]:
        """Cores used since start(): client, server, others, machine (of os.cpu_count())."""
        assert self._start is not None, "start() first"
        end = self._snapshot()
        wall, machine, client, server = (b - a for a, b in zip(self._start, end, strict=True))
        shares = {"client": client / wall, "server": server / wall, "machine": machine / wall}
        shares["others"] = max(0.0, shares["machine"] - shares["client"] - shares["server"])
        return {k: round(v, 2) for k, v in shares.items()}


# -- load generation and statistics ------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(seconds: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max of latencies given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p90_ms": round(percentile(seconds, 90) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "max_ms": round(max(seconds) * 1000, 3) if seconds else math.nan,
    }


@dataclass
class LoadResult:
    calls: int  # successful calls
    errors: int
    elapsed: float  # seconds, first call to last answer
    latencies: list[float] = field(repr=False)  # seconds, successful calls only
    first_error: str | None = None

    @property
    def per_second(self) -> float:
        return self.calls / self.elapsed if self.elapsed else 0.0


class FairPool:
    """An asyncpg pool whose callers take turns first come, first served, as bot.game.Game's
    do: asyncpg's own queue lets a newcomer take a connection from a caller just woken for
    it, and under load that unfairness alone makes p99 several times p50 (measured). The
    product's client is fair; a benchmark of it must be too, ceiling included."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._turns = asyncio.Semaphore(pool.get_max_size())

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._turns:
            return await self.pool.fetchval(sql, *args)


async def closed_loop(
    call: Callable[[int], Awaitable[Any]], callers: int, seconds: float, max_calls: int | None = None
) -> LoadResult:
    """Run `callers` tasks, each awaiting `call(i)` back to back (i = 0, 1, 2... across all
    tasks, never repeated) until `seconds` have passed or `max_calls` were started.
    An exception counts as an error and the caller goes on."""
    return await _load(call, callers, seconds, max_calls, rate=None)


async def fixed_rate(
    call: Callable[[int], Awaitable[Any]], callers: int, rate: float, seconds: float, max_calls: int | None = None
) -> LoadResult:
    """`callers` tasks start `rate` calls a second together, each on its own fixed schedule
    (one call every callers / rate s, the callers spread over one interval). Latency counts
    from the scheduled moment, so a late answer that delays the caller's next call is
    counted too (no coordinated omission), as a player's waiting would be."""
    return await _load(call, callers, seconds, max_calls, rate=rate)


async def _load(call: Callable[[int], Awaitable[Any]], callers: int, seconds: float, max_calls: int | None,
                rate: float | None) -> LoadResult:
    counter = 0
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    start = time.perf_counter()
    deadline = start + seconds

    async def caller(k: int) -> None:
        nonlocal counter, errors, first_error
        scheduled = start + k / rate if rate else start
        while max_calls is None or counter < max_calls:
            if rate:
                if scheduled >= deadline:
                    break
                if (ahead := scheduled - time.perf_counter()) > 0:
                    await asyncio.sleep(ahead)
            elif (scheduled := time.perf_counter()) >= deadline:
                break
            i = counter
            counter += 1
            try:
                await call(i)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the load goes on
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
            else:
                latencies.append(time.perf_counter() - scheduled)
            if rate:
                scheduled += callers / rate

    await asyncio.gather(*(caller(k) for k in range(callers)))
    return LoadResult(len(latencies), errors, time.perf_counter() - start, latencies, first_error)


async def look_back(conn: asyncpg.Connection, since: datetime) -> None:
    """Clocks were written by hand (arming): move the restore tick's cursor (0011 on) back
    to `since`, so that the next tick looks at them as it would at clocks a player's call
    wrote. A no-op on revisions without a cursor (ab_core's base)."""
    if await conn.fetchval("SELECT to_regprocedure('ops.reset_tick(timestamptz)') IS NOT NULL"):
        await conn.fetchval("SELECT ops.reset_tick($1)", since)


# -- the report ---------------------------------------------------------------------------


@dataclass
class Metric:
    name: str
    value: float | int | str | None
    unit: str = ""
    target: str = ""  # e.g. "<= 500 ms"; empty for figures reported without a target
    passed: bool | None = None  # None: no target
    note: str = ""


def target_at_most(name: str, value: float, limit: float, unit: str = "", note: str = "") -> Metric:
    return Metric(name, value, unit, f"<= {limit:g} {unit}".strip(), value <= limit, note)


def target_at_least(name: str, value: float, limit: float, unit: str = "", note: str = "") -> Metric:
    return Metric(name, value, unit, f">= {limit:g} {unit}".strip(), value >= limit, note)


def info(name: str, value: Any, unit: str = "", note: str = "") -> Metric:
    return Metric(name, value, unit, "", None, note)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def report(name: str, metrics: list[Metric], context: dict[str, Any]) -> Path:
    """Print the metrics as a table and write {context, metrics} to bench-results/<name>.json."""
    rows = [("metric", "value", "target", "result")] + [
        (m.name, f"{_fmt(m.value)} {m.unit}".strip(), m.target,
         "" if m.passed is None else ("PASS" if m.passed else "MISS"))
        for m in metrics
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print()
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) if i != 1 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for m in metrics:
        if m.note:
            print(f"  * {m.name}: {m.note}")
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "context": context, "metrics": [asdict(m) for m in metrics]}
    path.write_text(json.dumps(_json_safe(payload), indent=2, default=str) + "\n")
    print(f"\nwritten: {path.relative_to(PROJECT_ROOT)}")
    return path
