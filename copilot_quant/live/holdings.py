"""Whose positions are these? The strategies' books at start, and a plain statement of what the account holds.

A position the account holds at start belongs to no strategy unless the journal says a strategy of that
name left it: each strategy's book opens from its own journaled fills (orders tagged with its name), so a
strategy never sees — or trades out of — shares that another strategy, another program or a hand in TWS
bought. What the account holds beyond the running strategies' books is said at start, and left alone. A
book that claims what the account does not hold is a position mismatch: the symbol is not traded until it
is resolved (:mod:`copilot_quant.live.position_guard`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from copilot_quant.backtest.books import allocate_capital
from copilot_quant.brokers.reconciliation import BrokerState
from copilot_quant.journal import TradeJournal
from copilot_quant.journal.adjustments import is_adjustment
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.book import StrategyBook
from copilot_quant.model.orders import Position

__all__ = ["describe_holdings", "open_books", "opening_books"]

_EPS = 1e-9


def open_books(
    slots: Sequence[StrategySlot],
    account: AccountState,
    journal: TradeJournal | None,
    broker: BrokerState | None = None,
) -> list[str]:
    """At start: open the account's ledger (from IB: ``broker`` is what it answered the reconciliation)
    and each strategy's book (from its journaled fills, with its capital share of the account's value);
    returns what the account holds."""
    if broker is not None:
        ledger = account.open_ledger(broker.positions, broker.cash)
    else:
        ledger = account.open_ledger()
    names = [s.name for s in slots]
    books, lines = opening_books(journal, names, ledger.positions)
    value = account.known_value
    capitals = allocate_capital(
        value if value is not None else ledger.cash, [s.capital for s in slots], names
    )
    for slot, capital in zip(slots, capitals, strict=True):
        slot.book = books[slot.name]
        slot.book.capital = capital
    return lines


def opening_books(
    journal: TradeJournal | None, names: Sequence[str], account: Mapping[str, Position]
) -> tuple[dict[str, StrategyBook], list[str]]:
    """Each strategy's book from its journaled fills, and the lines that say what the account holds."""
    books = {name: StrategyBook(0.0, name) for name in names}
    if journal is not None:
        owner = {o.order_ref: o.strategy for o in journal.orders()}
        for fill in journal.fills():
            book = books.get(owner.get(fill.order_ref or "") or "")
            if book is not None:
                book.apply(fill.symbol, fill.signed_quantity, fill.price, fill.commission or 0.0)
                if is_adjustment(fill.exec_id):
                    book.fill_count -= 1  # it moves the book to IB's position; it is no fill at IB
    return books, describe_holdings(account, books)


def describe_holdings(account: Mapping[str, Position], books: Mapping[str, StrategyBook]) -> list[str]:
    """One line for the account's holdings (whose each is), and one per claim the account does not cover."""
    symbols = sorted(
        {s for s, p in account.items() if not p.is_flat} | {s for b in books.values() for s in b.positions()}
    )
    if not symbols:
        return ["the account holds no positions at start"]
    parts: list[str] = []
    attention: list[str] = []
    for symbol in symbols:
        held = account[symbol].quantity if symbol in account else 0.0
        claims = {n: b.quantity(symbol) for n, b in books.items() if b.quantity(symbol)}
        claimed = sum(claims.values())
        owners = ", ".join(f"{n} {q:g}" for n, q in claims.items())
        rest = held - claimed
        if abs(rest) <= _EPS:
            parts.append(f"{symbol} {held:g} ({owners})")
        elif not claims:
            parts.append(f"{symbol} {held:g} (no running strategy's: left alone)")
        elif (held > 0) == (claimed > 0) and abs(held) > abs(claimed):
            parts.append(f"{symbol} {held:g} ({owners}; {rest:g} no running strategy's: left alone)")
        else:
            parts.append(f"{symbol} {held:g} ({owners} by the journal)")
            attention.append(
                f"needs attention: the journal says {owners} of {symbol} should be held, but the account holds "
                f"{held:g}; it was traded outside the engine (TWS, another program) — no {symbol} order goes "
                "out until IB's position agrees or you adopt it (see the position mismatch alert)"
            )
    return ["the account holds " + "; ".join(parts), *attention]
