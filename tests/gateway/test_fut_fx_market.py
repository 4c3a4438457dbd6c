"""Market data and history of futures and forex at the simulated gateway, through ib_async."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import IB, Forex, Future

from tests.gateway.conftest import wait_until
from tests.gateway.fut_fx_feed import FutFxFeed

START = "2026-11-02 16:00"


def _on_grid(price: float, tick: float) -> bool:
    return abs(price / tick - round(price / tick)) < 1e-6


@pytest.fixture
def fx_gateway() -> Iterator[GatewayServer]:
    with running_gateway(data=FutFxFeed(), start=START) as gw:
        yield gw


@pytest.fixture
def ib(fx_gateway: GatewayServer) -> Iterator[IB]:
    with connected_ib(fx_gateway, client_id=3) as client:
        yield client


def test_forex_quotes_bid_and_ask_but_no_trades(ib: IB, fx_gateway: GatewayServer) -> None:
    [eur] = ib.qualifyContracts(Forex("EURUSD"))
    ticker = ib.reqMktData(eur)
    assert wait_until(ib, lambda: math.isfinite(ticker.bid) and math.isfinite(ticker.ask))
    first_bid = ticker.bid
    fx_gateway.clock.step()
    assert wait_until(ib, lambda: ticker.bid != first_bid)
    assert 0.5 < ticker.bid <= ticker.ask < 2.0
    assert _on_grid(ticker.bid, 0.00005)
    assert _on_grid(ticker.ask, 0.00005)
    assert math.isfinite(ticker.midpoint())
    assert math.isnan(ticker.last)  # IDEALPRO quotes; nothing trades
    assert math.isnan(ticker.volume)


def test_futures_trade_on_their_tick_grid(ib: IB, fx_gateway: GatewayServer) -> None:
    [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    ticker = ib.reqMktData(mes)
    fx_gateway.clock.step()
    assert wait_until(ib, lambda: math.isfinite(ticker.last) and ticker.volume > 0)
    assert ticker.last > 1000
    assert _on_grid(ticker.last, 0.25)
    assert _on_grid(ticker.bid, 0.25)


def test_forex_history_is_midpoint_or_bid_ask_not_trades(ib: IB) -> None:
    [eur] = ib.qualifyContracts(Forex("EURUSD"))
    bars = ib.reqHistoricalData(eur, "", "10 D", "1 day", "MIDPOINT", useRTH=False)
    assert 9 <= len(bars) <= 10  # forex days end at 17:00 New York: the day in progress is not a bar yet
    for bar in bars:
        assert bar.volume == -1  # quote bars carry no volume
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert all(_on_grid(p, 0.00005) for p in (bar.open, bar.high, bar.low, bar.close))
    assert ib.reqHistoricalData(eur, "", "10 D", "1 day", "BID_ASK", useRTH=False)
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((code, text))
    assert len(ib.reqHistoricalData(eur, "", "10 D", "1 day", "TRADES", useRTH=False)) == 0
    assert errors
    assert errors[0][0] == 162
    assert "No historical market data for EUR/CASH@FXSUBPIP Last 1day" in errors[0][1]


def test_futures_history_has_whole_contract_volumes(ib: IB) -> None:
    [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    bars = ib.reqHistoricalData(mes, "", "5 D", "1 day", "TRADES", useRTH=False)
    assert 4 <= len(bars) <= 5  # CME days end at 16:00 Chicago: the day in progress is not a bar yet
    assert all(bar.volume >= 1 and float(bar.volume).is_integer() for bar in bars)
    assert all(_on_grid(p, 0.25) for bar in bars for p in (bar.open, bar.high, bar.low, bar.close))


def test_a_restarted_gateway_prices_a_pair_it_knew(tmp_path) -> None:
    state = tmp_path / "gw.json"
    with running_gateway(data=FutFxFeed(), start=START, state_file=state) as gw, connected_ib(gw) as ib:
        [eur] = ib.qualifyContracts(Forex("EURUSD"))
        ticker = ib.reqMktData(eur)
        assert wait_until(ib, lambda: math.isfinite(ticker.bid))
        gw.broker.save()
    with running_gateway(data=FutFxFeed(), state_file=state) as gw, connected_ib(gw) as ib:
        ticker = ib.reqMktData(eur)
        assert wait_until(ib, lambda: math.isfinite(ticker.bid))
        assert _on_grid(ticker.bid, 0.00005)
        assert 0.5 < ticker.bid < 2.0


def test_the_wall_clock_market_trades_futures_on_their_tick_grid() -> None:
    with (
        running_gateway(data=FutFxFeed(), clock="wall", bar_interval="1m") as gw,
        connected_ib(gw, client_id=5) as ib,
    ):
        [mes] = ib.qualifyContracts(Future("MES", exchange="CME", lastTradeDateOrContractMonth="202703"))
        ticker = ib.reqMktData(mes)
        prices: list[float] = []
        ticker.updateEvent += lambda t: prices.append(t.last)
        assert wait_until(ib, lambda: len({p for p in prices if math.isfinite(p)}) >= 2, timeout=10)
        assert all(_on_grid(p, 0.25) for p in prices if math.isfinite(p))


def test_time_passes_after_a_step_but_never_reaches_the_next_bar() -> None:
    import pandas as pd

    with running_gateway(data=FutFxFeed(), symbols=["MESZ6"], start=START) as gw:
        [bar] = gw.clock.step(then_idle=7)
        assert gw.core.now == bar.end + pd.Timedelta(seconds=7)
        following = gw.core.market.next_bar_end()
        gw.clock.step(0, then_idle=10 * 86_400)
        assert bar.end < gw.core.now < following
        [after] = {b.end for b in gw.clock.step()}
        assert after == following  # the next step delivers the next bar as before
