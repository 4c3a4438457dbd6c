"""The worker starts reading IB's account when fills came, and collects the read after on_fill's delivery:
the read is used only if it covers every fill handed over so far (it waited for IB's positions to show them)."""

from __future__ import annotations

import concurrent.futures
from datetime import date
from typing import Any

from copilot_quant.live.account_view import AccountState
from copilot_quant.model.orders import Position


class Broker:
    """The two account reads AccountState uses, recorded: started ones answer when told to."""

    def __init__(self) -> None:
        self.fills_passed = 0
        self.started: list[tuple[concurrent.futures.Future[Any], float]] = []
        self.direct_reads: list[float] = []

    def start_account_snapshot(self, *, settle: float) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.started.append((future, settle))
        return future

    def account_snapshot(self, *, settle: float) -> tuple[float, float, dict[str, Position]]:
        self.direct_reads.append(settle)
        return 300.0, 30.0, {"AAPL": Position("AAPL", 3)}


def _refresh(account: AccountState, broker: Broker, settle: float) -> bool:
    return account.refresh(broker, lambda: date(2024, 6, 3), settle)  # type: ignore[arg-type]


def test_no_read_is_started_while_no_fill_came_since_the_last_one() -> None:
    account, broker = AccountState(), Broker()
    account.prefetch(broker, 0.5)  # type: ignore[arg-type]
    assert broker.started == []


def test_a_read_started_after_fills_is_the_one_the_refresh_uses() -> None:
    account, broker = AccountState(), Broker()
    broker.fills_passed = 2
    account.prefetch(broker, 0.5)  # type: ignore[arg-type]
    account.prefetch(broker, 0.5)  # type: ignore[arg-type]  # one at a time
    [(future, settle)] = broker.started
    assert settle == 0.5
    future.set_result((200.0, 20.0, {"AAPL": Position("AAPL", 2)}))
    assert _refresh(account, broker, 0.5)
    assert broker.direct_reads == []
    assert (account.value, account.cash, account.positions["AAPL"].quantity) == (200.0, 20.0, 2)
    account.prefetch(broker, 0.5)  # type: ignore[arg-type]  # nothing new since: no read
    assert len(broker.started) == 1


def test_a_fill_after_the_start_makes_the_refresh_read_again() -> None:
    account, broker = AccountState(), Broker()
    broker.fills_passed = 1
    account.prefetch(broker, 0.5)  # type: ignore[arg-type]
    [(future, _)] = broker.started
    broker.fills_passed = 2  # the started read may not include this one
    assert _refresh(account, broker, 0.5)
    assert future.cancelled()
    assert broker.direct_reads == [0.5]
    assert account.positions["AAPL"].quantity == 3
