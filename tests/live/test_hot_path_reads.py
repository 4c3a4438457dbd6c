"""The reads and bookkeeping on the path from a bar to its orders: the same answers as before, in O(1).

Issue 9 §5 (latency): the account read, the position check, the risk check's working orders and the owner of
a fill were each a scan — of IB's account rows, of the session's orders — and some grew with the session.
Each fast path here is checked against what the slow one answered, on ib_async's own objects.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.brokers.contracts import ContractBook
from copilot_quant.brokers.ib_account import IbAccount, pick_account_value
from copilot_quant.brokers.order_tracking import OrderTracker
from copilot_quant.brokers.position_watch import PositionWatch
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.events import EngineEvents, ErrorLog
from copilot_quant.live.fills import FillDispatcher
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.orders import Position
from ib_async import IB, AccountValue, Stock
from ib_async import Position as IBPosition

from .conftest import Scripted
from .test_account_base_currency import ACCOUNT, EUR_ACCOUNT, USD_ACCOUNT

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


class _Connection:
    """What :class:`IbAccount` reads of a connection: a real ib_async ``IB`` (its caches) and the account."""

    def __init__(self, ib: IB, account: str = ACCOUNT) -> None:
        self.ib, self.account = ib, account


def _ib_with(rows: list[AccountValue]) -> IB:
    ib = IB()
    for v in rows:  # as ib_async's wrapper files them: (account, tag, currency, modelCode)
        ib.wrapper.accountValues[(v.account, v.tag, v.currency, v.modelCode)] = v
    return ib


TAGS = sorted({v.tag for v in EUR_ACCOUNT + USD_ACCOUNT} | {"BuyingPower", "TotalCashValue"})


@pytest.mark.parametrize("rows", [EUR_ACCOUNT, USD_ACCOUNT], ids=["EUR", "USD"])
@pytest.mark.parametrize("tag", TAGS)
def test_an_account_value_read_by_key_is_the_one_the_scan_picks(rows: list[AccountValue], tag: str) -> None:
    account = IbAccount(_Connection(_ib_with(rows)), lambda price, qty: 0.0)  # type: ignore[arg-type]
    assert account.read_value(tag) == pick_account_value(rows, tag)
    assert account.read_value(tag) == pick_account_value(rows, tag)  # the base currency remembered


def test_the_base_currency_is_read_again_when_the_account_changes_currency() -> None:
    ib = _ib_with(USD_ACCOUNT)
    account = IbAccount(_Connection(ib), lambda price, qty: 0.0)  # type: ignore[arg-type]
    assert account.read_value("NetLiquidation") == pytest.approx(99010.0)
    ib.wrapper.accountValues.clear()
    for v in EUR_ACCOUNT:
        ib.wrapper.accountValues[(v.account, v.tag, v.currency, v.modelCode)] = v
    assert account.read_value("AvailableFunds") == pytest.approx(8798.40)  # its EUR row, not a stale USD key


def test_positions_are_read_by_instrument_key_with_the_key_cached_by_contract() -> None:
    ib = IB()
    aapl, msft = Stock("AAPL", "SMART", "USD"), Stock("MSFT", "SMART", "USD")
    aapl.conId, msft.conId = 265598, 272093
    ib.wrapper.positions[ACCOUNT] = {
        aapl.conId: IBPosition(ACCOUNT, aapl, 10.0, 150.0),
        msft.conId: IBPosition(ACCOUNT, msft, -3.0, 300.0),
    }
    account = IbAccount(_Connection(ib), lambda price, qty: 0.0)  # type: ignore[arg-type]
    for _ in range(2):
        assert account.read_position("AAPL") == 10.0
        assert account.read_position("MSFT") == -3.0
        assert account.read_position("IBM") == 0.0
    assert set(account.read_positions()) == {"AAPL", "MSFT"}


class _Positions:
    """IB's position per symbol as a test sets it (what PositionWatch reads)."""

    def __init__(self) -> None:
        self.held: dict[str, float] = {}

    def read_position(self, symbol: str) -> float:
        return self.held.get(symbol, 0.0)


def test_a_position_ib_has_not_reported_yet_stays_expected_until_it_has() -> None:
    ib = _Positions()
    watch = PositionWatch(ib, track_local=False)  # type: ignore[arg-type]
    watch.expected["AAPL"] = 5.0
    assert not watch.settled_now()
    # before: the first check that found it missing also forgot it, so the worker then waited for nothing
    assert not watch.settled_now()
    ib.held["AAPL"] = 5.0
    assert watch.settled_now()
    assert watch.expected == {}


class _CachedBroker:
    """The broker reads AccountState.refresh_eager makes, from values a test sets."""

    fills_passed = 0

    def __init__(self) -> None:
        self.value = 100_000.0

    def account_snapshot_cached(self) -> tuple[float, float, dict[str, Position]]:
        return self.value, 50_000.0, {}


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def test_the_trading_day_of_an_account_read_is_new_yorks_date_and_resets_the_daily_baseline() -> None:
    state, broker = AccountState(), _CachedBroker()
    asked: list[date] = []

    def trading_day() -> date:
        asked.append(date(2000, 1, 1))
        return asked[-1]

    # 01:00 UTC on March 10 is still March 9 in New York
    assert state.refresh_eager(broker, trading_day, now_ns=_ns("2026-03-10T01:00:00+00:00"))  # type: ignore[arg-type]
    assert state.equity_day == date(2026, 3, 9)
    assert state.day_start_equity == 100_000.0
    broker.value = 99_000.0
    assert state.refresh_eager(broker, trading_day, now_ns=_ns("2026-03-10T03:59:59+00:00"))  # type: ignore[arg-type]
    assert state.day_start_equity == 100_000.0  # the same New York day: the baseline stays
    assert state.refresh_eager(broker, trading_day, now_ns=_ns("2026-03-10T04:00:00+00:00"))  # type: ignore[arg-type]
    assert state.equity_day == date(2026, 3, 10)  # New York's midnight (EDT since March 8): a new day
    assert state.day_start_equity == 99_000.0
    assert asked == []  # with the clock's instant, the date is worked out, not asked for
    assert state.refresh_eager(broker, trading_day)  # type: ignore[arg-type]
    assert state.equity_day == date(2000, 1, 1)  # without it, asked


def test_the_orders_ib_may_hold_leave_out_those_ib_reported_finished_and_keep_their_order() -> None:
    tracker = OrderTracker()
    records = []
    for k in range(6):
        record = tracker.add(Order("AAPL", 1, "limit", "buy", limit_price=1.0 + k), f"ref-{k}")
        tracker.bind(record, 100 + k, object())
        records.append(record)
    for k in (0, 2, 3):
        records[k].ib_final = True  # IB's own Filled / Cancelled
    records[4].order.status = OrderStatus.REJECTED  # an IB error code alone: IB may still hold it
    assert tracker.reachable_records() == [records[1], records[4], records[5]]
    again = tracker.add(records[5].order, "ref-5")  # the same order tracked again: its record replaced
    tracker.bind(again, 105, object())
    assert tracker.reachable_records() == [records[1], records[4], again]
    assert len(tracker.records()) == 6
    refused = tracker.add(Order("AAPL", 1, "market", "buy"), "ref-refused")  # never sent: risk refused it
    tracker.set_status(refused, OrderStatus.REJECTED, reason="risk check: too big")
    in_flight = tracker.add(Order("AAPL", 1, "market", "buy"), "ref-in-flight")  # being placed right now
    assert tracker.reachable_records() == [records[1], records[4], again]
    tracker.bind(in_flight, 200, object())
    assert tracker.reachable_records() == [records[1], records[4], again, in_flight]
    assert refused not in tracker._maybe_at_ib  # no longer looked at by every risk check


def test_a_strategy_slot_knows_its_orders_by_object_after_trimming() -> None:
    slot = StrategySlot(Scripted(), history=5)
    working = Order("AAPL", 1, "limit", "buy", limit_price=1.0)
    working.status = OrderStatus.SUBMITTED
    slot.add(working)
    done = []
    for _ in range(50):
        order = Order("AAPL", 1, "market", "buy")
        order.status = OrderStatus.FILLED
        slot.add(order)
        done.append(order)
    kept = [o for o in done if any(o is k for k in slot.orders)]
    assert slot.owns(working)
    assert slot.find(working) is working
    assert all(slot.owns(o) for o in kept)
    assert not any(slot.owns(o) for o in done if all(o is not k for k in slot.orders))
    assert not slot.owns(Order("AAPL", 1, "market", "buy"))
    slot.reset()
    assert not slot.owns(working)


def test_the_engines_fill_list_keeps_the_latest_fills_and_counts_them_all() -> None:
    strategy = Scripted()
    slot = StrategySlot(strategy)
    dispatcher = FillDispatcher(
        broker=None,  # type: ignore[arg-type]  # not asked: the slot owns every order
        journal=lambda: None,
        account=AccountState(),
        errors=ErrorLog(EngineEvents(), 10, None),
        wake=threading.Event(),
        slots=lambda: [slot],
    )
    dispatcher.fills.maxlen = 100
    last = None
    for k in range(1_000):
        order = Order("AAPL", 1, "market", "buy")
        slot.add(order)
        last = Fill(order, 100.0, 1.0, 1.0, NOW, fill_id=f"e{k}")
        dispatcher.live(last)
        assert dispatcher.drain() == 1
    assert len(strategy.fills) == 1_000  # every fill reached its strategy
    assert dispatcher.count == 1_000
    assert len(dispatcher.fills) == 100  # before: one entry per fill of the session, for ever
    assert dispatcher.fills[-1] is last


class _QualifyingIB:
    """ib_async's contract lookups, answered at once: qualifying fills in a conId (and counts the trips)."""

    def __init__(self) -> None:
        self.qualified = 0
        self.now = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)

    async def qualifyContractsAsync(self, contract: Any) -> list[Any]:
        self.qualified += 1
        contract.conId = 1000 + self.qualified
        if contract.secType == "FUT":
            contract.localSymbol = f"MES{'UZ'[contract.lastTradeDateOrContractMonth == '202612']}6"
        return [contract]

    async def reqCurrentTimeAsync(self) -> datetime:
        return self.now


def test_a_symbols_contract_is_looked_up_once_and_a_continuous_futures_contract_follows_ibs_date() -> None:
    ib = _QualifyingIB()
    book = ContractBook(_Connection(ib))  # type: ignore[arg-type]

    async def lookups() -> list[str]:
        stock = [await book.contract("AAPL") for _ in range(3)]
        assert all(c is stock[0] for c in stock)
        before = await book.contract("MES")
        ib.now = datetime(2026, 9, 30, 15, 0, tzinfo=UTC)  # past September's roll, by IB's clock
        after = await book.contract("MES")
        return [stock[0].symbol, before.localSymbol, after.localSymbol]

    assert asyncio.run(lookups()) == ["AAPL", "MESU6", "MESZ6"]  # the contract of the day, never frozen
    assert ib.qualified == 3
