"""Futures and forex on the backtest account, with every figure computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
from copilot_quant.backtest.accounts import (
    MARGIN_REJECT,
    InstrumentAccounts,
    PerContractCommission,
    with_margins,
)
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError
from copilot_quant.model.costs import NoSlippage
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.orders import Order, OrderStatus
from copilot_quant.model.spread import SpreadModel, with_spread

REG = InstrumentRegistry(reference=date(2026, 12, 7))
NOW = datetime(2026, 12, 7, 15, tzinfo=UTC)


def _broker(capital: float, *, per_contract: float = 2.0, registry: InstrumentRegistry = REG) -> SimpleBroker:
    accounts = InstrumentAccounts(registry, futures_commission=PerContractCommission(per_contract))
    return SimpleBroker(capital, commission=0.001, slippage=0.0, instruments=accounts)


def test_an_es_round_trip_pays_points_times_50_and_moves_cash_only_by_pnl_and_commission() -> None:
    broker = _broker(100_000)
    buy = broker.execute_order(Order("ESZ6", 2), 6000.0, NOW)
    assert buy is not None
    assert buy.commission == 4.0
    # no notional leaves the account: only the commission
    assert broker.cash == 99_996.0
    broker.mark("ESZ6", 6010.0)
    pos = broker.get_positions()["ESZ6"]
    assert pos.multiplier == 50.0
    assert pos.unrealized_pnl == 2 * 10.0 * 50  # 1,000
    assert pos.market_value == 2 * 6010.0 * 50  # the notional, as IB reports it
    assert broker.get_account_value() == 99_996.0 + 1_000.0
    assert broker.margin_requirement() == 2 * 25_000.0
    assert broker.maintenance_requirement() == 2 * 22_700.0
    sell = broker.execute_order(Order("ESZ6", 2, side="SELL"), 6012.5, NOW)
    assert sell is not None
    # realized 2 × 12.5 points × 50 = 1,250, less 4 of commission
    assert broker.cash == 99_996.0 + 1_250.0 - 4.0 == 101_242.0
    assert broker.get_account_value() == 101_242.0
    assert "ESZ6" not in broker.get_positions()


def test_an_order_whose_initial_margin_exceeds_equity_is_rejected_and_closing_is_always_allowed() -> None:
    broker = _broker(30_000)
    assert broker.execute_order(Order("ESZ6", 1), 6000.0, NOW) is not None
    second = Order("ESZ6", 1)
    assert broker.execute_order(second, 6000.0, NOW) is None
    assert second.status is OrderStatus.REJECTED
    assert second.reject_reason is not None
    assert second.reject_reason.startswith(MARGIN_REJECT)
    assert "50,000.00" in second.reject_reason  # two contracts × 25,000
    # a loss takes equity below the margin of the one contract held: closing still goes through
    broker.mark("ESZ6", 5900.0)
    assert broker.get_account_value() == 30_000.0 - 2.0 - 100 * 50
    assert broker.execute_order(Order("ESZ6", 1, side="SELL"), 5900.0, NOW) is not None
    assert broker.cash == 30_000.0 - 2.0 - 5_000.0 - 2.0


def test_margins_are_configurable_per_root() -> None:
    registry = with_margins(REG, {"ES": (10_000, 9_000)})
    broker = _broker(30_000, registry=registry)
    assert broker.execute_order(Order("ESZ6", 2), 6000.0, NOW) is not None
    assert broker.maintenance_requirement() == 18_000.0
    with pytest.raises(ConfigError, match="maintenance <= initial"):
        with_margins(REG, {"ES": (1_000, 2_000)})


def test_a_short_future_gains_when_the_price_falls() -> None:
    broker = _broker(100_000, per_contract=0.0)
    broker.execute_order(Order("MESZ6", 3, side="SELL"), 6000.0, NOW)
    broker.mark("MESZ6", 5990.0)
    assert broker.get_account_value() == 100_000.0 + 3 * 10 * 5.0
    broker.execute_order(Order("MESZ6", 3), 5980.0, NOW)
    assert broker.cash == 100_000.0 + 3 * 20 * 5.0


def test_a_eur_usd_round_trip_keeps_cash_in_each_currency_and_equity_in_usd() -> None:
    broker = SimpleBroker(100_000, commission=0.001, slippage=0.0, instruments=InstrumentAccounts(REG))
    buy = broker.execute_order(Order("EUR.USD", 10_000), 1.1, NOW)
    assert buy is not None
    # IB's 0.2 bp of 11,000 USD is 0.22: the 2.00 minimum applies
    assert buy.commission == 2.0
    assert broker.cash_balances() == pytest.approx({"USD": 100_000 - 11_000 - 2.0, "EUR": 10_000})
    broker.mark("EUR.USD", 1.105)
    # equity = 88,998 USD + 10,000 EUR × 1.105
    assert broker.get_account_value() == pytest.approx(88_998.0 + 11_050.0)
    assert broker.cash == pytest.approx(100_048.0)  # the balances' total in USD
    assert broker.get_positions()["EUR.USD"].unrealized_pnl == pytest.approx(50.0)
    sell = broker.execute_order(Order("EUR.USD", 10_000, side="SELL"), 1.11, NOW)
    assert sell is not None
    assert broker.cash_balances() == pytest.approx({"USD": 88_998.0 + 11_100.0 - 2.0, "EUR": 0.0})
    assert broker.get_account_value() == pytest.approx(100_096.0)


def test_a_forex_position_needs_only_its_margin_fraction() -> None:
    accounts = InstrumentAccounts(REG, forex_margin=0.05)
    broker = SimpleBroker(10_000, commission=0.0, slippage=0.0, instruments=accounts)
    # 100,000 EUR at 1.1 is 110,000 USD of notional: 5,500 of margin
    assert broker.execute_order(Order("EUR.USD", 100_000), 1.1, NOW) is not None
    too_much = Order("EUR.USD", 100_000)
    assert broker.execute_order(too_much, 1.1, NOW) is None
    assert (too_much.reject_reason or "").startswith(MARGIN_REJECT)
    # 0.2 bp of 110,000 USD is 2.20, above the minimum
    assert broker.cash_balances()["USD"] == pytest.approx(10_000 - 110_000 - 2.2)


def test_usd_jpy_converts_yen_at_the_inverse_rate() -> None:
    broker = SimpleBroker(100_000, commission=0.0, slippage=0.0, instruments=REG)
    broker.execute_order(Order("USD.JPY", 1_000, side="SELL"), 150.0, NOW)  # sell USD, buy yen
    assert broker.cash_balances() == pytest.approx({"USD": 100_000 - 1_000 - 2.0, "JPY": 150_000})
    broker.mark("USD.JPY", 125.0)
    assert broker.get_account_value() == pytest.approx(100_000 - 1_000 - 2.0 + 150_000 / 125.0)


def test_stocks_in_an_account_with_no_future_keep_the_cash_rule() -> None:
    broker = _broker(10_000)
    order = Order("AAPL", 100)
    assert broker.execute_order(order, 150.0, NOW) is None
    assert (order.reject_reason or "").startswith("insufficient cash")


def test_by_default_futures_pay_ibs_tiered_commission_plus_exchange_and_nfa_fees() -> None:
    broker = SimpleBroker(100_000, commission=0.001, slippage=0.0, instruments=REG)
    fill = broker.execute_order(Order("ESZ6", 2), 6000.0, NOW)
    assert fill is not None
    # IB Tiered: 0.85 per contract in a month's first 1,000, plus CME's 1.38 and the NFA's 0.02
    assert fill.commission == pytest.approx(2 * (0.85 + 1.38 + 0.02))
    assert fill.fees == pytest.approx(2 * (1.38 + 0.02))
    micro = broker.execute_order(Order("MESZ6", 4), 6000.0, NOW)
    assert micro is not None
    assert micro.commission == pytest.approx(4 * (0.25 + 0.35 + 0.02))


def test_a_root_without_a_known_exchange_fee_is_refused_before_the_run() -> None:
    from copilot_quant.backtest.engine import BacktestEngine

    index = pd.date_range("2026-12-01", periods=2, freq="B", tz="UTC")
    bars = pd.DataFrame({"Open": 110.0, "High": 110.0, "Low": 110.0, "Close": 110.0}, index=index)
    engine = BacktestEngine(100_000, instruments=REG)
    engine.add_strategy(_Idle())
    with pytest.raises(ConfigError, match="exchange fee"):
        engine.run(symbols=["ZNH7"], data=bars)
    # with one model for every contract it runs
    engine = BacktestEngine(
        100_000, instruments=InstrumentAccounts(REG, futures_commission=PerContractCommission(1.0))
    )
    engine.add_strategy(_Idle())
    assert len(engine.run(symbols=["ZNH7"], data=bars).equity_curve) == 2


def test_a_cross_pair_is_charged_on_its_usd_value_at_the_quote_currencys_rate() -> None:
    broker = SimpleBroker(1_000_000, commission=0.0, slippage=0.0, instruments=REG)
    assert broker.accounts is not None
    broker.accounts.observe("GBP.USD", 1.25)  # prices seen, no position: the rates of GBP and EUR
    broker.accounts.observe("EUR.USD", 1.0625)
    fill = broker.execute_order(Order("EUR.GBP", 10_000_000), 0.85, NOW)
    assert fill is not None
    # 10m EUR at 0.85 GBP is 8.5m GBP, 10.625m USD: 0.2 bp of it
    assert fill.commission == pytest.approx(10_625_000 * 0.2e-4)


class _Idle(Strategy):
    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> None:
        return None


def test_the_plain_slippage_call_quotes_a_future_and_a_pair_in_their_own_ticks() -> None:
    """``calculate_slippage`` (the broker interface's one-price call) with a spread on: a future's touch is
    a whole number of its 0.25 ticks away, a pair's of its 0.00005 — not the stock grid's cents."""
    broker = _broker(1_000_000)
    broker.slippage_model = with_spread(NoSlippage(), SpreadModel(ticks=2))
    assert broker.calculate_slippage(Order("MESZ6", 1), 6000.0) == 6000.25  # ask: one tick over the bid
    assert broker.calculate_slippage(Order("MESZ6", 1, side="sell"), 6000.0) == 5999.75
    assert broker.calculate_slippage(Order("EUR.USD", 20_000), 1.1) == pytest.approx(1.10005)
    assert broker.calculate_slippage(Order("AAPL", 10), 100.0) == 100.01  # a stock keeps the cent grid
