"""Pre-trade risk limits refuse exactly the orders that break a limit, with the reason, and fail closed."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus, Position
from copilot_quant.errors import ConfigError
from copilot_quant.risk import KillSwitch, LivenessGuard, RiskDecision, RiskLimits, RiskManager, RiskRule
from hypothesis import assume, given
from hypothesis import strategies as st

T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def order(qty: float = 10, side: str = "buy", symbol: str = "AAPL", **kw: object) -> Order:
    return Order(symbol, qty, side=side, **kw)  # type: ignore[arg-type]


def pos(symbol: str, qty: float, price: float = 100.0) -> Position:
    position = Position(symbol, qty, avg_entry_price=price)
    position.update_unrealized_pnl(price)
    return position


def manager(**limits: object) -> RiskManager:
    return RiskManager(RiskLimits(**limits), clock=Clock())  # type: ignore[arg-type]


def refused(decision: RiskDecision, rule: RiskRule, *words: str) -> bool:
    assert not decision.ok, "expected a refusal"
    assert not decision
    assert decision.rule is rule, decision
    for word in words:
        assert word in decision.reason, decision.reason
    return True


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_order_quantity", -1),
        ("max_order_quantity", 0),
        ("max_order_notional", math.nan),
        ("max_gross_exposure", math.inf),
        ("price_band_pct", True),
        ("max_daily_loss", "1000"),
        ("max_orders_per_minute", 2.5),
    ],
)
def test_invalid_limits_are_refused_with_the_field_name(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        RiskLimits(**{field: value})  # type: ignore[arg-type]


def test_limits_load_from_a_mapping_and_refuse_unknown_keys() -> None:
    limits = RiskLimits.from_mapping({"max_order_quantity": 100, "max_orders_per_minute": 10.0})
    assert limits.max_order_quantity == 100.0
    assert limits.max_orders_per_minute == 10
    assert isinstance(limits.max_orders_per_minute, int)
    with pytest.raises(ConfigError, match=r"max_order_qty.*allowed: "):
        RiskLimits.from_mapping({"max_order_qty": 100})


def test_no_limits_means_every_order_passes_even_without_a_price() -> None:
    risk = RiskManager()
    assert risk.check(order(1_000_000), None).ok
    assert risk.check(order(5, "sell", order_type="limit", limit_price=1.0), None) == RiskDecision(True)


def test_order_quantity_limit() -> None:
    risk = manager(max_order_quantity=100)
    assert risk.check(order(100), 10.0).ok
    assert refused(risk.check(order(101), 10.0), RiskRule.ORDER_QUANTITY, "101", "100")
    assert refused(risk.check(order(101, "sell"), 10.0), RiskRule.ORDER_QUANTITY)  # applies to exits too


def test_order_notional_uses_the_worst_of_last_and_order_prices() -> None:
    risk = manager(max_order_notional=10_000)
    assert risk.check(order(100), 100.0).ok
    assert refused(risk.check(order(101), 100.0), RiskRule.ORDER_NOTIONAL, "10,100.00", "10,000.00")
    limit_above = order(100, order_type="limit", limit_price=101.0)
    assert refused(risk.check(limit_above, 100.0), RiskRule.ORDER_NOTIONAL)
    assert risk.check(order(100, order_type="limit", limit_price=99.0), 100.0).ok


def test_price_band_catches_fat_fingered_limit_and_stop_prices() -> None:
    risk = manager(price_band_pct=5)
    assert risk.check(order(order_type="limit", limit_price=105.0), 100.0).ok
    assert refused(
        risk.check(order(order_type="limit", limit_price=1050.0), 100.0),
        RiskRule.PRICE_BAND,
        "limit price",
        "±5%",
    )
    assert refused(
        risk.check(order(side="sell", order_type="stop", stop_price=90.0), 100.0), RiskRule.PRICE_BAND, "stop"
    )
    assert risk.check(order(), 100.0).ok  # a market order has no price to check


def test_limits_that_need_a_price_fail_closed_without_one() -> None:
    risk = manager(price_band_pct=5)
    for bad in (None, 0.0, -1.0, math.nan):
        assert refused(risk.check(order(), bad), RiskRule.NO_PRICE, "no valid last price")


def test_position_limit_counts_working_orders_and_lets_reducing_orders_through() -> None:
    risk = manager(max_position_per_symbol=100)
    held = {"AAPL": pos("AAPL", 60)}
    assert risk.check(order(40), None, held).ok
    assert refused(risk.check(order(41), None, held), RiskRule.POSITION, "101")
    working = order(30)
    working.status = OrderStatus.SUBMITTED
    assert refused(risk.check(order(20), None, held, open_orders=[working]), RiskRule.POSITION, "110")
    working_sell = order(30, "sell")
    working_sell.status = OrderStatus.SUBMITTED
    assert risk.check(order(40), None, held, open_orders=[working_sell]).ok  # other side not counted
    over = {"AAPL": pos("AAPL", 500)}
    assert risk.check(order(100, "sell"), None, over).ok  # reducing passes although still over the limit
    assert refused(risk.check(order(700, "sell"), None, over), RiskRule.POSITION, "-200")  # flips beyond
    assert refused(risk.check(order(101, "sell"), None, {}), RiskRule.POSITION)  # shorts count too


def test_a_blocking_oca_group_counts_as_its_largest_member() -> None:
    """A take-profit and a stop-loss for the same 100 shares are one exit: the second is not a new short."""
    risk = manager(max_position_per_symbol=50)
    held = {"AAPL": pos("AAPL", 100)}
    take_profit = order(100, "sell", order_type="limit", limit_price=120.0, oca_group="exit", oca_type=1)
    take_profit.status = OrderStatus.SUBMITTED
    stop_loss = order(100, "sell", order_type="stop", stop_price=90.0, oca_group="exit", oca_type=1)
    assert risk.check(stop_loss, None, held, open_orders=[take_profit]).ok
    # the same two orders outside a group could both fill: 100 short, over the limit
    plain_stop = order(100, "sell", order_type="stop", stop_price=90.0)
    assert refused(
        risk.check(plain_stop, None, held, open_orders=[take_profit.copy(oca_group="")]), RiskRule.POSITION
    )
    # without overfill protection (ocaType 3) both may fill: counted in full
    loose = [o.copy(oca_type=3) for o in (take_profit, stop_loss)]
    loose[0].status = OrderStatus.SUBMITTED
    assert refused(risk.check(loose[1], None, held, open_orders=[loose[0]]), RiskRule.POSITION)
    # a larger member of the group still counts beyond the shares it shares with the others
    bigger = order(180, "sell", order_type="limit", limit_price=130.0, oca_group="exit", oca_type=1)
    assert refused(risk.check(bigger, None, held, open_orders=[take_profit]), RiskRule.POSITION, "-80")


def test_position_notional_and_gross_exposure() -> None:
    risk = manager(max_position_notional_per_symbol=20_000, max_gross_exposure=50_000)
    held = {"AAPL": pos("AAPL", 100, 100.0), "MSFT": pos("MSFT", -200, 150.0)}  # 10k + 30k gross
    assert risk.check(order(100), 100.0, held).ok  # AAPL 20k, gross 50k
    assert refused(risk.check(order(101), 100.0, held), RiskRule.POSITION_NOTIONAL, "20,100.00")
    small = manager(max_gross_exposure=45_000)
    assert refused(small.check(order(60), 100.0, held), RiskRule.GROSS_EXPOSURE, "46,000.00")
    assert small.check(order(100, "buy", symbol="MSFT"), 150.0, held).ok  # covering a short reduces
    assert refused(
        small.check(order(40, "sell", symbol="MSFT"), 150.0, held), RiskRule.GROSS_EXPOSURE, "46,000"
    )


def test_daily_loss_allows_only_reducing_orders_once_reached() -> None:
    risk = manager(max_daily_loss=1_000)
    held = {"AAPL": pos("AAPL", 50)}
    assert risk.check(order(10), 100.0, held, equity=99_001, day_start_equity=100_000).ok
    assert refused(
        risk.check(order(10), 100.0, held, equity=99_000, day_start_equity=100_000),
        RiskRule.DAILY_LOSS,
        "1,000.00",
    )
    assert risk.check(order(50, "sell"), 100.0, held, equity=90_000, day_start_equity=100_000).ok
    assert refused(risk.check(order(10), 100.0, held), RiskRule.DAILY_LOSS, "equity and day_start_equity")


def test_order_rate_limit_uses_a_sliding_minute() -> None:
    clock = Clock()
    risk = RiskManager(RiskLimits(max_orders_per_minute=3), clock=clock)
    for _ in range(3):
        assert risk.check(order(), 1.0).ok
        risk.record_submitted(order())
        clock.now += timedelta(seconds=10)
    assert refused(risk.check(order(), 1.0), RiskRule.ORDER_RATE, "3 orders in 60 s", "30.0s")
    clock.now = T0 + timedelta(seconds=60)  # the first one left the window
    assert risk.check(order(), 1.0).ok


def test_the_kill_switch_refuses_every_order_until_released() -> None:
    risk = manager()
    risk.kill_switch.engage("manual stop")
    held = {"AAPL": pos("AAPL", 10)}
    assert refused(risk.check(order(), 1.0), RiskRule.KILL_SWITCH, "kill switch engaged: manual stop")
    assert refused(
        risk.check(order(10, "sell"), 1.0, held), RiskRule.KILL_SWITCH
    )  # even exits: the engine flattens
    risk.kill_switch.release()
    assert risk.check(order(), 1.0).ok


def test_a_shared_kill_switch_and_the_liveness_guard_are_consulted() -> None:
    clock = Clock()
    switch = KillSwitch()
    guard = LivenessGuard(max_disconnect_s=30, max_stale_data_s=60)
    risk = RiskManager(RiskLimits(), clock=clock, kill_switch=switch, liveness=guard)
    assert risk.kill_switch is switch
    assert refused(risk.check(order(), 1.0), RiskRule.LIVENESS, "not connected")
    guard.on_connected(T0)
    assert risk.check(order(), 1.0).ok
    clock.now = T0 + timedelta(seconds=61)
    assert refused(risk.check(order(), 1.0), RiskRule.LIVENESS, "no market data")
    assert risk.check(order(), 1.0, expect_data=False).ok  # market closed: silence is normal
    guard.on_data(clock.now)
    assert risk.check(order(), 1.0).ok
    switch.engage("drill")
    assert refused(risk.check(order(), 1.0), RiskRule.KILL_SWITCH)


def test_check_refuses_things_that_are_not_orders() -> None:
    with pytest.raises(ConfigError, match="needs an Order"):
        RiskManager().check({"symbol": "AAPL"}, 1.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- invariants
quantities = st.integers(1, 5_000)
prices = st.floats(1.0, 1_000.0, allow_nan=False)
positions = st.integers(-5_000, 5_000)


@given(qty=quantities, side=st.sampled_from(["buy", "sell"]), price=prices, limit=st.integers(1, 2_000))
def test_no_passing_order_exceeds_the_order_quantity_limit(
    qty: int, side: str, price: float, limit: int
) -> None:
    decision = manager(max_order_quantity=limit).check(order(qty, side), price)
    assert decision.ok == (qty <= limit)


@given(qty=quantities, price=prices, limit_price=st.none() | prices, cap=st.floats(100.0, 1e6))
def test_no_passing_order_exceeds_the_notional_limit(
    qty: int, price: float, limit_price: float | None, cap: float
) -> None:
    candidate = order(qty) if limit_price is None else order(qty, order_type="limit", limit_price=limit_price)
    decision = manager(max_order_notional=cap).check(candidate, price)
    if decision.ok:
        assert qty * max(price, limit_price or 0.0) <= cap + 1e-6
        assert qty * price <= cap + 1e-6


@given(held=positions, qty=quantities, side=st.sampled_from(["buy", "sell"]), cap=st.integers(1, 4_000))
def test_a_passing_order_never_takes_a_position_beyond_the_limit_unless_it_reduces_it(
    held: int, qty: int, side: str, cap: int
) -> None:
    current = {"AAPL": pos("AAPL", held)} if held else {}
    decision = manager(max_position_per_symbol=cap).check(order(qty, side), 100.0, current)
    after = held + (qty if side == "buy" else -qty)
    reduces = abs(after) <= abs(held) and after * held >= 0
    assert decision.ok == (abs(after) <= cap or reduces)


@given(
    held=st.dictionaries(st.sampled_from(["AAPL", "MSFT", "SPY"]), positions.filter(bool), max_size=3),
    qty=quantities,
    side=st.sampled_from(["buy", "sell"]),
    cap=st.floats(1_000.0, 1e6),
)
def test_a_passing_order_never_raises_gross_exposure_beyond_the_limit(
    held: dict[str, int], qty: int, side: str, cap: float
) -> None:
    book = {s: pos(s, q, 10.0) for s, q in held.items()}
    before = sum(abs(q) * 10.0 for q in held.values())
    decision = manager(max_gross_exposure=cap).check(order(qty, side), 10.0, book)
    after_aapl = held.get("AAPL", 0) + (qty if side == "buy" else -qty)
    after = before - abs(held.get("AAPL", 0)) * 10.0 + abs(after_aapl) * 10.0
    assume(abs(after - cap) > 1e-6)
    aapl = held.get("AAPL", 0)
    reduces = abs(after_aapl) <= abs(aapl) and after_aapl * aapl >= 0
    assert decision.ok == (after <= cap or reduces)


def test_a_bracket_counts_its_worst_case_against_the_daily_loss_limit_not_only_its_entry():
    risk = manager(max_daily_loss=1_000)
    entry, take_profit, stop_loss = Order.bracket(
        "AAPL", 100, "buy", limit_price=50.0, take_profit=60.0, stop_loss=45.0
    )
    exits = [take_profit, stop_loss]  # worst case: 100 x (50 - 45) = 500
    assert risk.check(entry, 50.0, {}, daily_pnl=-400.0, exits=exits, reserve=False).ok
    refused = risk.check(entry, 50.0, {}, daily_pnl=-600.0, exits=exits, reserve=False)
    assert not refused.ok
    assert refused.rule is RiskRule.DAILY_LOSS
    assert "worst case loses 500.00" in refused.reason
    assert risk.check(entry, 50.0, {}, daily_pnl=-600.0, reserve=False).ok  # the entry alone would pass
