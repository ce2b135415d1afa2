"""bot.ratelimit with a hand-driven clock: bursts, refill, Retry-After, bounded memory,
and logging bounded per key and overall."""

from __future__ import annotations

import logging

import pytest

from bot.ratelimit import BoundedLog, RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=5, clock=clock)
    assert [limiter.hit("ann") for _ in range(5)] == [0.0] * 5
    wait = limiter.hit("ann")
    assert wait == pytest.approx(0.5)
    assert limiter.hit("bob") == 0.0  # keys are independent
    clock.now += 0.5
    assert limiter.hit("ann") == 0.0  # one token back every 1/rate seconds
    assert limiter.hit("ann") > 0
    clock.now += 100
    assert [limiter.hit("ann") for _ in range(5)] == [0.0] * 5  # never more than the burst
    assert limiter.hit("ann") > 0


def test_refused_requests_do_not_push_the_wait_further() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    assert limiter.hit(1) == 0.0
    waits = [limiter.hit(1) for _ in range(100)]
    assert waits == [pytest.approx(1.0)] * 100
    clock.now += 1.0
    assert limiter.hit(1) == 0.0


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=100, clock=Clock())
    for key in range(10_000):
        limiter.hit(key)
    assert len(limiter) == 100


@pytest.mark.parametrize(("wait", "header"), [(0.001, "1"), (0.5, "1"), (1.0, "1"), (1.01, "2"), (59.2, "60")])
def test_retry_after_is_whole_seconds_never_zero(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header


def test_bounded_log_one_line_per_key_per_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    bounded = BoundedLog(logging.getLogger("test.bounded"), interval=60, clock=clock)
    for _ in range(1000):
        bounded.log("user:1", "refused", reason="rate")
    bounded.log("user:2", "refused", reason="rate")
    assert [r.suppressed for r in caplog.records] == [0, 0]  # type: ignore[attr-defined]
    clock.now += 60
    assert bounded.log("user:1", "refused", reason="rate")
    assert caplog.records[-1].suppressed == 999  # type: ignore[attr-defined]


def test_bounded_log_caps_all_keys_together(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    bounded = BoundedLog(logging.getLogger("test.bounded"), interval=10, per_interval=5, clock=clock)
    for key in range(1000):  # a thousand different keys (addresses) at once
        bounded.log(key, "refused")
    assert len(caplog.records) == 5
    clock.now += 10
    assert bounded.log("later", "refused")
    assert caplog.records[-1].dropped == 995  # type: ignore[attr-defined]
