"""Futures and forex on the backtest account, with every figure computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from copilot_quant.backtest.accounts import (
    MARGIN_REJECT,
    ForexCommission,
    InstrumentAccounts,
    PerContractCommission,
    with_margins,
)
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.errors import ConfigError
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.orders import Order, OrderStatus

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
    broker = SimpleBroker(
        100_000, commission=0.001, slippage=0.0, instruments=InstrumentAccounts(REG, ForexCommission())
    )
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
