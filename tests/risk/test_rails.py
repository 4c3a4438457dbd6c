"""The order-rate limiter, the kill switch and the liveness guard, on their own."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.risk import KillSwitch, KillSwitchEngagement, LivenessGuard, OrderRateLimiter
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


# ------------------------------------------------------------------------------- rate limiter
@given(
    limit=st.integers(1, 8),
    gaps_ms=st.lists(st.integers(0, 30_000), min_size=1, max_size=80),
    jitter_ms=st.lists(st.integers(-20_000, 0), max_size=80),
)
def test_the_rate_limiter_never_allows_more_than_n_in_any_window(
    limit: int, gaps_ms: list[int], jitter_ms: list[int]
) -> None:
    limiter = OrderRateLimiter(limit, WINDOW)
    now = T0
    accepted: list[datetime] = []
    for i, gap in enumerate(gaps_ms):
        now += timedelta(milliseconds=gap)
        at = now + timedelta(milliseconds=jitter_ms[i]) if i < len(jitter_ms) else now  # clock steps back
        if limiter.allows(at):
            limiter.record(at)
            accepted.append(at)
    for start in accepted:  # every window that matters starts at an accepted order
        inside = [t for t in accepted if start <= t < start + WINDOW]
        assert len(inside) <= limit


@given(limit=st.integers(1, 6), count=st.integers(0, 12))
def test_the_rate_limiter_allows_a_burst_of_exactly_n_then_waits(limit: int, count: int) -> None:
    limiter = OrderRateLimiter(limit)
    allowed = 0
    for _ in range(count):
        if limiter.allows(T0):
            limiter.record(T0)
            allowed += 1
    assert allowed == min(limit, count)
    if count >= limit:
        assert limiter.next_allowed_at(T0) == T0 + WINDOW
        assert not limiter.allows(T0 + WINDOW - timedelta(microseconds=1))
        assert limiter.allows(T0 + WINDOW)
    else:
        assert limiter.next_allowed_at(T0) == T0


def test_the_rate_limiter_refuses_nonsense() -> None:
    with pytest.raises(ConfigError, match="max_orders"):
        OrderRateLimiter(0)
    with pytest.raises(ConfigError, match="window"):
        OrderRateLimiter(1, timedelta(0))


def test_the_rate_limiter_is_exact_under_threads() -> None:
    limiter = OrderRateLimiter(1000)
    barrier = threading.Barrier(4)

    def hammer() -> None:
        barrier.wait()
        for _ in range(250):
            limiter.record(T0)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert limiter.count(T0) == 1000
    assert not limiter.allows(T0)


# ------------------------------------------------------------------------------- kill switch
def test_the_kill_switch_engages_with_a_reason_and_emits_events(caplog: pytest.LogCaptureFixture) -> None:
    switch = KillSwitch(clock=lambda: T0)
    engaged: list[KillSwitchEngagement] = []
    released: list[KillSwitchEngagement] = []
    switch.engaged += engaged.append
    switch.released += released.append
    assert not switch.is_engaged
    assert switch.reason == ""
    with caplog.at_level(logging.ERROR, logger="copilot_quant.risk.kill_switch"):
        first = switch.engage("daily loss drill")
    assert "KILL SWITCH engaged: daily loss drill" in caplog.text
    assert first == KillSwitchEngagement("daily loss drill", T0, cancel_all=True, flatten=False)
    assert switch.is_engaged
    assert switch.reason == "daily loss drill"
    escalated = switch.engage("flatten now", cancel_all=False, flatten=True)
    assert escalated == KillSwitchEngagement("daily loss drill", T0, cancel_all=True, flatten=True)
    assert engaged == [first, escalated]
    assert switch.release() is True
    assert switch.release() is False
    assert released == [escalated]
    assert not switch.is_engaged
    with pytest.raises(ConfigError, match="reason"):
        switch.engage("  ")


# ------------------------------------------------------------------------------- liveness
def test_liveness_reports_not_connected_until_the_first_connection() -> None:
    guard = LivenessGuard(max_disconnect_s=30, max_stale_data_s=60)
    assert "not connected" in (guard.check(T0) or "")
    guard.on_connected(T0)
    assert guard.is_connected
    assert guard.check(T0 + timedelta(seconds=60)) is None  # grace period to subscribe


def test_liveness_tolerates_short_outages_and_halts_on_long_ones() -> None:
    guard = LivenessGuard(max_disconnect_s=30, max_stale_data_s=None)
    guard.on_connected(T0)
    guard.on_disconnected(T0 + timedelta(seconds=10))
    guard.on_disconnected(T0 + timedelta(seconds=20))  # a repeated report does not restart the clock
    assert guard.check(T0 + timedelta(seconds=40)) is None
    reason = guard.check(T0 + timedelta(seconds=41))
    assert reason is not None
    assert "down for 31s" in reason
    assert "limit 30s" in reason
    guard.on_connected(T0 + timedelta(seconds=50))
    assert guard.check(T0 + timedelta(hours=5)) is None  # staleness rule disabled


def test_liveness_halts_on_stale_data_and_recovers_when_data_flows() -> None:
    guard = LivenessGuard(max_disconnect_s=None, max_stale_data_s=60)
    guard.on_connected(T0)
    guard.on_data(T0 + timedelta(seconds=30))
    guard.on_data(T0 + timedelta(seconds=5))  # out of order: the latest time wins
    assert guard.check(T0 + timedelta(seconds=90)) is None
    reason = guard.check(T0 + timedelta(seconds=91))
    assert reason is not None
    assert "no market data for 61s" in reason
    assert guard.check(T0 + timedelta(seconds=91), expect_data=False) is None
    guard.on_data(T0 + timedelta(seconds=95))
    assert guard.check(T0 + timedelta(seconds=96)) is None
    guard.on_disconnected(T0 + timedelta(seconds=100))
    assert guard.check(T0 + timedelta(days=1)) is None  # disconnect rule disabled
    guard.on_connected(T0 + timedelta(days=1))  # a reconnect restarts the staleness grace period
    assert guard.check(T0 + timedelta(days=1, seconds=60)) is None


@given(
    events=st.lists(
        st.tuples(st.sampled_from(["up", "down", "data"]), st.integers(0, 120)), min_size=1, max_size=40
    ),
    probe=st.integers(0, 200),
)
def test_liveness_never_passes_a_long_outage(events: list[tuple[str, int]], probe: int) -> None:
    guard = LivenessGuard(max_disconnect_s=30, max_stale_data_s=45)
    now = T0
    down_since: datetime | None = None
    connected = False
    for kind, gap in events:
        now += timedelta(seconds=gap)
        if kind == "up":
            guard.on_connected(now)
            connected, down_since = True, None
        elif kind == "down":
            guard.on_disconnected(now)
            if down_since is None:
                down_since = now
            connected = False
        else:
            guard.on_data(now)
    at = now + timedelta(seconds=probe)
    verdict = guard.check(at)
    if not connected and down_since is not None and (at - down_since).total_seconds() > 30:
        assert verdict is not None
    if not connected and down_since is None:
        assert verdict is not None  # never connected


def test_liveness_refuses_bad_settings_and_naive_times() -> None:
    with pytest.raises(ConfigError, match="max_disconnect_s"):
        LivenessGuard(max_disconnect_s=0)
    with pytest.raises(ConfigError, match="max_stale_data_s"):
        LivenessGuard(max_stale_data_s=-5)
    with pytest.raises(ConfigError, match="tz-aware"):
        LivenessGuard().check(datetime(2024, 1, 2))
