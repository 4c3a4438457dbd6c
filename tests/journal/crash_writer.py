"""Child process for the crash tests: writes to a journal until it is killed, or dies mid-transaction.

``python crash_writer.py PATH loop``   records order lifecycles forever (the test SIGKILLs it).
``python crash_writer.py PATH midtx``  records one whole fill, then calls os._exit() inside the next
                                       record_fill transaction, after the fill row was inserted but before
                                       the order row was updated.
``python crash_writer.py PATH fills``  records an intent (synced), then fills (crash-safe: no sync of their
                                       own, nothing synced after them), says ``written`` and waits to be
                                       killed.
``python crash_writer.py PATH intents`` records three intents (through the intent log: nothing else is
                                       written after them, so SQLite does not hold them yet), says
                                       ``written`` and waits to be killed.
``python crash_writer.py PATH forked``  as ``intents``, after forking a child that outlives this process
                                       (a worker of a fork-started pool, say); says ``written PID`` (the
                                       child's, for the test to end it).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

from copilot_quant.backtest.orders import Order
from copilot_quant.journal import TradeJournal
from copilot_quant.journal import journal as journal_module


def _loop(journal: TradeJournal) -> None:
    print("ready", flush=True)
    i = 0
    while True:
        ref = journal.record_intent(Order("AAPL", 10), strategy="crash")
        journal.record_submitted(ref, i)
        journal.record_fill(ref, f"{i}.1", "AAPL", "buy", 4, 100.0, datetime.now(UTC))
        journal.record_commission(f"{i}.1", 1.0)
        journal.record_fill(ref, f"{i}.2", "AAPL", "buy", 6, 101.0, datetime.now(UTC))
        journal.record_status(ref, "filled", 10, 0, 100.6)
        journal.record_event("tick", str(i))
        i += 1


def _die_mid_transaction(journal: TradeJournal) -> None:
    ref = journal.record_intent(Order("AAPL", 10))
    journal.record_fill(ref, "whole", "AAPL", "buy", 4, 100.0, datetime.now(UTC))

    def die(*_args: object, **_kwargs: object) -> None:
        os._exit(3)

    journal_module.TradeJournal._apply_fills = die  # type: ignore[method-assign]
    journal.record_fill(ref, "torn", "AAPL", "buy", 6, 101.0, datetime.now(UTC))
    os._exit(4)  # not reached


def _fills_then_wait(journal: TradeJournal) -> None:
    ref = journal.record_intent(Order("AAPL", 10), strategy="crash")
    journal.record_fill(ref, "crash-safe.1", "AAPL", "buy", 4, 100.0, datetime.now(UTC))
    journal.record_fill(ref, "crash-safe.2", "AAPL", "buy", 6, 101.0, datetime.now(UTC))
    print("written", flush=True)
    sys.stdin.read()  # until the test kills this process


def _intents_then_wait(journal: TradeJournal) -> None:
    for symbol in ("AAPL", "MSFT", "SPY"):
        journal.record_intent(Order(symbol, 10), strategy="crash")
    assert journal._store.intent_log is not None
    assert journal._store.intent_log.has_pending
    print("written", flush=True)
    sys.stdin.read()  # until the test kills this process


def _fork_then_intents(journal: TradeJournal) -> None:
    child = os.fork()
    if child == 0:  # the forked child: it inherits the parent's open files and lives on after it
        time.sleep(120)
        os._exit(0)
    for symbol in ("AAPL", "MSFT", "SPY"):
        journal.record_intent(Order(symbol, 10), strategy="crash")
    print(f"written {child}", flush=True)
    sys.stdin.read()  # until the test kills this process


if __name__ == "__main__":
    target, mode = sys.argv[1], sys.argv[2]
    opened = TradeJournal(target, account="DU1234567")
    if mode == "loop":
        _loop(opened)
    elif mode == "fills":
        _fills_then_wait(opened)
    elif mode == "intents":
        _intents_then_wait(opened)
    elif mode == "forked":
        _fork_then_intents(opened)
    else:
        _die_mid_transaction(opened)
