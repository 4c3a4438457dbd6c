"""IBKR Fixed pricing as a trader pays it: IB's own worked examples, today's rates, and invariants."""

from __future__ import annotations

import math

import pytest
from copilot_quant.backtest.costs import FixedCommission as ReExported
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError
from copilot_quant.model.cost_meter import CostMeter
from copilot_quant.model.costs import DetailedCommissionModel, PerShareCommission, commission_model
from copilot_quant.model.fixed import FixedCommission, FixedRates
from copilot_quant.model.orders import OrderSide
from hypothesis import given
from hypothesis import strategies as st

from tests.backtest.engine_helpers import flat_bars

BUY, SELL = OrderSide.BUY, OrderSide.SELL

#: The fee levels of IB's comparison page (https://interactivebrokers.ca/en/index.php?f=713&nhf=T, read
#: 2026-12-07), whose examples use them: transaction fee 0.000008 x sales, TAF 0.000119/share capped at 7.27.
IB_EXAMPLE_RATES = FixedRates(
    finra_taf_per_share_sold=0.000119,
    finra_taf_max_per_trade=7.27,
    sec_per_dollar_sold=0.000008,
    cat_per_share=0.0,
)


def test_ibs_example_selling_200_000_shares():
    """IB: 'Sell 200,000 Island NASDAQ Shares @ $5' - Fixed cost $1,015.27 (commission 1,000, transaction fee
    8.00, FINRA Trading Activity Fee 7.27)."""
    costs = FixedCommission(IB_EXAMPLE_RATES).order_costs(5.0, 200_000, SELL, month_volume=0)
    assert costs.commission == pytest.approx(1_000.0)
    assert costs.fees == pytest.approx(8.00 + 7.27)
    assert costs.total == pytest.approx(1_015.27)


def test_ibs_example_selling_30_million_shares():
    """IB: 'Sell 30,000,000 ... Shares @ $5' - Fixed cost $151,207.27."""
    costs = FixedCommission(IB_EXAMPLE_RATES).order_costs(5.0, 30_000_000, SELL, month_volume=0)
    assert costs.total == pytest.approx(151_207.27)


@pytest.mark.parametrize(
    ("shares", "price", "commission"),
    [(100, 25.0, 1.00), (1_000, 25.0, 5.00), (1_000, 0.25, 2.50)],  # the pricing page's "Fixed Examples"
)
def test_the_pricing_pages_fixed_examples(shares, price, commission):
    assert FixedCommission().order_costs(price, shares, BUY, 0).commission == pytest.approx(commission)


def test_todays_fees_on_a_sale_and_on_a_buy():
    bought = FixedCommission().order_costs(25.0, 1_000, BUY, 0)
    sold = FixedCommission().order_costs(25.0, 1_000, SELL, 0)
    assert bought.fees == pytest.approx(1_000 * 0.000072)  # CAT only
    # plus TAF 1,000 x 0.000166 and SEC 25,000 x 0.0000278
    assert sold.fees == pytest.approx(0.072 + 0.166 + 0.695)
    assert sold.commission == bought.commission == pytest.approx(5.00)
    # the TAF is capped per trade: 100,000 shares sold -> 16.60, capped at 8.30
    big = FixedCommission().order_costs(10.0, 100_000, SELL, 0).fees
    assert big == pytest.approx(100_000 * 0.000072 + 8.30 + 1_000_000 * 0.0000278)


def test_ibkr_fixed_by_name_passes_the_regulatory_fees_through():
    model = commission_model(" IBKR-Fixed ")
    assert model == FixedCommission() == ReExported()
    assert isinstance(model, DetailedCommissionModel)
    assert not isinstance(PerShareCommission(), DetailedCommissionModel)  # the commission alone, as before


def test_bad_rates_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"FixedRates\.sec_per_dollar_sold"):
        FixedRates(sec_per_dollar_sold=math.nan)
    with pytest.raises(ConfigError, match="takes a FixedRates"):
        FixedCommission(rates=0.005)  # type: ignore[arg-type]


class RoundTrip(Strategy):
    def on_data(self, timestamp, data):
        n = len(data)
        if n == 1:
            return [Order("X", 1_000, "market", "buy")]
        if n == 3:
            return [Order("X", 1_000, "market", "sell")]
        return None


def test_a_backtest_with_ibkr_fixed_pays_the_fees_on_the_sale():
    # accounting arithmetic (fees and equity), not fill prices: no spread
    engine = BacktestEngine(100_000, commission="ibkr-fixed", slippage=0, spread=None)
    engine.add_strategy(RoundTrip())
    result = engine.run(data=flat_bars([25.0] * 5), symbols=["X"])
    buy, sell = result.fills
    assert (buy.commission, buy.fees) == (pytest.approx(5.0 + 0.072), pytest.approx(0.072))
    assert sell.fees == pytest.approx(0.072 + 0.166 + 0.695)
    assert sell.commission == pytest.approx(5.0 + sell.fees)  # a fill's commission is everything it cost
    assert result.final_value == pytest.approx(100_000 - buy.commission - sell.commission)


@given(
    st.floats(min_value=0.01, max_value=5_000),
    st.floats(min_value=0, max_value=1e7),
    st.sampled_from([BUY, SELL]),
)
def test_fixed_costs_are_never_negative_and_a_sale_costs_at_least_a_buy(price, quantity, side):
    fixed = FixedCommission()
    costs = fixed.order_costs(price, quantity, side, 0)
    assert costs.commission >= 0
    assert costs.fees >= 0
    assert (
        fixed.order_costs(price, quantity, SELL, 0).total >= fixed.order_costs(price, quantity, BUY, 0).total
    )


def test_the_meter_prices_each_execution_of_an_order_to_add_up():
    meter = CostMeter(FixedCommission())
    from datetime import UTC, datetime

    when = datetime(2024, 3, 4, 15, tzinfo=UTC)
    first = meter.charge(25.0, 400, SELL, when)
    second = meter.charge(25.0, 600, SELL, when, filled_before=400, avg_price_before=25.0)
    whole = FixedCommission().order_costs(25.0, 1_000, SELL, 0)
    assert first.total + second.total == pytest.approx(whole.total)
