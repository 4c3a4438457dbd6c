"""IBKR Tiered pricing: IB's own worked examples, hand-computed cases, and invariants (hypothesis)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.model.cost_meter import CostMeter
from copilot_quant.model.costs import (
    CommissionModel,
    CostBreakdown,
    DetailedCommissionModel,
    PercentCommission,
    PerShareCommission,
    commission_model,
    execution_commission,
)
from copilot_quant.model.fixed import FixedCommission
from copilot_quant.model.orders import OrderSide
from copilot_quant.model.tiered import TieredCommission, TieredRates
from hypothesis import given
from hypothesis import strategies as st

BUY, SELL = OrderSide.BUY, OrderSide.SELL

#: The fee levels of IB's comparison page (https://interactivebrokers.ca/en/index.php?f=713&nhf=T, read
#: 2026-12-07), whose examples use them: SEC 0.000008 x sales, TAF 0.000119/share capped at 7.27, FINRA
#: pass-through 0.00056, no CAT fee; remove-liquidity exchange fee 0.003/share (90,000 on 30,000,000 shares).
IB_EXAMPLE_RATES = TieredRates(
    finra_pass_through=0.00056,
    finra_taf_per_share_sold=0.000119,
    finra_taf_max_per_trade=7.27,
    sec_per_dollar_sold=0.000008,
    cat_per_share=0.0,
    exchange_per_share=0.003,
)


def test_ibs_example_selling_30_million_shares_removing_liquidity():
    """IB: 'Sell 30,000,000 Island NASDAQ Shares @ $5 Remove Liquidity' - total fees $139,188.1."""
    costs = TieredCommission(IB_EXAMPLE_RATES).order_costs(5.0, 30_000_000, SELL, month_volume=0)
    # IB First 300,000: 1,050; Next 2,700,000: 5,400; Next 17,000,000: 25,500; Next 10,000,000: 10,000
    assert costs.commission == pytest.approx(1_050 + 5_400 + 25_500 + 10_000)
    # exchange 90,000 + clearing 6,000 + transaction 1,200 + FINRA 23.49 + NYSE 7.34 + TAF 7.27
    assert costs.fees == pytest.approx(90_000 + 6_000 + 1_200 + 23.49 + 7.34 + 7.27, abs=0.01)
    assert costs.total == pytest.approx(139_188.10, abs=0.01)


def test_ibs_example_selling_200_000_shares():
    """IB: 'Sell 200,000 Island NASDAQ Shares @ $5 Remove Liquidity' - total fees $1,355.78 (IB rounds each
    line to the cent: FINRA 0.39, NYSE 0.12)."""
    costs = TieredCommission(IB_EXAMPLE_RATES).order_costs(5.0, 200_000, SELL, month_volume=0)
    assert costs.commission == pytest.approx(700.0)
    # exchange 600 + clearing 40 + transaction 8.00 + FINRA 0.39 + NYSE 0.12 + TAF 7.27 (23.80 capped)
    assert costs.total == pytest.approx(1_355.78, abs=0.01)


def test_a_small_order_with_todays_rates():
    # 100 shares @ $25, bought: 100 x 0.0035 = 0.35 (exactly the minimum); clearing 0.02, CAT 0.0072,
    # pass-through (0.000175 + 0.000563) x 0.35
    costs = TieredCommission().order_costs(25.0, 100, BUY, month_volume=0)
    assert costs.commission == pytest.approx(0.35)
    assert costs.fees == pytest.approx(0.02 + 0.0072 + 0.000738 * 0.35)
    # sold: plus TAF 100 x 0.000166 and SEC 2,500 x 0.0000278
    sold = TieredCommission().order_costs(25.0, 100, SELL, month_volume=0)
    assert sold.fees - costs.fees == pytest.approx(0.0166 + 0.0695)
    assert sold.commission == costs.commission


def test_minimum_and_one_percent_cap():
    tiered = TieredCommission()
    assert tiered.order_costs(50.0, 10, BUY, 0).commission == pytest.approx(0.35)  # 0.035 -> minimum
    # 1,000 shares @ $0.20: 3.50 by shares, but at most 1 % of the $200 traded = 2.00
    assert tiered.order_costs(0.20, 1_000, BUY, 0).commission == pytest.approx(2.00)
    # 10 shares @ $1: the cap (0.10) is below the minimum, and the cap wins
    assert tiered.order_costs(1.0, 10, BUY, 0).commission == pytest.approx(0.10)


def test_the_tiers_by_the_months_volume():
    tiered = TieredCommission()
    rate = {v: tiered.order_costs(100.0, 1_000, BUY, v).commission / 1_000 for v in (0, 299_000, 300_000)}
    assert rate == pytest.approx({0: 0.0035, 299_000: 0.0035, 300_000: 0.002})
    assert tiered.volume_commission(3_000_000, 1) == pytest.approx(0.0015)
    assert tiered.volume_commission(20_000_000, 1) == pytest.approx(0.001)
    assert tiered.volume_commission(100_000_000, 1) == pytest.approx(0.0005)
    assert tiered.volume_commission(5e9, 1) == pytest.approx(0.0005)


def test_an_order_crossing_a_tier_pays_each_share_at_its_tier():
    # 299,000 shares traded this month; 2,000 more: 1,000 at 0.0035 (up to share 300,000), 1,000 at 0.002
    costs = TieredCommission().order_costs(100.0, 2_000, BUY, month_volume=299_000)
    assert costs.commission == pytest.approx(3.50 + 2.00)


def test_taf_is_capped_per_trade_and_charged_on_sales_only():
    tiered = TieredCommission()
    big = tiered.order_costs(10.0, 100_000, SELL, 0).fees - tiered.order_costs(10.0, 100_000, BUY, 0).fees
    # TAF 100,000 x 0.000166 = 16.60 -> capped at 8.30; SEC 1,000,000 x 0.0000278 = 27.80
    assert big == pytest.approx(8.30 + 27.80)


def test_the_models_interface():
    tiered = TieredCommission()
    assert isinstance(tiered, CommissionModel)
    assert isinstance(tiered, DetailedCommissionModel)
    assert not isinstance(PerShareCommission(), DetailedCommissionModel)
    # the plain interface: a buy at the month's first share, commission plus fees
    assert tiered.commission(25.0, 100) == pytest.approx(tiered.order_costs(25.0, 100, BUY, 0).total)
    assert commission_model("ibkr-tiered") == tiered
    assert (
        commission_model(" IBKR-Fixed ") == FixedCommission()
    )  # with its pass-through fees (test_fixed_pricing)
    assert commission_model("0.002") == PercentCommission(0.002)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: TieredRates(minimum=-1), "minimum must be a finite number >= 0"),
        (lambda: TieredRates(sec_per_dollar_sold=math.nan), "sec_per_dollar_sold"),
        (lambda: TieredRates(tiers=((300_000, 0.0035),)), "unbounded tier"),
        (lambda: TieredRates(tiers=((300_000, 0.0035), (100, 0.002), (math.inf, 0.001))), "rising"),
        (lambda: TieredCommission(rates=0.0035), "takes a TieredRates"),  # type: ignore[arg-type]
        (lambda: commission_model("ibkr-tierd"), "ibkr-tiered, ibkr-fixed"),
    ],
)
def test_bad_rates_are_refused_by_name(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# ----- the meter: the month's volume ---------------------------------------------------------------------
def _at(year: int, month: int, day: int, hour: int = 15) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_the_meter_counts_the_month_and_restarts_with_the_next():
    meter = CostMeter(TieredCommission())
    first = meter.charge(100.0, 300_000, BUY, _at(2024, 3, 4))
    assert first.commission == pytest.approx(300_000 * 0.0035)
    assert meter.month_volume(_at(2024, 3, 5)) == 300_000
    assert meter.charge(100.0, 1_000, BUY, _at(2024, 3, 5)).commission == pytest.approx(2.00)
    # April: back to the first tier
    assert meter.month_volume(_at(2024, 4, 1)) == 0
    assert meter.charge(100.0, 1_000, BUY, _at(2024, 4, 1)).commission == pytest.approx(3.50)
    assert meter.month == (2024, 4)


def test_the_month_is_the_exchanges():
    # 2024-04-01 02:00 UTC is still March 31 in New York: it counts in March
    meter = CostMeter(TieredCommission())
    meter.record(300_000, _at(2024, 3, 29))
    assert meter.month_volume(datetime(2024, 4, 1, 2, tzinfo=UTC)) == 300_000
    assert meter.month_volume(datetime(2024, 4, 1, 5, tzinfo=UTC)) == 0  # 01:00 in New York, April
    # naive times are exchange time
    assert meter.month_volume(datetime(2024, 3, 31, 23, 30)) == 300_000


def test_quote_does_not_count_and_replay_rebuilds_the_count():
    meter = CostMeter(TieredCommission())
    meter.quote(100.0, 500_000, BUY, _at(2024, 3, 4))
    assert meter.month_volume(_at(2024, 3, 4)) == 0
    fresh = CostMeter(TieredCommission())
    fresh.replay([(_at(2024, 2, 27), 900_000), (_at(2024, 3, 4), 100_000), (_at(2024, 3, 6), 250_000)])
    assert fresh.month_volume(_at(2024, 3, 7)) == 350_000


def test_plain_models_are_priced_as_before_with_no_fees():
    meter = CostMeter(PerShareCommission())
    costs = meter.charge(50.0, 60, SELL, _at(2024, 3, 4), filled_before=40, avg_price_before=50.0)
    assert costs == CostBreakdown(execution_commission(PerShareCommission(), 50.0, 60, 40, 50.0), 0.0)


# ----- invariants ------------------------------------------------------------------------------------------
prices = st.floats(min_value=0.01, max_value=5_000, allow_nan=False)
volumes = st.floats(min_value=0, max_value=2e8, allow_nan=False)
sides = st.sampled_from([BUY, SELL])


@given(prices, st.floats(min_value=0, max_value=1e7), sides, volumes)
def test_costs_are_never_negative(price, quantity, side, volume):
    costs = TieredCommission().order_costs(price, quantity, side, volume)
    assert costs.commission >= 0
    assert costs.fees >= 0


@given(prices, st.integers(1, 299_999), st.integers(1, 299_999), sides)
def test_costs_rise_with_quantity_within_a_tier(price, a, b, side):
    small, large = sorted((a, b))
    tiered = TieredCommission()
    assert tiered.order_costs(price, small, side, 0).total <= tiered.order_costs(price, large, side, 0).total


@given(
    st.lists(st.tuples(prices, st.integers(1, 400_000)), min_size=1, max_size=6),
    sides,
    st.integers(0, 150_000_000),
)
def test_the_executions_of_an_order_add_up_to_the_whole_orders_costs(fills, side, before):
    meter = CostMeter(TieredCommission())
    when = _at(2024, 3, 4)
    meter.record(before, _at(2024, 3, 1))
    filled, avg = 0.0, 0.0
    paid = CostBreakdown()
    for price, qty in fills:
        costs = meter.charge(price, qty, side, when, filled_before=filled, avg_price_before=avg)
        paid = CostBreakdown(paid.commission + costs.commission, paid.fees + costs.fees)
        avg = (avg * filled + price * qty) / (filled + qty)
        filled += qty
    whole = TieredCommission().order_costs(avg, filled, side, before)
    assert paid.commission == pytest.approx(whole.commission, rel=1e-9, abs=1e-9)
    assert paid.fees == pytest.approx(whole.fees, rel=1e-9, abs=1e-9)
    assert meter.month_volume(when) == before + filled
