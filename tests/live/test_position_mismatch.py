"""A live engine never trades on a book that disagrees with IB's positions.

Real ib_async client, simulated gateway on a free port, real journal file: an old journal whose fills say a
strategy holds 100 AAPL meets a fresh gateway account that holds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib
from copilot_quant.journal import OrderState, TradeJournal
from copilot_quant.journal.adjustments import is_adjustment
from ib_async import MarketOrder, Stock
from typer.testing import CliRunner

from tests.journal.support import journal_app
from tests.strategy_sources import BUY_ONCE

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

OLD = datetime(2024, 2, 28, 15, tzinfo=UTC)


class Told(Strategy):
    """Returns, at its next bar, the orders the test put in ``pending``; records fills and what it held."""

    def __init__(self, name: str, *pending: Order) -> None:
        super().__init__()
        self.name = name
        self.pending = list(pending)
        self.bars = 0
        self.fills: list[Fill] = []
        self.seen: list[dict[str, float]] = []

    def on_data(self, timestamp, data):
        self.seen.append(_held(self))
        self.bars += 1
        orders, self.pending = self.pending, []
        return orders or None

    def on_fill(self, fill):
        self.fills.append(fill)


def _journal_path(journal_dir: Path, gateway: GatewayServer) -> Path:
    return journal_dir / f"{gateway.broker.account_id}.sqlite"


def _old_journal(path: Path, account: str, held: list[tuple[str, str, float]]) -> None:
    """A journal from an earlier run: each ``(strategy, symbol, quantity)`` bought and filled."""
    with TradeJournal(path, account=account) as journal:
        for k, (strategy, symbol, quantity) in enumerate(held):
            ref = journal.record_intent(Order(symbol, quantity, "market", "buy"), strategy)
            journal.record_submitted(ref, 900 + k)
            journal.record_fill(ref, f"old-{k}", symbol, "buy", quantity, 180.0, OLD, 1.0)


def _gateway_positions(gateway: GatewayServer) -> dict[str, float]:
    return {p.contract.symbol: p.position for p in gateway.broker.positions() if p.position}


def _by_hand(gateway: GatewayServer, side: str, symbol: str, quantity: int) -> None:
    """Someone trades in TWS (another client id) and the order fills."""
    with connected_ib(gateway, client_id=5) as ib:
        ib.placeOrder(Stock(symbol, "SMART", "USD"), MarketOrder(side, quantity))
        assert wait_until(lambda: any(not o.order_ref for o in gateway.broker.open_orders()))
    gateway.clock.step(1)
    assert wait_until(lambda: not [o for o in gateway.broker.open_orders() if not o.order_ref])


def _started(make_engine, strategies: list[Strategy], recheck_s: float = 30.0, **options: Any):
    engine = make_engine(fill_timeout=0.0, **options)
    engine.reconciler.recheck_s = recheck_s  # while a symbol is blocked (30 s by default)
    for strategy in strategies:
        engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL", "MSFT"], lookback_days=5)
    return engine


def _sent(gateway: GatewayServer) -> list[tuple[str, str, float]]:
    orders = [*gateway.broker.open_orders(), *gateway.broker.completed_orders()]
    return sorted((o.contract.symbol, str(o.action), float(o.quantity)) for o in orders if o.order_ref)


def _held(strategy: Strategy) -> dict[str, float]:
    return {s: p.quantity for s, p in strategy.positions.items()}


def _orders(engine, name: str) -> list[Order]:
    return next(s for s in engine.strategy_slots if s.name == name).orders


def _step_until(gateway: GatewayServer, condition) -> None:
    """Step the market one bar at a time (at most 5) until ``condition`` holds."""
    for _ in range(5):
        gateway.clock.step(1)
        if wait_until(condition, timeout=3):
            return
    assert condition()


def test_an_old_journal_on_a_fresh_account_routes_no_order_for_the_symbol_and_says_why(
    make_engine, gateway, tmp_path
):
    account = gateway.broker.account_id
    _old_journal(_journal_path(tmp_path / "journal", gateway), account, [("RsiRevert", "AAPL", 100)])
    strategy = Told("RsiRevert", Order("AAPL", 100, "market", "sell"))
    errors: list[tuple[str, str]] = []
    events: list[tuple[str, str]] = []
    engine = make_engine(fill_timeout=0.0)
    engine.on.error += lambda kind, message: errors.append((kind, message))
    engine.register_event_callback(lambda kind, detail: events.append((kind, detail)))
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL", "MSFT"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars == 1 and len(_orders(engine, "RsiRevert")) == 1)
    assert strategy.seen == [{"AAPL": 100.0}]  # what it believes, and would sell
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars == 2)
    assert _sent(gateway) == []  # before this check it sold the 100 AAPL here: short 100 at IB
    assert _gateway_positions(gateway) == {}
    (refused,) = _orders(engine, "RsiRevert")
    assert refused.status is OrderStatus.REJECTED
    assert "trading in AAPL halted: IB holds 0 but the journal's books say 100" in refused.reject_reason

    (why,) = engine.blocked_symbols.values()
    assert "AAPL: IB holds 0 but the journal's fills explain 100 (RsiRevert 100)" in why
    assert "fresh account" in why  # what may have happened
    assert "buy 100 AAPL in TWS" in why  # how to resolve it, either way
    assert "--adopt-broker-positions" in why
    assert "RsiRevert's book goes from 100 to 0" in why  # what adopting would record
    assert [kind for kind, _ in errors] == ["position"]
    assert any(kind == "halt" and "trading in AAPL halted" in detail for kind, detail in events)
    (mismatch,) = engine.get_performance_summary()["position_mismatches"]
    assert (mismatch["symbol"], mismatch["ib"], mismatch["journal"], mismatch["books"]) == (
        "AAPL",
        0.0,
        100.0,
        {"RsiRevert": 100.0},
    )
    engine.stop()
    with TradeJournal(_journal_path(tmp_path / "journal", gateway), read_only=True) as journal:
        (rejected,) = journal.orders("rejected")
        assert (rejected.symbol, rejected.side.value, rejected.state) == ("AAPL", "sell", OrderState.REJECTED)
        assert "position mismatch" in rejected.reason
        assert any("trading in AAPL halted" in e.detail for e in journal.events(kind="halt"))


def test_when_ibs_position_comes_back_to_agree_trading_resumes_at_the_next_reconciliation(
    make_engine, gateway, tmp_path
):
    account = gateway.broker.account_id
    _old_journal(_journal_path(tmp_path / "journal", gateway), account, [("RsiRevert", "AAPL", 100)])
    strategy = Told("RsiRevert")
    engine = _started(make_engine, [strategy], recheck_s=0.2)
    assert list(engine.blocked_symbols) == ["AAPL"]
    _by_hand(gateway, "BUY", "AAPL", 100)  # the trader puts the position back in TWS
    assert wait_until(lambda: engine.blocked_symbols == {})
    assert any(e["kind"] == "resume" and "trading in AAPL resumes" in e["detail"] for e in engine.events)
    assert engine.get_performance_summary()["position_mismatches"] == []
    strategy.pending = [Order("AAPL", 40, "market", "sell")]
    _step_until(gateway, lambda: len(strategy.fills) == 1)
    assert _gateway_positions(gateway) == {"AAPL": 60}
    assert _held(strategy) == {"AAPL": 60}


def test_adopting_ibs_positions_at_start_journals_a_visible_adjustment_and_trading_goes_on(
    make_engine, gateway, tmp_path
):
    path = _journal_path(tmp_path / "journal", gateway)
    _old_journal(path, gateway.broker.account_id, [("RsiRevert", "AAPL", 100)])
    strategy = Told("RsiRevert", Order("AAPL", 10, "market", "buy"))
    engine = _started(make_engine, [strategy], adopt_broker_positions=True)
    assert engine.blocked_symbols == {}
    _step_until(gateway, lambda: len(strategy.fills) == 1)
    assert strategy.seen[0] == {}  # its book was brought to IB's: it holds nothing
    assert _gateway_positions(gateway) == {"AAPL": 10}
    # its fills: the old run's and today's; the adjustment is no fill at IB
    assert engine.get_performance_summary()["strategies"]["RsiRevert"]["fills"] == 2
    engine.stop()
    with TradeJournal(path, read_only=True) as journal:
        (adjusting,) = [f for f in journal.fills() if is_adjustment(f.exec_id)]
        assert (adjusting.symbol, adjusting.side.value, adjusting.quantity) == ("AAPL", "sell", 100)
        assert adjusting.price == 180  # at the book's own cost: no invented profit or loss
        order = journal.order(adjusting.order_ref or "")
        assert (order.strategy, order.tag) == ("RsiRevert", "adjustment")
        assert "adopted IB's position AAPL 0 (the books said 100)" in order.reason
        assert [f.exec_id for f in journal.fills() if f.exec_id == "old-0"] == ["old-0"]  # history kept
    cli = journal_app()
    shown = CliRunner().invoke(cli, ["journal", "--path", str(path), "orders"])
    assert shown.exit_code == 0, shown.output
    assert "adopted IB's position AAPL 0" in shown.output
    fills = CliRunner().invoke(cli, ["journal", "--path", str(path), "fills"])
    assert "adjustment-" in fills.output
    assert "RsiRevert (adjustment)" in fills.output


def test_adopting_while_running_brings_the_books_to_ib_and_resumes(make_engine, gateway, tmp_path):
    account = gateway.broker.account_id
    _old_journal(_journal_path(tmp_path / "journal", gateway), account, [("RsiRevert", "AAPL", 100)])
    strategy = Told("RsiRevert")
    engine = _started(make_engine, [strategy])
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars == 1)
    assert _held(strategy) == {"AAPL": 100}
    engine.adopt_broker_positions()
    assert wait_until(lambda: engine.blocked_symbols == {})
    assert _held(strategy) == {}  # the running book was adjusted too
    assert engine.get_performance_summary()["strategies"]["RsiRevert"]["fills"] == 1  # the old run's only
    strategy.pending = [Order("AAPL", 5, "market", "buy")]
    _step_until(gateway, lambda: len(strategy.fills) == 1)
    assert _gateway_positions(gateway) == {"AAPL": 5}


def test_several_strategies_only_the_mismatched_symbol_and_its_holders_stop(make_engine, gateway, tmp_path):
    _old_journal(
        _journal_path(tmp_path / "journal", gateway),
        gateway.broker.account_id,
        [("fast", "AAPL", 100), ("slow", "AAPL", 50)],
    )
    fast = Told("fast", Order("AAPL", 100, "market", "sell"))
    slow = Told("slow", Order("MSFT", 10, "market", "buy"))  # its AAPL book is wrong: so is its sizing
    other = Told("other", Order("AAPL", 5, "market", "buy"), Order("MSFT", 3, "market", "buy"))
    engine = _started(make_engine, [fast, slow, other])
    (why,) = engine.blocked_symbols.values()
    assert "IB holds 0 but the journal's fills explain 150 (fast 100, slow 50)" in why
    _step_until(gateway, lambda: len(other.fills) == 1)
    assert _sent(gateway) == [("MSFT", "BUY", 3.0)]  # only the order with no part in the mismatch
    reasons = {
        (name, o.symbol): o.reject_reason for name in ("fast", "slow", "other") for o in _orders(engine, name)
    }
    assert "trading in AAPL halted" in reasons["fast", "AAPL"]
    assert "trading in AAPL halted" in reasons["other", "AAPL"]
    assert "slow's book holds AAPL" in reasons["slow", "MSFT"]
    assert reasons["other", "MSFT"] == ""

    engine.adopt_broker_positions()  # IB is flat: both books close
    assert wait_until(lambda: engine.blocked_symbols == {})
    assert _held(fast) == {}
    assert _held(slow) == {}
    assert _held(other) == {"MSFT": 3}


def test_a_fill_while_the_engine_was_down_is_no_mismatch(make_engine, gateway, feed):
    bars = feed.get_historical_data("AAPL", "2024-03-01", "2024-03-06")
    limit = round((bars["Low"].iloc[2] + min(bars["Close"].iloc[0], bars["Low"].iloc[1])) / 2, 2)
    first = Told("Trend", Order("AAPL", 7, "limit", "buy", limit_price=limit, time_in_force="gtc"))
    engine = _started(make_engine, [first])
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    engine.disconnect()  # the GTC limit stays at IB
    gateway.clock.step(1)
    gateway.clock.step(1)  # and fills while no engine runs
    assert wait_until(lambda: _gateway_positions(gateway) == {"AAPL": 7})

    again = Told("Trend")
    restarted = _started(make_engine, [again])
    assert wait_until(lambda: len(again.fills) == 1)  # adopted as before: journaled, on_fill once
    assert restarted.blocked_symbols == {}
    assert restarted.reconciler.last_gaps == ()
    again.pending = [Order("AAPL", 7, "market", "sell")]
    _step_until(gateway, lambda: len(again.fills) == 2)
    assert _gateway_positions(gateway) == {}


def test_a_position_closed_by_hand_is_found_by_the_reconciliation_after_a_reconnect(make_engine, gateway):
    strategy = Told("Trend", Order("AAPL", 10, "market", "buy"))
    engine = _started(make_engine, [strategy])
    _step_until(gateway, lambda: len(strategy.fills) == 1)
    _by_hand(gateway, "SELL", "AAPL", 10)  # closed in TWS (IB tells only the client that placed it)
    assert engine.blocked_symbols == {}
    gateway.drop_all()
    assert wait_until(lambda: "AAPL" in engine.blocked_symbols, timeout=20)
    why = engine.blocked_symbols["AAPL"]
    assert "IB holds 0 but the journal's fills explain 10 (Trend 10)" in why
    assert "trades made outside the engine today (-10" in why
    assert "took away what the strategies hold" in why
    strategy.pending = [Order("AAPL", 10, "market", "sell")]
    _step_until(gateway, lambda: any(o.status is OrderStatus.REJECTED for o in _orders(engine, "Trend")))
    assert _gateway_positions(gateway) == {}  # it never sold the 10 the account no longer held


@pytest.mark.parametrize("adopt", [False, True])
def test_the_live_command_blocks_or_adopts_with_its_flag(gateway_factory, tmp_path, monkeypatch, adopt):
    from copilot_quant.cli import app

    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    strategy = tmp_path / "buy_once.py"
    strategy.write_text(BUY_ONCE)
    journal = tmp_path / "old.sqlite"
    _old_journal(journal, server.broker.account_id, [("BuyOnce", "AAPL", 100)])
    args = ["live", f"{strategy}:BuyOnce", "-s", "AAPL", "--port", str(server.port), "--client-id", "92"]
    args += ["--duration", "2", "--update-interval", "1", "--journal", str(journal)]
    started = datetime.now(UTC)
    result = CliRunner().invoke(app, [*args, "--adopt-broker-positions"] if adopt else args)
    assert result.exit_code == 0, result.output
    with TradeJournal(journal, read_only=True) as opened:
        mine = [o for o in opened.orders(since=started) if o.tag != "adjustment"]
        adjusting = [o for o in opened.orders() if o.tag == "adjustment"]
    (order,) = mine
    if adopt:
        assert [(o.strategy, o.side.value, o.quantity) for o in adjusting] == [("BuyOnce", "sell", 100)]
        assert order.state is OrderState.FILLED
        assert _gateway_positions(server) == {"AAPL": 5}
    else:
        assert adjusting == []
        assert order.state is OrderState.REJECTED
        assert "trading in AAPL halted" in order.reason
        assert _gateway_positions(server) == {}


def test_flatten_on_stop_leaves_a_mismatched_symbol_alone(make_engine, gateway, tmp_path, caplog):
    _old_journal(
        _journal_path(tmp_path / "journal", gateway), gateway.broker.account_id, [("RsiRevert", "AAPL", 100)]
    )
    engine = _started(make_engine, [Told("RsiRevert")], flatten_on_stop=True)
    engine.stop()  # closing the book's 100 would sell what the account does not hold
    assert _sent(gateway) == []
    assert list(engine.blocked_symbols) == ["AAPL"]
    assert _gateway_positions(gateway) == {}
    assert any(
        "its 100 AAPL not closed on stop: trading in AAPL halted" in r.getMessage() for r in caplog.records
    )


def test_several_strategies_and_part_of_their_position_at_ib_adopt_only_with_a_name(
    make_engine, gateway, tmp_path
):
    path = _journal_path(tmp_path / "journal", gateway)
    _old_journal(path, gateway.broker.account_id, [("fast", "AAPL", 100), ("slow", "AAPL", 50)])
    _by_hand(gateway, "BUY", "AAPL", 120)  # the account holds 120 of the 150 the books say
    fast, slow = Told("fast"), Told("slow")
    engine = _started(make_engine, [fast, slow])
    engine.adopt_broker_positions()  # whose book shrinks by 30? not for the engine to guess
    assert wait_until(lambda: any("IB's position not adopted" in e["error"] for e in engine.errors))
    assert list(engine.blocked_symbols) == ["AAPL"]
    engine.adopt_broker_positions(strategy="fast")
    assert wait_until(lambda: engine.blocked_symbols == {})
    assert _held(fast) == {"AAPL": 70}
    assert _held(slow) == {"AAPL": 50}
    with TradeJournal(path, read_only=True) as journal:
        adjusting = [
            (o.strategy, o.side.value, o.quantity) for o in journal.orders() if o.tag == "adjustment"
        ]
    assert adjusting == [("fast", "sell", 30)]


def test_a_fill_landing_between_ibs_position_and_executions_reads_blocks_nothing(
    make_engine, gateway, monkeypatch
):
    from dataclasses import replace

    from copilot_quant.live import reconciler

    strategy = Told("Trend", Order("AAPL", 10, "market", "buy"))
    engine = _started(make_engine, [strategy])
    _step_until(gateway, lambda: len(strategy.fills) == 1)
    real = reconciler.fetch_broker_state
    reads: list[str] = []

    async def position_read_before_the_fill(ib, account=None):
        state = await real(ib, account)
        reads.append("read")
        return replace(state, positions={}) if len(reads) == 1 else state

    monkeypatch.setattr(reconciler, "fetch_broker_state", position_read_before_the_fill)
    engine.reconcile("manual")
    assert reads == ["read", "read"]  # the gap made it look again
    assert engine.blocked_symbols == {}
    assert engine.reconciler.last_gaps == ()


def test_a_position_closed_by_hand_while_the_engine_runs_is_noticed_and_blocks(make_engine, gateway):
    strategy = Told("Trend", Order("AAPL", 10, "market", "buy"))
    engine = _started(make_engine, [strategy])
    _step_until(gateway, lambda: len(strategy.fills) == 1)
    _by_hand(gateway, "SELL", "AAPL", 10)  # IB tells only the client that placed it; no reconnect
    _step_until(gateway, lambda: "AAPL" in engine.blocked_symbols)
    assert "took away what the strategies hold" in engine.blocked_symbols["AAPL"]
    strategy.pending = [Order("AAPL", 10, "market", "sell")]
    _step_until(gateway, lambda: any(o.status is OrderStatus.REJECTED for o in _orders(engine, "Trend")))
    assert _gateway_positions(gateway) == {}  # it never sold the 10 the account no longer held
