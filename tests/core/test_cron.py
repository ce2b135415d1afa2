"""pg_cron really runs restore-energy: one real tick, watched (up to ~75 s)."""

import asyncio
import time
from datetime import timedelta

import pytest

from tests.core.conftest import player_with_waifu, set_stored, stored


@pytest.mark.slow
async def test_pg_cron_runs_restore_energy(admin):
    job = await admin.fetchrow("SELECT jobid, schedule, command, active FROM cron.job "
                               "WHERE jobname = 'restore-energy'")
    assert (job["schedule"], job["command"], job["active"]) == ("* * * * *", "CALL game.restore_energy_job()", True)
    wid = await player_with_waifu(admin)
    started = await admin.fetchval("SELECT now()")
    # 95 energy on a clock 10.5 minutes behind the real one: at the cap since 5.5 minutes,
    # so the next tick finds her and stages her "she is rested"
    clock = started - timedelta(minutes=10, seconds=30)
    await set_stored(admin, wid, energy=95, clock=clock)
    # Written behind the tick's back (no api function moves a clock into the past): the
    # operator's way to have the next ticks look again (README, "Operators in psql").
    await admin.fetchval("SELECT ops.reset_tick(now() - interval '1 hour')")

    deadline = time.monotonic() + 75
    while True:
        run = await admin.fetchrow(
            """SELECT status, start_time, end_time, return_message FROM cron.job_run_details
               WHERE jobid = $1 AND start_time >= $2 AND status IN ('succeeded', 'failed')
               ORDER BY start_time LIMIT 1""", job["jobid"], started)
        if run is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert run is not None, "no run of restore-energy finished within 75 s"
    assert (run["status"], run["return_message"]) == ("succeeded", "CALL"), run["return_message"]

    assert await admin.fetchval("SELECT sum(waifus) FROM game.rested_ranges") == 1
    assert (await stored(admin, wid))["energy"] == 95  # nothing written: reads restore her
    assert (await admin.fetchval("SELECT api.waifu_stats($1)", wid))["energy"] == 100
    health = await admin.fetchrow("SELECT last_status, health FROM ops.cron_jobs WHERE jobname = 'restore-energy'")
    assert (health["last_status"], health["health"]) == ("succeeded", "ok")
