"""The live engine's start: the symbols, the journal, reconciliation, the books, the streams, the worker.

Part of :class:`~copilot_quant.live.engine.LiveStrategyEngine` (a mixin, so that the guide's ``start()`` stays
on the engine; its twin is ``engine_stop.py``): :meth:`EngineStart.start` runs the steps of
:mod:`copilot_quant.live.startup` in order — nothing trades until every one passed — opens the account's
books from IB and the journal (:mod:`copilot_quant.live.holdings`), streams the bars, binds and initializes
the strategies, and starts the bar clock and the worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from copilot_quant.brokers.ib_mapping import check_interval
from copilot_quant.errors import BrokerError, ConfigError, JournalError
from copilot_quant.journal import EventKind, TradeJournal
from copilot_quant.live.account_view import StrategyView
from copilot_quant.live.continuous import (
    ContinuousSymbols,
    ContractStreams,
    LiveRolls,
    run_contracts,
)
from copilot_quant.live.engine_report import EngineReport
from copilot_quant.live.gc_policy import BetweenBarsGc
from copilot_quant.live.holdings import open_books
from copilot_quant.live.inline import InlineDispatch
from copilot_quant.live.startup import check_symbols, open_journal, start_strategies
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.modify import ModifyOutcome
from copilot_quant.model.orders import Order, continue_order_ids_after

__all__ = ["EngineStart"]

log = logging.getLogger("copilot_quant.live.engine")  # the engine's log, as before the split


class EngineStart(EngineReport):
    """The engine's ``start()`` and the steps it takes (the engine sets the parts below)."""

    roll_days: int
    auto_roll: bool
    _adopt_at_start: bool
    _journal_arg: TradeJournal | str | Path | None
    _owns_journal: bool
    _data_symbols: list[str]
    data_interval: str
    _thread: threading.Thread | None
    _finished: bool
    _stop: threading.Event
    _wake: threading.Event
    inline: InlineDispatch
    _gc: BetweenBarsGc

    def start(self, symbols: list[str], lookback_days: int = 30, data_interval: str = "1d") -> bool:
        """Load history, stream bars and start the worker.

        ``False`` (with the reason in :attr:`errors`) if there is no strategy, no connection, the engine
        already runs, or it cannot start trading: a symbol IB knows no stock for (error type ``'symbol'``,
        checked first), the journal, reconciliation, the history or the strategy's ``initialize`` failed.
        """
        if not self._slots:
            log.error("start(): no strategy; call add_strategy() first")
            return False
        if self._running:
            log.error("start(): the engine is already running")
            return False
        if not self.is_connected():
            log.error("start(): not connected; call connect() first")
            return False
        check_interval(data_interval)
        if isinstance(symbols, str):
            symbols = [symbols]
        names = [s.strip().upper() for s in symbols]
        if not names:
            raise ConfigError("start() needs at least one symbol, e.g. start(['AAPL'])")
        continuous = run_contracts(self.data_feed, names, lookback_days, self.roll_days)
        data_names = [n for n in names if continuous is None or n not in continuous[0].roots]
        data_names += continuous[1] if continuous is not None else []
        if not check_symbols(self.data_feed, data_names, self._errors) or not self._open_journal():
            return False
        for slot in self._slots:
            slot.reset()
        self.dispatcher.booking = False  # fills found at start are in what the books open from
        self.safety.liveness.on_connected(datetime.now(UTC))
        try:
            if self.journal is not None:  # new order ids never repeat a journaled one
                continue_order_ids_after(self.journal.order_ids())
            if self._adopt_at_start:
                self.reconciler.adopt()  # the trader said: IB's positions are the truth
            self.reconciler.run("start")  # before trading: what happened while we were not running
        except JournalError as exc:
            self.safety.on_journal_failure(exc)
            return False
        except (BrokerError, TimeoutError, ConnectionError):
            return False  # the reconciler recorded why: not trading
        self._open_books()
        if not self._begin_streams(names, data_names, lookback_days, data_interval, continuous):
            return False
        try:  # the first order of each symbol then goes out without a lookup (inline: at once)
            self.broker.prepare_contracts(data_names)
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.info("contracts not looked up before trading: %s", exc)
        self._stop.clear()
        self._wake.clear()
        self.inline.reset()
        self._running = True
        self._finished = False
        self._thread = threading.Thread(target=self.worker.run, name="copilot-quant-engine", daemon=True)
        self._thread.start()
        self._gc.start(self.connection.runtime)
        log.info(
            "started %s on %s (%s bars)",
            ", ".join(s.name for s in self._slots),
            ", ".join(names),
            data_interval,
        )
        return True

    def _open_books(self) -> None:
        """Open the account's ledger from IB and each strategy's book from its journaled fills, and say
        what the account holds and whose it is."""
        self._refresh_account()
        lines = open_books(self._slots, self.account, self.journal, self.reconciler.last_state)
        self.dispatcher.booking = True
        for line in lines:
            log.info("%s", line)
        if lines:
            self._events.emit("holdings", "; ".join(lines))

    def _begin_streams(
        self,
        names: list[str],
        data_names: list[str],
        lookback_days: int,
        data_interval: str,
        continuous: tuple[ContinuousSymbols, list[str]] | None = None,
    ) -> bool:
        """Stream bars, subscribe quotes, initialize the strategies and start the bar clock."""
        streamed = self.data_feed.stream_bars(data_names, data_interval, lookback_days)
        missing = [s for s, ok in streamed.items() if not ok]
        if missing:
            self._errors.record(f"could not load data for {', '.join(missing)}", "data")
            self.data_feed.stop_bar_streams()
            return False
        self.data_feed.subscribe(data_names)
        self.symbols, self._data_symbols, self.data_interval = names, list(data_names), data_interval
        self.router.symbols = frozenset(names) | frozenset(data_names)
        rolls = self.worker.continuous = (
            None
            if continuous is None
            else LiveRolls.for_run(
                continuous,
                ContractStreams(
                    self.data_feed,
                    router=self.router,
                    streamed=self._data_symbols,
                    errors=self._errors,
                    interval=data_interval,
                    lookback_days=lookback_days,
                ),
                auto_roll=self.auto_roll,
            )
        )
        sleeve = self._sleeves

        def bind(slot: StrategySlot) -> None:
            slot.strategy.bind(
                StrategyView(
                    slot,
                    self.account,
                    self._strategy_cancel,
                    tuple(names),
                    sleeve=sleeve,
                    modify=self._strategy_modify,
                    continuous=continuous[0] if continuous is not None else None,
                )
            )

        if not start_strategies(self._slots, bind, self._errors):
            self.data_feed.stop_bar_streams()
            self.data_feed.unsubscribe(data_names)
            return False
        self.clock.start(names, rolls.bars if rolls is not None else None)
        return True

    def _open_journal(self) -> bool:
        """Open the account's journal (once the managed account is known and checked)."""
        account = self.connection.account
        try:
            journal, opened = open_journal(self.journal, self._journal_arg, account)
        except (JournalError, ConfigError) as exc:
            self._errors.record(f"cannot open the trade journal: {exc}", "journal")
            return False
        self.journal = self.broker.journal = journal
        self.dispatcher.reopen()  # fills go to the strategies again (the stop held them)
        self._owns_journal = self._owns_journal or opened
        where = f", journal {journal.path}" if opened else ""
        self._events.emit(EventKind.START, f"account {account}{where}")
        return True

    def _strategy_cancel(self, slot: StrategySlot, order: Order | str) -> None:
        slot.cancel(order, self.broker)

    def _strategy_modify(
        self, slot: StrategySlot, order: Order | str, changes: Mapping[str, Any]
    ) -> ModifyOutcome:
        return self.router.modify(slot, order, changes)
