"""One bracket rule, two walkers: the backtest's order book over each bar's path and the simulated gateway's
broker price by price (a gap at each bar's open) fill the same bracket orders at the same prices on the
same bars — including bars on which the entry and an exit both trade (model/bracket.py's no-look-ahead
rule)."""

from __future__ import annotations

import pandas as pd
from copilot_quant.backtest.costs import ZeroCommission
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.gateway.broker import SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.orders import PlaceOrderRequest
from copilot_quant.model.fill_rules import price_path
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.backtest.engine_helpers import daily_bars
from tests.backtest.test_strategy_cancel import PandasScript

AAPL = ContractInfo.for_symbol("X")

ohlc = st.tuples(*(st.integers(9_000, 11_000) for _ in range(4))).map(
    lambda t: (t[0] / 100, max(t) / 100, min(t) / 100, t[3] / 100)
)


def _backtest(rows, terms) -> list[tuple[int, str, float, float]]:
    def act(strategy, bar):
        return (
            Order.bracket("X", 10, terms["side"], time_in_force="gtc", **terms["prices"])
            if bar == 0
            else None
        )

    engine = BacktestEngine(10_000_000, commission=0, slippage=0)
    engine.add_strategy(PandasScript(act))
    data = daily_bars(rows)
    result = engine.run(data=data, symbols=["X"])
    index = {ts: i for i, ts in enumerate(data.index)}
    return [
        (index[pd.Timestamp(f.timestamp)], f.side.value, f.fill_quantity, f.fill_price) for f in result.fills
    ]


def _gateway(rows, terms) -> list[tuple[int, str, float, float]]:
    broker = SimBroker(commission=ZeroCommission(), cash=10_000_000)
    side = terms["side"].upper()
    exit_side = "SELL" if side == "BUY" else "BUY"
    prices = terms["prices"]
    entry_kind = "LMT" if prices.get("limit_price") else "MKT"

    def request(order_id, action, kind, *, lmt=None, aux=None, parent=0, transmit=True):
        contract = ContractRequest(symbol="X")
        return PlaceOrderRequest(
            order_id, contract, action, 10, kind, lmt, aux, "GTC", parent_id=parent, transmit=transmit
        )

    broker.place_order(1, request(1, side, entry_kind, lmt=prices.get("limit_price"), transmit=False), AAPL)
    broker.place_order(
        1, request(2, exit_side, "LMT", lmt=prices["take_profit"], parent=1, transmit=False), AAPL
    )
    broker.place_order(1, request(3, exit_side, "STP", aux=prices["stop_loss"], parent=1), AAPL)
    stamps = daily_bars(rows).index
    for b, (o, h, low, c) in enumerate(rows[1:], start=1):
        for at, price in enumerate(price_path(o, h, low, c)):
            broker.on_price("X", price, stamps[b].to_pydatetime(), gap=at == 0)
    times = {ts.to_pydatetime(): i for i, ts in enumerate(stamps)}
    return [
        (times[e.time], "buy" if e.side == "BOT" else "sell", e.shares, e.price) for e in broker.executions()
    ]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(ohlc, min_size=2, max_size=6),
    side=st.sampled_from(["buy", "sell"]),
    market=st.booleans(),
    entry=st.integers(9_500, 10_500),
    width=st.integers(50, 800),
)
def test_the_backtest_walk_and_the_gateway_ticks_fill_a_bracket_alike(rows, side, market, entry, width):
    sign = 1 if side == "buy" else -1
    level = entry / 100
    prices = {
        "limit_price": None if market else level,
        "take_profit": round(level + sign * width / 100, 2),
        "stop_loss": round(level - sign * width / 200, 2),
    }
    terms = {"side": side, "prices": prices}
    assert _backtest(rows, terms) == _gateway(rows, terms)


def test_both_walkers_stop_out_at_the_low_when_entry_and_stop_trade_on_one_move():
    rows = [(100.0, 101.0, 99.0, 100.0), (100.0, 101.0, 88.0, 89.0), (89.0, 120.0, 89.0, 115.0)]
    terms = {"side": "buy", "prices": {"limit_price": 95.0, "take_profit": 110.0, "stop_loss": 90.0}}
    expected = [(1, "buy", 10.0, 95.0), (1, "sell", 10.0, 88.0)]  # the take-profit (bar 2) never fills
    assert _backtest(rows, terms) == _gateway(rows, terms) == expected
