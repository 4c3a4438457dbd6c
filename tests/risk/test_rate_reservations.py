"""The order-rate limit is atomic: check() reserves a slot, record_submitted() confirms it, a reject frees it."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.errors import ConfigError
from copilot_quant.risk import OrderRateLimiter, RiskLimits, RiskManager, RiskRule
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.now += delta


def buy() -> Order:
    return Order("AAPL", 1, side="buy")


def hammer(threads: int, attempts: int, work: object) -> None:
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def run(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        try:
            for _ in range(attempts):
                work(rng)  # type: ignore[operator]
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    pool = [threading.Thread(target=run, args=(seed,)) for seed in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not failures, failures


# ------------------------------------------------------------------------------- many threads
@pytest.mark.timeout(60)
def test_threads_hammering_check_then_record_never_pass_more_than_the_limit() -> None:
    limit = 5
    risk = RiskManager(RiskLimits(max_orders_per_minute=limit), clock=Clock())
    passed: list[Order] = []
    lock = threading.Lock()

    def submit(rng: random.Random) -> None:
        order = buy()
        if risk.check(order, 1.0).ok:
            time.sleep(0.0005)  # the send: another thread's check runs meanwhile
            risk.record_submitted(order)
            with lock:
                passed.append(order)

    hammer(threads=16, attempts=40, work=submit)
    assert len(passed) == limit  # never more, and the limit is reached
    assert risk.pending_reservations == 0
    refused = risk.check(buy(), 1.0)
    assert refused.rule is RiskRule.ORDER_RATE


@pytest.mark.timeout(60)
def test_threads_with_broker_rejects_free_their_slots_and_still_never_exceed_the_limit() -> None:
    limit = 4
    clock = Clock()
    risk = RiskManager(RiskLimits(max_orders_per_minute=limit), clock=clock)
    sent: list[datetime] = []
    lock = threading.Lock()

    def submit(rng: random.Random) -> None:
        order = buy()
        if not risk.check(order, 1.0).ok:
            return
        time.sleep(0.0002)
        outcome = rng.random()
        if outcome < 0.4:
            order.status = OrderStatus.REJECTED  # the broker refused it: never sent, slot freed lazily
        elif outcome < 0.6:
            assert risk.release_reservation(order)  # the engine gave it up explicitly
        else:
            with lock:
                sent.append(clock())
                risk.record_submitted(order)

    hammer(threads=12, attempts=60, work=submit)
    assert len(sent) == limit  # rejected and released orders did not use up the minute
    assert risk.check(buy(), 1.0).rule is RiskRule.ORDER_RATE
    assert risk.pending_reservations == 0  # the rejected ones were swept by that check


@pytest.mark.timeout(60)
def test_the_limiter_reserve_is_exact_under_threads_with_a_real_clock() -> None:
    limiter = OrderRateLimiter(7)
    taken: list[int] = []
    lock = threading.Lock()

    def grab(rng: random.Random) -> None:
        key = object()
        if limiter.reserve(datetime.now(UTC), key):
            limiter.confirm(datetime.now(UTC), key)
            with lock:
                taken.append(1)

    hammer(threads=8, attempts=100, work=grab)
    assert len(taken) == 7
    assert limiter.count(datetime.now(UTC)) == 7


# ------------------------------------------------------------------------------- reservations, one by one
def test_a_passing_check_holds_a_slot_until_confirmed_or_released() -> None:
    risk = RiskManager(RiskLimits(max_orders_per_minute=1), clock=Clock())
    first, second = buy(), buy()
    assert risk.check(first, 1.0).ok
    assert risk.pending_reservations == 1
    decision = risk.check(second, 1.0)
    assert decision.rule is RiskRule.ORDER_RATE
    assert "next order allowed in 60.0s" in decision.reason
    assert risk.check(first, 1.0).ok  # re-checking the holder does not count it twice
    assert risk.pending_reservations == 1
    assert risk.release_reservation(first)
    assert not risk.release_reservation(first)  # only once
    assert risk.pending_reservations == 0
    assert risk.check(second, 1.0).ok
    risk.record_submitted(second)
    assert risk.pending_reservations == 0
    assert risk.check(buy(), 1.0).rule is RiskRule.ORDER_RATE  # the confirmed one counts for the minute


def test_a_rejected_order_gives_its_slot_back_at_the_next_check() -> None:
    risk = RiskManager(RiskLimits(max_orders_per_minute=1), clock=Clock())
    order = buy()
    assert risk.check(order, 1.0).ok
    order.status = OrderStatus.REJECTED  # e.g. broker.reject() or IB refused it
    assert risk.check(buy(), 1.0).ok


def test_a_reservation_never_confirmed_nor_released_times_out_after_a_window() -> None:
    clock = Clock()
    risk = RiskManager(RiskLimits(max_orders_per_minute=1), clock=clock)
    assert risk.check(buy(), 1.0).ok  # e.g. the engine crashed between check and send
    clock.advance(WINDOW - timedelta(microseconds=1))
    assert risk.check(buy(), 1.0).rule is RiskRule.ORDER_RATE
    clock.advance(timedelta(microseconds=1))
    assert risk.check(buy(), 1.0).ok


def test_a_dry_run_check_and_refused_orders_hold_nothing() -> None:
    risk = RiskManager(RiskLimits(max_orders_per_minute=1, max_order_quantity=10), clock=Clock())
    for _ in range(3):
        assert risk.check(buy(), 1.0, reserve=False).ok
    assert risk.check(Order("AAPL", 11), 1.0).rule is RiskRule.ORDER_QUANTITY
    assert risk.pending_reservations == 0
    assert risk.check(buy(), 1.0).ok


def test_without_a_rate_limit_nothing_is_reserved() -> None:
    risk = RiskManager(RiskLimits(max_order_quantity=10))
    order = buy()
    assert risk.check(order, 1.0).ok
    assert risk.pending_reservations == 0
    assert not risk.release_reservation(order)
    risk.record_submitted(order)


def test_the_limiter_refuses_a_nonsense_reservation_timeout() -> None:
    with pytest.raises(ConfigError, match="reservation_timeout"):
        OrderRateLimiter(1, reservation_timeout=timedelta(0))


def test_the_limiter_next_allowed_at_counts_held_reservations() -> None:
    limiter = OrderRateLimiter(2, WINDOW, reservation_timeout=timedelta(seconds=10))
    limiter.record(T0)
    assert limiter.reserve(T0 + timedelta(seconds=5), "a")
    assert not limiter.reserve(T0 + timedelta(seconds=5), "b")
    assert limiter.next_allowed_at(T0 + timedelta(seconds=5)) == T0 + timedelta(seconds=15)
    assert limiter.release_where(lambda owner: True) == 1
    assert limiter.next_allowed_at(T0 + timedelta(seconds=5)) == T0 + timedelta(seconds=5)


# ------------------------------------------------------------------------------- model-based
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("check"), st.integers(0, 0)),
        st.tuples(st.sampled_from(["send", "reject", "release"]), st.integers(0, 30)),
        st.tuples(st.just("advance"), st.integers(0, 40_000)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(1, 5), ops=_OPS)
def test_reservations_match_a_model_and_sends_never_exceed_the_limit(
    limit: int, ops: list[tuple[str, int]]
) -> None:
    """Every check passes exactly when fewer than ``limit`` slots are in use (confirmed in the last minute,
    or held and younger than a minute) — so released and rejected orders free theirs at once — and the
    confirmed sends never exceed ``limit`` in any 60 s window."""
    clock = Clock()
    risk = RiskManager(RiskLimits(max_orders_per_minute=limit), clock=clock)
    held: list[tuple[Order, datetime]] = []  # passed, neither sent, rejected nor released
    sends: list[datetime] = []
    for op, arg in ops:
        if op == "advance":
            clock.advance(timedelta(milliseconds=arg))
            continue
        now = clock()
        held = [(o, t) for o, t in held if now - t < WINDOW]  # a minute old: timed out, freed
        if op == "check":
            in_use = len(held) + sum(1 for t in sends if t > now - WINDOW)
            order = buy()
            decision = risk.check(order, 1.0)
            assert decision.ok == (in_use < limit), (in_use, decision)
            if decision.ok:
                held.append((order, now))
            continue
        if not held:
            continue
        order, _ = held.pop(arg % len(held))
        if op == "send":
            risk.record_submitted(order)
            sends.append(now)
        elif op == "reject":
            order.status = OrderStatus.REJECTED
        else:
            assert risk.release_reservation(order)
    for start in sends:
        assert sum(1 for t in sends if start <= t < start + WINDOW) <= limit
