"""Trading futures and forex at the simulated gateway with the unmodified ib_async client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import IB, ContFuture, Forex, Future, LimitOrder, MarketOrder, Order

from tests.gateway.conftest import wait_until
from tests.gateway.fut_fx_feed import FutFxFeed

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

START = "2026-11-02 16:00"


@pytest.fixture
def fx_gateway() -> Iterator[GatewayServer]:
    with running_gateway(data=FutFxFeed(), start=START, cash=100_000.0) as gw:
        yield gw


@pytest.fixture
def ib(fx_gateway: GatewayServer) -> Iterator[IB]:
    with connected_ib(fx_gateway, client_id=4) as client:
        yield client


def _values(ib: IB) -> dict[tuple[str, str], str]:
    return {(v.tag, v.currency): v.value for v in ib.accountValues()}


def _fill(ib: IB, gw: GatewayServer, contract, order):
    trade = ib.placeOrder(contract, order)
    assert wait_until(ib, lambda: trade.orderStatus.status in ("Submitted", "Cancelled"))
    gw.clock.step()
    assert wait_until(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills)
    assert wait_until(ib, lambda: all(f.commissionReport.execId for f in trade.fills))
    return trade


def test_futures_trade_whole_contracts_with_multiplier_and_margin(ib: IB, fx_gateway: GatewayServer) -> None:
    [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    trade = _fill(ib, fx_gateway, mes, MarketOrder("BUY", 2))
    price = trade.orderStatus.avgFillPrice
    assert trade.fills[0].commissionReport.commission == pytest.approx(2 * 0.62)
    assert wait_until(ib, lambda: any(p.position == 2 for p in ib.positions()))
    [position] = ib.positions()
    assert position.contract.localSymbol == "MESZ6"
    assert position.contract.secType == "FUT"
    assert position.contract.multiplier == "5"
    assert position.avgCost == pytest.approx(price * 5)  # IB: a future's avgCost includes the multiplier
    assert wait_until(ib, lambda: ib.portfolio() and ib.portfolio()[0].marketPrice > 0)
    [item] = ib.portfolio()
    assert item.marketValue == pytest.approx(2 * item.marketPrice * 5)
    values = _values(ib)
    assert float(values[("InitMarginReq", "USD")]) == pytest.approx(2 * 2_500)
    assert float(values[("MaintMarginReq", "USD")]) == pytest.approx(2 * 2_270)
    assert float(values[("GrossPositionValue", "USD")]) == 0.0
    # no notional left the account: only the commission
    assert float(values[("TotalCashValue", "USD")]) == pytest.approx(100_000 - 1.24)
    close = _fill(ib, fx_gateway, mes, MarketOrder("SELL", 2))
    realized = close.fills[0].commissionReport.realizedPNL
    exit_price = close.orderStatus.avgFillPrice
    assert realized == pytest.approx((exit_price - price) * 2 * 5 - 1.24)
    assert wait_until(ib, lambda: not ib.positions() or ib.positions()[0].position == 0)


def test_futures_refuse_fractions_off_tick_prices_and_continuous_contracts(ib: IB) -> None:
    [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((code, text))
    half = ib.placeOrder(mes, MarketOrder("BUY", 1.5))
    assert wait_until(ib, lambda: half.orderStatus.status == "Cancelled")
    assert any(code == 201 and "whole contracts" in text for code, text in errors)
    off_tick = ib.placeOrder(mes, LimitOrder("BUY", 1, 5000.10))
    assert wait_until(ib, lambda: off_tick.orderStatus.status == "Cancelled")
    assert any(code == 110 and "minimum tick 0.25" in text for code, text in errors)
    [cont] = ib.qualifyContracts(ContFuture("MES", "CME"))
    rolling = ib.placeOrder(cont, MarketOrder("BUY", 1))
    assert wait_until(ib, lambda: rolling.orderStatus.status == "Cancelled")
    assert any(code == 201 and "CONTFUT" in text for code, text in errors)


def test_forex_by_cash_quantity_moves_two_balances(ib: IB, fx_gateway: GatewayServer) -> None:
    [eur] = ib.qualifyContracts(Forex("EURUSD"))
    ticker = ib.reqMktData(eur)
    assert wait_until(ib, lambda: ticker.bid > 0)
    quoted = ticker.bid
    order = Order(action="BUY", orderType="MKT", totalQuantity=0, cashQty=20_000)
    trade = _fill(ib, fx_gateway, eur, order)
    bought = trade.orderStatus.filled
    price = trade.orderStatus.avgFillPrice
    assert bought == int(20_000 / quoted)  # whole euros for 20,000 dollars at the quote it was sized at
    assert trade.order.cashQty == 20_000
    assert trade.fills[0].commissionReport.commission == pytest.approx(2.00)  # IB's minimum per order
    assert wait_until(ib, lambda: ("CashBalance", "EUR") in _values(ib))
    values = _values(ib)
    assert float(values[("CashBalance", "EUR")]) == pytest.approx(bought)
    assert float(values[("CashBalance", "USD")]) == pytest.approx(100_000 - bought * price - 2.0, abs=0.01)
    rate = float(values[("ExchangeRate", "EUR")])
    assert 0.5 < rate < 2.0
    base_cash = float(values[("CashBalance", "BASE")])
    assert base_cash == pytest.approx(float(values[("CashBalance", "USD")]) + bought * rate, abs=0.05)
    [position] = [p for p in ib.positions() if p.contract.secType == "CASH"]
    assert (position.contract.symbol, position.contract.localSymbol, position.position) == (
        "EUR",
        "EUR.USD",
        bought,
    )


def test_cash_quantity_is_refused_where_it_is_not_honoured(ib: IB) -> None:
    [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((code, text))
    trade = ib.placeOrder(mes, Order(action="BUY", orderType="MKT", totalQuantity=0, cashQty=10_000))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert any(code == 201 and "cashQty" in text for code, text in errors)


def test_what_if_shows_futures_margin_and_forex_commission(ib: IB) -> None:
    [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
    [eur] = ib.qualifyContracts(Forex("EURUSD"))
    ticker = ib.reqMktData(eur)
    assert wait_until(ib, lambda: ticker.bid > 0)
    state = ib.whatIfOrder(mes, MarketOrder("BUY", 3))
    assert float(state.initMarginChange) == pytest.approx(3 * 2_500)
    assert float(state.maintMarginChange) == pytest.approx(3 * 2_270)
    assert state.commission == pytest.approx(3 * 0.62)
    assert state.commissionCurrency == "USD"
    fx = ib.whatIfOrder(eur, MarketOrder("BUY", 25_000))
    assert fx.commission == pytest.approx(2.00)
    big = ib.whatIfOrder(eur, MarketOrder("BUY", 50_000_000))
    assert big.commission == pytest.approx(50_000_000 * ticker.bid * 0.2 / 10_000, rel=1e-3)


def test_futures_buying_power_is_initial_margin(fx_gateway: GatewayServer) -> None:
    with connected_ib(fx_gateway, client_id=9) as ib:
        [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
        errors: list[str] = []
        ib.errorEvent += lambda req_id, code, text, contract: errors.append(text)
        # 41 contracts need 102,500 of initial margin; the account has 100,000
        trade = ib.placeOrder(mes, MarketOrder("BUY", 41))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
        assert any("insufficient buying power" in t and "initial margin" in t for t in errors)
        ok = ib.placeOrder(mes, MarketOrder("BUY", 39))
        assert wait_until(ib, lambda: ok.orderStatus.status == "Submitted")


def test_a_restart_keeps_futures_positions_and_currency_balances(tmp_path) -> None:
    state = tmp_path / "gw.json"
    with running_gateway(data=FutFxFeed(), start=START, state_file=state) as gw, connected_ib(gw) as ib:
        [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
        [eur] = ib.qualifyContracts(Forex("EURUSD"))
        _fill(ib, gw, mes, MarketOrder("BUY", 1))
        _fill(ib, gw, eur, MarketOrder("BUY", 30_000))
        before = _values(ib)
    with running_gateway(data=FutFxFeed(), state_file=state) as gw, connected_ib(gw) as ib:
        assert wait_until(ib, lambda: len(ib.positions()) == 2)
        held = {p.contract.localSymbol: p.position for p in ib.positions()}
        assert held == {"MESZ6": 1, "EUR.USD": 30_000}
        after = _values(ib)
        assert after[("CashBalance", "EUR")] == before[("CashBalance", "EUR")] == "30000.00"
        assert after[("CashBalance", "USD")] == before[("CashBalance", "USD")]
        [again] = ib.qualifyContracts(Future(conId=mes.conId))
        assert again.localSymbol == "MESZ6"


def _step_past(gw: GatewayServer, day: date) -> None:
    """Step the replay until its New York date is after ``day``."""
    for _ in range(20):
        if gw.core.market_date() > day:
            return
        gw.clock.step()
    raise AssertionError(f"the replay did not pass {day}")


def test_an_expired_contract_no_longer_trades() -> None:
    # the replay starts on the September contract's last trade date and steps past it
    with running_gateway(data=FutFxFeed(), start="2026-09-18 16:00") as gw, connected_ib(gw) as ib:
        [sep] = ib.qualifyContracts(Future("MES", "202609", "CME"))
        assert sep is not None
        _step_past(gw, date(2026, 9, 18))
        errors: list[str] = []
        ib.errorEvent += lambda req_id, code, text, contract: errors.append(text)
        trade = ib.placeOrder(sep, MarketOrder("BUY", 1))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
        assert any("MESU6 expired: its last trade date was 20260918" in t for t in errors)


def test_a_position_held_to_its_last_trade_date_settles_in_cash() -> None:
    with running_gateway(data=FutFxFeed(), start="2026-09-16 16:00") as gw, connected_ib(gw) as ib:
        [sep] = ib.qualifyContracts(Future("MES", "202609", "CME"))
        trade = _fill(ib, gw, sep, MarketOrder("BUY", 1))
        resting = ib.placeOrder(sep, LimitOrder("BUY", 1, 1000.0, tif="GTC"))
        assert wait_until(ib, lambda: resting.orderStatus.status == "Submitted")
        assert wait_until(ib, lambda: ib.positions() and ib.positions()[0].position == 1)
        _step_past(gw, date(2026, 9, 18))  # the September contract's last trade date
        assert wait_until(ib, lambda: not ib.positions())
        assert wait_until(ib, lambda: resting.orderStatus.status == "Cancelled")
        last = gw.core.market.quotes["MESU6"].last
        values = _values(ib)
        realized = (last - trade.orderStatus.avgFillPrice) * 5 - 0.62
        assert float(values[("RealizedPnL", "USD")]) == pytest.approx(realized, abs=0.01)
        assert float(values[("InitMarginReq", "USD")]) == 0.0


def test_a_root_without_known_fees_is_refused_by_name(ib: IB) -> None:
    [zn] = ib.qualifyContracts(Future("ZN", "202612", "CBOT"))
    ticker = ib.reqMktData(zn)
    assert wait_until(ib, lambda: ticker.last > 0)
    errors: list[str] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append(text)
    trade = ib.placeOrder(zn, MarketOrder("BUY", 1))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert any("no exchange fee known for futures root 'ZN'" in t for t in errors)


def test_a_futures_day_order_ends_at_cmes_close() -> None:
    # only MES trades: the replay steps from one CME close (16:00 Chicago) to the next
    with running_gateway(data=FutFxFeed(), start="2026-11-02 16:00") as gw, connected_ib(gw) as ib:
        [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
        day = ib.placeOrder(mes, LimitOrder("BUY", 1, 1000.0, tif="DAY"))
        gtc = ib.placeOrder(mes, LimitOrder("BUY", 1, 1000.0, tif="GTC"))
        assert wait_until(ib, lambda: day.orderStatus.status == gtc.orderStatus.status == "Submitted")
        gw.clock.step()
        assert wait_until(ib, lambda: day.orderStatus.status == "Cancelled")
        assert gtc.orderStatus.status == "Submitted"
