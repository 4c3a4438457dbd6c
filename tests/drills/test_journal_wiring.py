"""The journal and the rails wired into live trading: intent before send, exactly-once fills, refusals."""

from __future__ import annotations

import signal
import threading

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.errors import ConfigError
from copilot_quant.journal import JournalOrder, OrderState, TradeJournal
from copilot_quant.journal.durability import Durability
from copilot_quant.risk import RiskLimits
from copilot_quant.risk.kill_file import write_kill_file

from .conftest import Scripted, Stepper, assert_books_agree, journal_file, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

BUY = Order("AAPL", 10, "market", "buy")


def test_a_filled_order_is_journaled_with_its_ref_at_the_gateway(make_engine, gateway, journal_dir):
    strategy = Scripted({1: [BUY]})
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    with Stepper(gateway):
        assert wait_until(lambda: len(strategy.fills) == 1)
    path = journal_file(journal_dir)
    with TradeJournal(path, read_only=True) as journal:
        (order,) = journal.orders()
        assert order.state is OrderState.FILLED
        assert order.broker_order_id is not None
        kinds = [e.kind for e in journal.events()]
        (fill,) = journal.fills()
        assert fill.commission == pytest.approx(1.0)
    assert kinds[:2] == ["start", "reconcile"]
    (gw_order,) = gateway.broker.completed_orders()
    assert gw_order.order_ref == order.order_ref  # the journal's ref is IB's orderRef
    assert strategy.fills[0].fill_id == fill.exec_id
    assert_books_agree(gateway, path, strategy.fills, engine)


def test_a_risk_limit_refusal_is_rejected_journaled_and_reported(make_engine, gateway, journal_dir):
    strategy = Scripted({1: [BUY]})
    engine = make_engine(risk_limits=RiskLimits(max_order_quantity=5))
    reported = []
    engine.broker.register_error_callback(lambda record, message: reported.append(message))
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: engine.total_errors == 1)
    assert "max_order_quantity" in reported[0]
    assert "max_order_quantity" in engine.errors[0]["error"]
    with TradeJournal(journal_file(journal_dir), read_only=True) as journal:
        (order,) = journal.orders()
    assert order.state is OrderState.REJECTED
    assert "max_order_quantity" in order.reason
    assert not gateway.broker.open_orders()
    assert not gateway.broker.completed_orders()
    assert_books_agree(gateway, journal_file(journal_dir), strategy.fills, engine)


def test_a_broker_rejection_is_journaled_with_ibs_reason(make_engine, gateway, journal_dir):
    strategy = Scripted({1: [BUY]})
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.reject_next_order("insufficient buying power")
    gateway.clock.step(1)
    path = journal_file(journal_dir)

    def rejected() -> bool:
        with TradeJournal(path, read_only=True) as journal:
            orders = journal.orders()
        return bool(orders) and orders[0].state is OrderState.REJECTED

    assert wait_until(rejected)
    with TradeJournal(path, read_only=True) as journal:
        (order,) = journal.orders()
        assert "insufficient buying power" in order.reason
        assert journal.errors()
    assert_books_agree(gateway, path, strategy.fills, engine)


def test_live_trading_needs_an_explicit_confirmation(monkeypatch, gateway):
    monkeypatch.delenv("COPILOT_QUANT_CONFIRM_LIVE", raising=False)
    with pytest.raises(ConfigError, match="confirm_live=True"):
        LiveStrategyEngine(paper_trading=False, port=gateway.port)
    monkeypatch.setenv("COPILOT_QUANT_CONFIRM_LIVE", "yes")
    engine = LiveStrategyEngine(paper_trading=False, port=gateway.port, client_id=82)
    assert not engine.paper_trading
    engine.disconnect()


def test_the_kill_switch_cancels_flattens_and_halts(make_engine, gateway, journal_dir):
    resting = Order("AAPL", 5, "limit", "buy", limit_price=1.0, time_in_force="gtc")
    strategy = Scripted({1: [resting, BUY], 3: [BUY]})
    engine = make_engine(fill_timeout=0.5)
    events = []
    engine.register_event_callback(lambda kind, detail: events.append(kind))
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 2)
    gateway.clock.step(1)  # the market order fills on the next bar; the resting limit stays
    assert wait_until(lambda: len(strategy.fills) == 1 and len(gateway.broker.open_orders()) == 1)
    engine.kill("drill", flatten=True)
    assert "kill_switch" in events
    assert engine.halted is not None
    assert "drill" in engine.halted
    # step only once the gateway holds the flattening sell (and no longer the resting limit): a step taken
    # before the order arrived would leave it waiting for a bar that never comes
    assert wait_until(lambda: [r.action for r in gateway.broker.open_orders()] == ["SELL"])
    gateway.clock.step(1)  # fills the flattening sell; bar 3's order is refused
    assert wait_until(lambda: not gateway.broker.open_orders())
    assert wait_until(lambda: not [p for p in gateway.broker.positions() if p.position])
    assert wait_until(lambda: strategy.bars == 3)
    assert wait_until(lambda: len(strategy.fills) == 2)  # the flattening sell reached on_fill too
    assert_books_agree(gateway, journal_file(journal_dir), strategy.fills, engine)

    def journaled() -> list[JournalOrder]:
        with TradeJournal(journal_file(journal_dir), read_only=True) as journal:
            return journal.orders()

    # bar 3's order is routed (refused, journaled) just after on_data counted the bar
    assert wait_until(lambda: [o.state for o in journaled()].count(OrderState.REJECTED) == 1)
    orders = journaled()
    states = [o.state for o in orders]
    assert states.count(OrderState.CANCELLED) == 1
    (cancelled,) = [o for o in orders if o.state is OrderState.CANCELLED]
    assert cancelled.reason == "kill switch: drill"  # says why, in the journal and on the order
    assert states.count(OrderState.REJECTED) == 1
    assert states.count(OrderState.FILLED) == 2


def test_orders_refused_while_halted_are_one_warning_each_and_not_errors(
    make_engine, gateway, journal_dir, caplog
):
    """A halt is reported once, loudly; each order refused afterwards is one WARNING line, not an error."""
    strategy = Scripted({n: [BUY] for n in range(1, 5)})
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    engine.kill("drill")
    caplog.clear()
    for bar in range(1, 5):
        gateway.clock.step(1)
        assert wait_until(lambda bar=bar: strategy.bars == bar)
    path = journal_file(journal_dir)

    def refused() -> list[str]:
        with TradeJournal(path, read_only=True) as journal:
            return [o.reason for o in journal.orders() if o.state is OrderState.REJECTED]

    assert wait_until(lambda: len(refused()) == 4)  # nothing is lost: every refusal is in the journal
    assert set(refused()) == {"trading halted: kill switch engaged: drill"}
    assert engine.total_errors == 0
    assert list(engine.errors) == []
    # (each line is logged once its refusal is on the disk, just after the commit a reader sees)
    assert wait_until(lambda: len([r for r in caplog.records if "AAPL" in r.getMessage()]) >= 4)
    about_orders = [r for r in caplog.records if "AAPL" in r.getMessage()]
    assert [r.levelname for r in about_orders] == ["WARNING"] * 4, [r.getMessage() for r in about_orders]
    assert all("not sent, trading halted: kill switch engaged: drill" in r.getMessage() for r in about_orders)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert not gateway.broker.open_orders()
    assert not gateway.broker.completed_orders()
    assert_books_agree(gateway, path, strategy.fills, engine)


@pytest.mark.parametrize("inline_dispatch", [True, False], ids=["inline", "worker"])
def test_an_order_sent_as_a_kill_from_another_thread_engages_is_cancelled_too(
    make_engine, gateway, inline_dispatch
):
    """The kill switch engages on another thread (a failed journal write on the journal's writer thread, the
    console, a signal) after the order passed the halt check but before it was placed: the kill's
    cancel-all could not see it, so the router cancels it. Nothing stays working at IB after a kill — on
    the worker and on IB's loop thread (inline dispatch) alike."""
    resting = Order("AAPL", 5, "limit", "buy", limit_price=1.0, time_in_force="gtc")
    strategy = Scripted({1: [resting]})
    engine = make_engine(inline_dispatch=inline_dispatch)
    engine.add_strategy(strategy)
    broker = engine.broker
    place_orders, place_orders_eager = broker.place_orders, broker.place_orders_eager

    def kill_on_another_thread() -> None:  # the interleaving the race allows, made certain
        killer = threading.Thread(target=engine.kill, args=("drill",))
        killer.start()
        killer.join(timeout=10)
        assert not killer.is_alive()

    def kill_then_place(orders):
        kill_on_another_thread()
        return place_orders(orders)

    def kill_then_place_eager(orders, then):
        kill_on_another_thread()
        return place_orders_eager(orders, then)

    # both patched: an inline bar can still go to the worker (worker busy), and either path must cancel
    broker.place_orders = kill_then_place
    broker.place_orders_eager = kill_then_place_eager
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.completed_orders()) == 1)
    assert not gateway.broker.open_orders()
    (done,) = gateway.broker.completed_orders()
    assert done.status.value == "Cancelled"
    (order,) = engine.strategy_slots[0].orders
    assert wait_until(lambda: order.status is OrderStatus.CANCELLED)
    assert order.reject_reason == "kill switch: drill"
    if not inline_dispatch:
        assert engine.inline.bars == 0


def test_a_kill_switch_file_engages_the_switch(make_engine, gateway, tmp_path):
    flag = tmp_path / "STOP"
    engine = make_engine(kill_switch_file=flag)
    engine.add_strategy(Scripted())
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    # as `copilot-quant kill` writes it: in one piece (a file the engine could read while it is still being
    # written, empty, would engage the switch without the reason)
    write_kill_file(flag, "operator says stop")
    assert wait_until(lambda: engine.kill_switch.is_engaged)
    assert "operator says stop" in engine.kill_switch.reason
    assert engine.get_performance_summary()["halted"]


def test_a_rewritten_kill_file_escalates_a_halt_to_flattening(make_engine, gateway, tmp_path):
    """kill, then kill --flatten: the second write is read too (the switch was already engaged)."""
    flag = tmp_path / "STOP"
    strategy = Scripted({1: [BUY]})
    engine = make_engine(kill_switch_file=flag)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    with Stepper(gateway):
        assert wait_until(lambda: len(strategy.fills) == 1)
    held = {p.contract.symbol: p.position for p in gateway.broker.positions()}
    assert held == {"AAPL": 10}
    write_kill_file(flag, "operator says stop")  # `copilot-quant kill`
    assert wait_until(lambda: engine.kill_switch.is_engaged)
    assert not engine.kill_switch.engagement.flatten
    gateway.clock.step(1)
    assert not wait_until(lambda: not gateway.broker.positions(), timeout=1.5)  # halted, still holding
    write_kill_file(flag, "operator says", flatten=True)  # `copilot-quant kill --flatten`
    assert wait_until(lambda: engine.kill_switch.engagement.flatten)
    with Stepper(gateway):  # the flattening market order fills at the next price
        assert wait_until(lambda: not gateway.broker.positions(), timeout=10)
    assert "operator says stop" in engine.kill_switch.reason  # the first reason stands


def test_an_unsent_order_status_is_consistent_when_not_connected(make_engine, gateway):
    engine = make_engine()
    assert engine.get_performance_summary()["journal"] is None
    order = BUY.copy()
    assert order.status is OrderStatus.CREATED


def test_an_unaffordable_order_is_rejected_for_buying_power_and_journaled(make_engine, gateway, journal_dir):
    strategy = Scripted({1: [Order("AAPL", 1_000_000, "market", "buy")]})
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: engine.total_errors == 1)
    assert "buying power" in engine.errors[0]["error"]
    with TradeJournal(journal_file(journal_dir), read_only=True) as journal:
        (order,) = journal.orders()
    assert order.state is OrderState.REJECTED
    assert "insufficient buying power" in order.reason
    assert not gateway.broker.completed_orders()
    assert_books_agree(gateway, journal_file(journal_dir), strategy.fills, engine)


def test_sigterm_with_kill_cancels_open_orders_and_disconnects(make_engine, gateway, journal_dir):
    resting = Order("AAPL", 5, "limit", "buy", limit_price=1.0, time_in_force="gtc")
    engine = make_engine()
    engine.add_strategy(Scripted({1: [resting]}))
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        engine.install_signal_handlers(kill=True)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert not engine.is_connected()
    assert wait_until(lambda: not gateway.broker.open_orders())
    with TradeJournal(journal_file(journal_dir), read_only=True) as journal:
        kinds = [e.kind for e in journal.events()]
    assert "kill_switch" in kinds
    assert kinds[-1] == "stop"


class PositionWatcher(Scripted):
    """Records its account view's AAPL position at every bar (after its fills reached on_fill)."""

    def __init__(self, script):
        super().__init__(script)
        self.seen: list[tuple[int, float]] = []

    def on_data(self, timestamp, data):
        self.seen.append((len(self.fills), self.position("AAPL")))
        return super().on_data(timestamp, data)


def test_the_account_view_includes_the_fills_on_fill_reported(make_engine, gateway, journal_dir):
    strategy = PositionWatcher({1: [BUY], 2: [BUY], 3: [BUY]})
    engine = make_engine(fill_timeout=0.2)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    for bars in range(1, 5):
        gateway.clock.step(1)
        assert wait_until(lambda n=bars: strategy.bars == n)
        assert wait_until(lambda n=bars: len(gateway.broker.open_orders()) == (1 if n < 4 else 0))
    # Whenever on_data ran, the position it saw matched the fills on_fill had been told about.
    assert all(position == 10 * fills for fills, position in strategy.seen), strategy.seen
    assert strategy.seen[-1] == (3, 30.0)
    assert_books_agree(gateway, journal_file(journal_dir), strategy.fills, engine)


class JournalChecker(Scripted):
    """Checks, inside on_fill, whether the fill is already in the journal."""

    def __init__(self, script, journal_path) -> None:
        super().__init__(script)
        self.journal_path = journal_path
        self.journaled_when_told: list[bool] = []

    def on_fill(self, fill):
        with TradeJournal(self.journal_path, read_only=True) as journal:
            self.journaled_when_told.append(fill.fill_id in {f.exec_id for f in journal.fills()})
        super().on_fill(fill)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "worker"])
def test_broker_events_are_journaled_off_the_ib_loop_and_fills_after_their_commit(
    make_engine, gateway, journal_dir, inline
):
    """Statuses, acknowledgements and commissions are journaled on the writer thread: no disk sync of theirs
    ever holds up IB's messages. With inline dispatch the loop thread writes only what its path from a bar
    to the order needs: the intent (synced to the intent log before the order is sent, by design; no
    SQLite transaction on the loop); a fill reaches on_fill at
    once and is journaled just after, on the writer thread (fill_gate.py, "staged fills"). On the worker
    a fill reaches on_fill once it is in the journal."""
    engine = make_engine(inline_dispatch=inline)
    writes: list[tuple[str, str, Durability]] = []
    assert engine.connect(timeout=5)
    loop_thread = engine.connection.runtime._thread
    assert loop_thread is not None
    strategy = JournalChecker({1: [BUY], 2: [Order("AAPL", 10, "market", "sell")]}, None)
    engine.add_strategy(strategy)
    assert engine.start(["AAPL"], lookback_days=5)
    journal = engine.journal
    assert journal is not None
    strategy.journal_path = journal.path
    original = journal._store.writing

    def watched(action, durability=Durability.SYNCED):
        writes.append((threading.current_thread().name, action, durability))
        return original(action, durability)

    journal._store.writing = watched  # type: ignore[method-assign]
    intent_log = journal._store.intent_log
    assert intent_log is not None
    appended, append = [], intent_log.append

    def logged(rows):
        appended.append(threading.current_thread().name)
        append(rows)

    intent_log.append = logged  # type: ignore[method-assign]
    with Stepper(gateway):
        assert wait_until(lambda: len(strategy.fills) == 2)
    on_loop = [(action, durability) for thread, action, durability in writes if thread == loop_thread.name]
    assert not on_loop  # no SQLite transaction, no fsync of SQLite's log, ever held up IB's messages
    if inline:
        assert appended == [loop_thread.name] * 2  # each bar's intent: one synced append on the loop
        assert engine.broker.flush_journal(5)
        assert {f.fill_id for f in strategy.fills} <= {f.exec_id for f in journal.fills()}
    else:
        assert strategy.journaled_when_told == [True, True]
        assert len(appended) == 2
        assert loop_thread.name not in appended
    writers = {thread for thread, _, _ in writes}
    assert "copilot-quant-journal" in writers  # statuses, commissions, acknowledgements: the writer thread
    assert_books_agree(gateway, journal_file(journal_dir), strategy.fills, engine)
