"""The order tracker's memory stays bounded over a long session, and every lookup still answers.

Before, the tracker kept every order record of the session (and every index entry and execution id of it):
memory grew with each order sent or refused, for as long as the engine ran."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.order_tracking import RECENT_KEPT, OrderTracker, PendingExecution, TrackedOrder
from copilot_quant.errors import ConfigError
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _sent(tracker: OrderTracker, k: int) -> TrackedOrder:
    record = tracker.add(Order("AAPL", 1, "limit", "buy", limit_price=100.0), f"ref-{k}")
    tracker.bind(record, 1_000 + k, object())
    assert tracker.find(ib_order_id=1_000 + k, perm_id=500_000 + k) is record  # IB's first report: its permId
    return record


def _filled(tracker: OrderTracker, k: int) -> TrackedOrder:
    """An order sent, filled, its commission in, and finished by IB's own report: finished for good."""
    record = _sent(tracker, k)
    assert tracker.add_execution(record, PendingExecution(f"exec-{k}", 1.0, 100.0, NOW))
    assert tracker.settle(record, f"exec-{k}", 0.5) is not None
    record.ib_final = True  # IB's own Filled
    tracker.release(record)
    return record


def _refused(tracker: OrderTracker, k: int) -> TrackedOrder:
    """An order the risk check refused: never sent, finished for good."""
    record = tracker.add(Order("AAPL", 1, "market", "buy"), f"refused-{k}")
    tracker.set_status(record, OrderStatus.REJECTED, reason="risk check: too big")
    return record


def _session(tracker: OrderTracker, orders: int, start: int = 0) -> None:
    for k in range(start, start + orders):
        (_filled if k % 3 else _refused)(tracker, k)


def test_the_tracker_forgets_the_oldest_orders_finished_for_good_and_its_memory_stays_bounded() -> None:
    tracker = OrderTracker(keep_recent=100)
    tracemalloc.start()
    try:
        _session(tracker, 2_000)
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()  # the tracker at its steady size (and the test's own)
        _session(tracker, 20_000, start=2_000)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # before, 20,000 more records kept (with their fills, execution ids and index entries) took megabytes
    assert after - before < 100_000
    assert len(tracker.records()) == 100
    assert len(tracker._seen_exec_ids) <= 100  # every index is bounded, not only the list
    assert len(tracker._by_perm) <= 100
    assert len(tracker._by_ref) <= 100
    assert len(tracker._records) <= 100
    assert len(tracker._maybe_at_ib) <= 100


def test_lookups_find_every_order_kept_and_answer_for_a_forgotten_one_as_for_a_long_finished_one() -> None:
    tracker = OrderTracker(keep_recent=10)
    working = _sent(tracker, 0)  # a limit order working at IB all session
    awaiting = _sent(tracker, 1)  # filled, IB's commission report not in yet
    assert tracker.add_execution(awaiting, PendingExecution("exec-1", 1.0, 100.0, NOW))
    awaiting.ib_final = True
    awaiting.order.status = OrderStatus.FILLED
    lost = _sent(tracker, 2)  # lost in a gateway reset: an execution may still reopen it
    tracker.mark_lost(lost, "IB no longer knows the order")
    modifying = _sent(tracker, 3)  # its modification not answered yet
    modifying.modifying = object()
    modifying.ib_final = True
    modifying.order.status = OrderStatus.CANCELLED
    oldest = _filled(tracker, 4)
    _session(tracker, 200, start=5)
    newest = _filled(tracker, 205)

    kept = tracker.records()
    assert kept[:4] == [working, awaiting, lost, modifying]  # never forgotten, in the order added
    assert oldest not in kept
    assert newest in kept
    assert len(kept) == 4 + 10
    for record in (working, awaiting, lost, modifying, newest):
        k = int(record.order_ref.split("-")[1])
        assert tracker.get(str(record.order.order_id)) is record
        assert tracker.record_for(record.order) is record
        assert tracker.find(order_ref=record.order_ref) is record
        assert tracker.find(perm_id=500_000 + k) is record
    assert tracker.find(ib_order_id=1_000) is working
    assert tracker.find(ib_order_id=1_000 + 205) is None  # released when IB finished it, as before
    assert tracker.record_for_exec("exec-1") is awaiting
    assert tracker.seen("exec-1", awaiting)
    assert tracker.seen("exec-205", newest)
    assert tracker.reachable_records() == [working]
    assert tracker.open_records() == [working]
    assert tracker.settle(awaiting, "exec-1", 0.5) is not None  # its commission comes in: still settles
    _session(tracker, 10, start=206)
    assert awaiting not in tracker.records()  # finished for good now: forgotten with the next orders
    assert working in tracker.records()

    # the forgotten order: no record anywhere, like an order that was never this session's
    assert tracker.get(str(oldest.order.order_id)) is None
    assert tracker.record_for(oldest.order) is None
    assert tracker.find(ib_order_id=1_004, perm_id=500_004, order_ref="ref-4") is None
    assert not tracker.seen("exec-4")
    assert oldest not in tracker.reachable_records()


def test_keep_recent_none_keeps_every_order_as_a_parity_run_needs_and_a_bad_value_is_refused() -> None:
    assert OrderTracker().keep_recent == RECENT_KEPT
    tracker = OrderTracker(keep_recent=None)
    _session(tracker, 500)
    assert len(tracker.records()) == 500
    tracker.keep_recent = 50  # set later: the next order brings the tracker down to it
    _session(tracker, 1, start=500)
    assert len(tracker.records()) == 50
    for bad in (0, -1, 2.5, True, "100"):
        with pytest.raises(ConfigError, match="keep_recent"):
            OrderTracker(keep_recent=bad)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    keep=st.integers(min_value=1, max_value=8),
    kinds=st.lists(st.sampled_from(["filled", "refused", "working", "awaiting"]), max_size=80),
)
def test_the_last_orders_and_every_order_that_may_still_change_are_kept_in_the_order_added(
    keep: int, kinds: list[str]
) -> None:
    tracker = OrderTracker(keep_recent=keep)
    made: list[tuple[str, TrackedOrder]] = []
    for k, kind in enumerate(kinds):
        if kind == "filled":
            record = _filled(tracker, k)
        elif kind == "refused":
            record = _refused(tracker, k)
        else:
            record = _sent(tracker, k)
            if kind == "awaiting":
                assert tracker.add_execution(record, PendingExecution(f"exec-{k}", 1.0, 100.0, NOW))
        made.append((kind, record))
    kept = tracker.records()
    assert kept == [r for _, r in made if r in kept]  # in the order added
    changing = [r for kind, r in made if kind in ("working", "awaiting")]
    assert all(r in kept for r in changing)
    assert all(r in kept for _, r in made[-keep:])
    assert len(kept) <= keep + len(changing)
    for record in kept:
        assert tracker.find(order_ref=record.order_ref) is record
    assert tracker.reachable_records() == [r for r in changing if r.may_be_at_ib]
