"""The account refresh follows IB's cadence on the market clock (real ib_async client against the gateway).

IB (TWS API reference): reqAccountUpdates values are "updated at a fixed interval of three minutes" unless
a position changes; a portfolio line updates on a trade in its contract or every 3 minutes;
reqAccountSummary sends "every three minutes those values which have changed"; reqPnL is real time. The
``minute_gateway`` replay starts at 19:00 UTC mid-session and steps one minute at a time, so its account
refreshes fall at 19:03, 19:06, 19:09 … of market time.
"""

from __future__ import annotations

import math

import pytest
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import GatewayError
from copilot_quant.gateway.account_cadence import (
    DEFAULT_ACCOUNT_UPDATE_INTERVAL,
    AccountCadenceError,
    AccountRefresh,
    check_interval,
)
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import IB, Contract, MarketOrder, Stock


def _wait(ib: IB, condition, timeout: float = 5.0) -> bool:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        ib.sleep(0.01)
    return condition()


def _sync(ib: IB) -> None:
    """A round trip: everything the gateway sent before it has been read and handled by the client."""
    ib.reqCurrentTime()


def _buy_and_fill(ib: IB, gateway: GatewayServer, contract: Contract, quantity: int = 10) -> None:
    """Buy ``quantity`` at market and step one bar (19:01), which fills it."""
    trade = ib.placeOrder(contract, MarketOrder("BUY", quantity))
    assert _wait(ib, lambda: trade.orderStatus.status == "Submitted")
    gateway.clock.step()
    assert _wait(ib, lambda: trade.orderStatus.status == "Filled")
    _sync(ib)


def _aapl(ib: IB) -> Contract:
    [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    _sync(ib)
    return contract


def test_a_fill_sends_position_portfolio_and_pnl_at_once_and_the_values_at_the_refresh(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        contract = _aapl(ib)
        pnl = ib.reqPnL(ib.managedAccounts()[0])
        _sync(ib)
        tags: list[str] = []
        ib.accountValueEvent += lambda value: tags.append(value.tag)
        _buy_and_fill(ib, minute_gateway, contract)  # 19:01
        # what IB sends on a position change arrives with the fill
        assert [p.position for p in ib.positions() if p.contract.symbol == "AAPL"] == [10]
        assert [i.position for i in ib.portfolio() if i.contract.symbol == "AAPL"] == [10]
        assert pnl.unrealizedPnL == pytest.approx(minute_gateway.broker.pnl().unrealized)
        assert tags == []  # the account values wait for the Account window's refresh
        minute_gateway.clock.step()  # 19:02
        _sync(ib)
        assert tags == []
        minute_gateway.clock.step()  # 19:03: three minutes of market time since the cycle began
        _sync(ib)
        assert {"TotalCashValue", "NetLiquidation", "GrossPositionValue", "BuyingPower"} <= set(tags)
        assert "AccountCode" not in tags  # only what changed
        broker = {(tag, cur): value for tag, value, cur in minute_gateway.broker.account_values()}
        client = {(v.tag, v.currency): v.value for v in ib.accountValues()}
        for key in ("TotalCashValue", "NetLiquidation", "GrossPositionValue", "BuyingPower"):
            assert client[(key, "USD")] == broker[(key, "USD")], key


def test_portfolio_marks_come_every_three_minutes_of_market_time_not_every_bar(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        contract = _aapl(ib)
        _buy_and_fill(ib, minute_gateway, contract)  # 19:01
        marks: list[float] = []
        ib.updatePortfolioEvent += lambda item: marks.append(item.marketPrice)
        closes: dict[int, float] = {}
        for minute in range(2, 11):  # 19:02 … 19:10, one step at a time
            [bar] = [b for b in minute_gateway.clock.step() if b.symbol == "AAPL"]
            closes[minute] = bar.close
            _sync(ib)
        assert marks == [pytest.approx(closes[m]) for m in (3, 6, 9)]


def test_stepping_many_bars_at_once_refreshes_at_the_same_market_instants(minute_gateway):
    """The cadence is market time: nine bars in one call refresh three times, as nine single steps do,
    and wall time passing on a paused clock refreshes nothing."""
    with connected_ib(minute_gateway) as ib:
        contract = _aapl(ib)
        _buy_and_fill(ib, minute_gateway, contract)  # 19:01
        marks: list[float] = []
        ib.updatePortfolioEvent += lambda item: marks.append(item.marketPrice)
        ib.sleep(0.5)  # wall time, paused market: no refresh
        _sync(ib)
        assert marks == []
        bars = [b for b in minute_gateway.clock.step(9) if b.symbol == "AAPL"]  # 19:02 … 19:10
        _sync(ib)
        assert marks == [pytest.approx(bars[i].close) for i in (1, 4, 7)]  # 19:03, 19:06, 19:09


def test_account_summary_sends_the_changed_tags_at_each_refresh(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        contract = _aapl(ib)
        first = {v.tag: v.value for v in ib.accountSummary()}  # the snapshot: every modelled tag
        assert {"AccountType", "NetLiquidation", "TotalCashValue"} <= set(first)
        tags: list[str] = []
        ib.accountSummaryEvent += lambda value: tags.append(value.tag)
        _buy_and_fill(ib, minute_gateway, contract)  # 19:01
        minute_gateway.clock.step()  # 19:02
        _sync(ib)
        assert tags == []
        minute_gateway.clock.step()  # 19:03
        _sync(ib)
        assert {"TotalCashValue", "GrossPositionValue"} <= set(tags)
        assert "AccountType" not in tags  # unchanged tags are not re-sent
        broker = {tag: value for tag, value, _ in minute_gateway.broker.account_summary("TotalCashValue")}
        client = {v.tag: v.value for v in ib.accountSummary()}
        assert client["TotalCashValue"] == broker["TotalCashValue"] != first["TotalCashValue"]


def test_account_updates_multi_follow_the_same_refresh(minute_gateway):
    with connected_ib(
        minute_gateway
    ) as ib:  # connecting subscribes reqAccountUpdates and, per account, Multi
        contract = _aapl(ib)
        [session] = minute_gateway.core.sessions.values()
        assert session.subs.account_updates
        assert session.subs.account_updates_multi
        tags: list[str] = []
        ib.accountValueEvent += lambda value: tags.append(value.tag)
        _buy_and_fill(ib, minute_gateway, contract)  # 19:01
        assert tags == []
        minute_gateway.clock.step(2)  # 19:03
        _sync(ib)
        # one TotalCashValue from reqAccountUpdates and one from each Multi subscription
        assert tags.count("TotalCashValue") == 1 + len(session.subs.account_updates_multi)


def test_interval_zero_sends_the_values_with_each_fill():
    """For tests that want the values at once (faster than IB): ``account_update_interval=0``."""
    feed = SyntheticDataProvider(["AAPL"], seed=3, start="2024-01-02", periods=600, interval="1m")
    with (
        running_gateway(data=feed, bar_interval="1m", account_update_interval=0) as gateway,
        connected_ib(gateway) as ib,
    ):
        contract = _aapl(ib)
        tags: list[str] = []
        ib.accountValueEvent += lambda value: tags.append(value.tag)
        _buy_and_fill(ib, gateway, contract)
        assert "TotalCashValue" in tags


def test_the_drill_changes_the_cadence_and_none_restores_the_configured_one(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        contract = _aapl(ib)
        minute_gateway.faults.throttle_account_updates(600)  # ten minutes from now (19:00)
        tags: list[str] = []
        ib.accountValueEvent += lambda value: tags.append(value.tag)
        _buy_and_fill(ib, minute_gateway, contract)  # 19:01
        minute_gateway.clock.step(8)  # 19:09: the 3-minute refreshes are off
        _sync(ib)
        assert tags == []
        minute_gateway.clock.step()  # 19:10
        _sync(ib)
        assert "TotalCashValue" in tags
        minute_gateway.faults.throttle_account_updates(None)
        assert minute_gateway.core.account_refresh.interval == DEFAULT_ACCOUNT_UPDATE_INTERVAL
        with pytest.raises(GatewayError, match="account_update_interval"):
            minute_gateway.faults.throttle_account_updates(-1)


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, "180", True, None])
def test_a_bad_interval_is_refused_with_a_named_error(bad):
    with pytest.raises(AccountCadenceError, match="account_update_interval"):
        GatewayConfig(port=0, data="sample", account_update_interval=bad).validate()


def test_the_default_interval_is_ibs_three_minutes():
    assert GatewayConfig().account_update_interval == 180.0 == DEFAULT_ACCOUNT_UPDATE_INTERVAL
    assert check_interval(0) == 0.0


def test_the_refresh_clock_is_due_once_the_interval_has_passed():
    import pandas as pd

    t0 = pd.Timestamp("2024-01-03 15:00", tz="UTC")
    refresh = AccountRefresh(180, last=t0)
    assert not refresh.due(t0 + pd.Timedelta(minutes=2))
    assert refresh.due(t0 + pd.Timedelta(minutes=3))
    assert not refresh.due(t0 + pd.Timedelta(minutes=5))  # the cycle restarted at 15:03
    assert refresh.due(t0 + pd.Timedelta(days=1))  # a gap (the night) is one refresh
    refresh.restart(t0, 0)
    assert refresh.on_every_change
    assert refresh.due(t0)
    refresh.restart(t0, None)
    assert refresh.interval == 180
