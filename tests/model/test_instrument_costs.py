"""IBKR futures and forex costs, checked against worked examples built from IB's pricing pages."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.model.cost_meter import CostMeter
from copilot_quant.model.costs import DetailedCommissionModel, PerShareCommission
from copilot_quant.model.instrument_costs import (
    ForexCommission,
    FuturesCommission,
    InstrumentCosts,
    costs_for,
)
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.orders import OrderSide

REGISTRY = InstrumentRegistry(reference=date(2026, 12, 1))


def test_one_es_contract_pays_commission_exchange_and_nfa_fees():
    model = costs_for(REGISTRY.resolve("ESZ6"))
    # 0.85 IB commission + 1.38 CME exchange fee + 0.02 NFA fee per side
    assert model.commission(6000.0, 1) == pytest.approx(2.25)
    assert model.commission(6000.0, 4) == pytest.approx(9.00)
    costs = model.order_costs(6000.0, 4, OrderSide.SELL, 0.0)
    assert costs.commission == pytest.approx(3.40)
    assert costs.fees == pytest.approx(5.60)


def test_a_micro_pays_the_micro_column_and_its_own_exchange_fee():
    model = costs_for(REGISTRY.resolve("MES"))
    assert model.commission(6000.0, 1) == pytest.approx(0.25 + 0.35 + 0.02)
    assert model.commission(6000.0, 10) == pytest.approx(6.20)


def test_tiers_are_marginal_over_the_month_as_ibs_example_says():
    # IB's example: of 1,500 contracts in a month, 1,000 pay the first tier and 500 the second
    model = FuturesCommission.ibkr("ES")
    costs = model.order_costs(6000.0, 1_500, OrderSide.BUY, 0.0)
    assert costs.commission == pytest.approx(1_000 * 0.85 + 500 * 0.65)
    assert costs.fees == pytest.approx(1_500 * 1.40)
    # a trader already at 9,990 contracts this month: 10 at 0.65, then 0.45
    assert model.order_costs(6000.0, 30, OrderSide.BUY, 9_990).commission == pytest.approx(
        10 * 0.65 + 20 * 0.45
    )
    assert model.order_costs(6000.0, 5, OrderSide.BUY, 50_000).commission == pytest.approx(5 * 0.25)


def test_fixed_plan_charges_the_flat_rate_at_any_volume():
    model = FuturesCommission.ibkr("NQ", plan="fixed")
    assert model.order_costs(20_000.0, 3, OrderSide.BUY, 25_000).commission == pytest.approx(2.55)
    with pytest.raises(ConfigError, match="'tiered' or 'fixed'"):
        FuturesCommission.ibkr("NQ", plan="flat")


def test_the_cost_meter_counts_contracts_into_the_tiers():
    model = FuturesCommission.ibkr("CL")
    assert isinstance(model, DetailedCommissionModel)
    meter = CostMeter(model)
    when = datetime(2026, 12, 7, 15, tzinfo=UTC)
    first = meter.charge(70.0, 1_000, OrderSide.BUY, when)
    assert first.commission == pytest.approx(850.0)
    second = meter.charge(70.0, 1, OrderSide.BUY, when)
    assert second.commission == pytest.approx(0.65)
    assert second.fees == pytest.approx(1.52)


def test_a_root_without_a_cited_exchange_fee_is_refused_until_given():
    with pytest.raises(ConfigError, match=r"no exchange fee known for futures root 'ZN'.*exchange_fees"):
        costs_for(REGISTRY.resolve("ZNZ6"))
    costs = InstrumentCosts(exchange_fees={"ZN": 0.80})
    assert costs.for_instrument(REGISTRY.resolve("ZNZ6")).commission(112.0, 1) == pytest.approx(1.67)
    assert costs.for_instrument(REGISTRY.resolve("ESZ6")).commission(6000.0, 1) == pytest.approx(2.25)  # kept


def test_forex_pays_a_fifth_of_a_basis_point_with_a_two_dollar_minimum():
    model = costs_for(REGISTRY.resolve("EUR.USD"))
    # IB's example: 100,000 units cost USD 2.00 (0.2 bp of 100,000 is exactly the minimum)
    assert ForexCommission("USD", "EUR", usd_per_quote=None).commission(0.92, 100_000) == pytest.approx(2.00)
    # 1,000,000 EUR at 1.10 is USD 1.1 m: 0.2 bp = USD 22.00
    assert model.commission(1.10, 1_000_000) == pytest.approx(22.00)
    # 20,000 EUR: 0.2 bp would be USD 0.44; the minimum applies
    assert model.commission(1.10, 20_000) == pytest.approx(2.00)
    assert model.commission(1.10, -1_000_000) == pytest.approx(22.00)


def test_forex_values_trades_in_usd_whichever_leg_is_usd():
    usd_jpy = costs_for(REGISTRY.resolve("USD.JPY"))
    assert usd_jpy.commission(150.0, 2_000_000) == pytest.approx(40.00)  # USD 2 m bought
    with pytest.raises(ConfigError, match="usd_per_quote"):
        costs_for(REGISTRY.resolve("EUR.GBP"))
    eur_gbp = ForexCommission("EUR", "GBP", usd_per_quote=1.25)
    assert eur_gbp.commission(0.85, 2_000_000) == pytest.approx(2_000_000 * 0.85 * 1.25 * 0.00002)
    cross = InstrumentCosts(usd_per_currency={"GBP": 1.25}).for_instrument(REGISTRY.resolve("EUR.GBP"))
    assert cross.commission(0.85, 2_000_000) == pytest.approx(eur_gbp.commission(0.85, 2_000_000))


def test_forex_tiers_follow_the_months_usd_trade_value():
    pair = REGISTRY.resolve("EUR.USD")
    assert ForexCommission.ibkr(pair, 1.5e9).bps == 0.15
    assert ForexCommission.ibkr(pair, 1.5e9).minimum == 1.50
    assert ForexCommission.ibkr(pair, 6e9).commission(1.10, 10_000) == pytest.approx(1.00)


def test_stocks_keep_the_configured_model_and_overrides_win():
    stock_model = PerShareCommission()
    costs = InstrumentCosts(stocks=stock_model, overrides={"MES": PerShareCommission()})
    assert costs.for_instrument(REGISTRY.resolve("AAPL")) is stock_model
    assert isinstance(costs.for_instrument(REGISTRY.resolve("MESZ6")), PerShareCommission)
    assert costs_for(REGISTRY.resolve("AAPL")).commission(100.0, 10) == 0.0
