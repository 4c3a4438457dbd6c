"""Account pushes carry only what changed, and coalesced writes keep every message intact (real ib_async)."""

from __future__ import annotations

import pytest
from copilot_quant.gateway.session import Session
from copilot_quant.gateway.testing import connected_ib
from ib_async import MarketOrder, Stock


def _wait(ib, condition, timeout: float = 5.0) -> bool:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        ib.sleep(0.01)
    return condition()


def _values(ib) -> dict[tuple[str, str, str], str]:
    return {(v.tag, v.currency, v.modelCode): v.value for v in ib.accountValues()}


def test_a_step_without_positions_resends_no_account_values(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        assert _wait(ib, lambda: ("NetLiquidation", "USD", "") in _values(ib))
        seen: list[str] = []
        ib.accountValueEvent += lambda value: seen.append(value.tag)
        minute_gateway.clock.step(3)
        ib.sleep(0.3)
        assert seen == []  # nothing changed: flat account, so no value is news


def test_the_refresh_after_a_fill_pushes_the_changed_values_and_they_match_the_broker(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        assert _wait(ib, lambda: ("NetLiquidation", "USD", "") in _values(ib))
        changed: set[str] = set()
        ib.accountValueEvent += lambda value: changed.add(value.tag)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 10))
        assert _wait(ib, lambda: trade.orderStatus.status == "Submitted")  # the gateway has it: now fill it
        minute_gateway.clock.step()
        assert _wait(ib, lambda: trade.orderStatus.status == "Filled")
        minute_gateway.clock.step(2)  # the account refresh, 3 minutes of market time after the start
        assert _wait(ib, lambda: {"CashBalance", "GrossPositionValue"} <= changed)
        assert "AccountCode" not in changed  # unchanged values are not re-sent
        broker = {(tag, currency): value for tag, value, currency in minute_gateway.broker.account_values()}
        client = _values(ib)
        for key in ("CashBalance", "NetLiquidation", "GrossPositionValue", "BuyingPower"):
            assert client[(key, "USD", "")] == broker[(key, "USD")], key


def test_resubscribing_sends_the_full_snapshot_again(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        assert _wait(ib, lambda: ("NetLiquidation", "USD", "") in _values(ib))
        account = ib.managedAccounts()[0]
        ib.client.reqAccountUpdates(False, account)
        seen: list[str] = []
        ib.accountValueEvent += lambda value: seen.append(value.tag)
        ib.client.reqAccountUpdates(True, account)
        assert _wait(ib, lambda: "AccountCode" in seen and "NetLiquidation" in seen)


def test_many_messages_in_one_flush_all_arrive_in_order(minute_gateway):
    """A burst (hundreds of ticks written as one coalesced chunk) is decoded completely and in order."""
    with connected_ib(minute_gateway) as ib:
        [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        ticker = ib.reqMktData(contract)
        assert _wait(ib, lambda: len(minute_gateway.core.sessions) == 1)
        closes = [bar.close for bar in minute_gateway.clock.step(50) if bar.symbol == "AAPL"]
        assert _wait(ib, lambda: ticker.last == closes[-1])
        session: Session = next(iter(minute_gateway.core.sessions.values()))
        assert session._out == []  # nothing left queued once the loop went idle


def test_a_bar_arrives_after_the_account_is_marked_at_its_close(minute_gateway):
    """Each step sends trades, then account marks, then the bar: a client acting on the bar of a step that
    refreshes the account (every 3 minutes of market time, as at IB) sees it already valued at that bar's
    close, and nothing of that step queues behind the bar on the socket."""
    with connected_ib(minute_gateway) as ib:
        [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        trade = ib.placeOrder(contract, MarketOrder("BUY", 10))
        assert _wait(ib, lambda: trade.orderStatus.status == "Submitted")
        minute_gateway.clock.step()  # 19:01
        assert _wait(ib, lambda: trade.orderStatus.status == "Filled")
        bars = ib.reqHistoricalData(contract, "", "1 D", "1 min", "TRADES", True, 2, keepUpToDate=True)
        marks: list[tuple[float, float]] = []

        def on_bar(updated, has_new_bar):
            [item] = [p for p in ib.portfolio() if p.contract.symbol == "AAPL"]
            marks.append((updated[-1].close, item.marketPrice))

        bars.updateEvent += on_bar
        for _ in range(5):  # 19:02 … 19:06: the refreshes fall at 19:03 and 19:06
            minute_gateway.clock.step()
        assert _wait(ib, lambda: len(marks) >= 5)
        refreshed = [marks[1], marks[4]]
        assert all(price == pytest.approx(close) for close, price in refreshed), marks
        assert marks[2][1] == marks[3][1] == marks[1][1]  # between refreshes the line keeps its mark
