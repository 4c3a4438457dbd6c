"""Do the books agree with IB? Per symbol, IB's netted position against what the journal says is held.

With several strategies on one account the broker's netted position is the only truth. The journal splits
what it explains into **claims** (each strategy's book: the fills of orders tagged with its name, running
or not) and the **unowned** part (fills of no strategy: an adjustment adopting IB's position, an order
journaled without a strategy). A :class:`PositionGap` is a symbol where IB holds something else.

A gap is **explained** — reported, not blocking — only when both hold:

* IB's executions made outside the engine (a trade in TWS that IB still reports, the current day's) add
  up to the gap exactly, and
* IB still holds at least what the strategies claim, in their direction (:attr:`PositionGap.covered`): a
  trade outside the engine may add a position *beside* the strategies', never take away one of theirs —
  a position closed by hand in TWS leaves a strategy believing it is long and ready to sell what the
  account no longer holds.

Every other gap blocks trading in that symbol until IB agrees again or the trader adopts IB's position
(:func:`adoption_plan`: the adjusting records that make the journal equal IB, see
:mod:`copilot_quant.journal.adjustments`). All of it is pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from copilot_quant.errors import ConfigError
from copilot_quant.journal.reconcile import BrokerExecution
from copilot_quant.journal.records import FillRecord, JournalOrder
from copilot_quant.model.orders import OrderSide

__all__ = ["EPS", "PositionGap", "adoption_plan", "position_gaps"]

#: Quantities closer than this are equal (fractional shares and float sums).
EPS = 1e-9


@dataclass(frozen=True, slots=True)
class PositionGap:
    """One symbol where IB's position is not what the journal's fills add up to (signed: long > 0).

    ``claims``: each strategy's position by its journaled fills (non-zero ones, in order of first fill);
    ``unowned``: the journaled fills of no strategy; ``outside``: IB's executions made outside the engine
    that the journal does not hold (net, the current day's: IB returns no older ones).
    """

    symbol: str
    broker: float
    claims: tuple[tuple[str, float], ...] = ()
    unowned: float = 0.0
    outside: float = 0.0

    @property
    def claimed(self) -> float:
        """What the strategies' books hold together (netted, as IB nets them)."""
        return sum(q for _, q in self.claims)

    @property
    def journal(self) -> float:
        """What the journal's fills add up to: the strategies' claims plus the unowned part."""
        return self.claimed + self.unowned

    @property
    def difference(self) -> float:
        """IB's position minus the journal's: what adopting IB's position records."""
        return self.broker - self.journal

    @property
    def covered(self) -> bool:
        """Whether IB holds at least what the strategies claim, in their direction."""
        claimed, held = self.claimed, self.broker
        return abs(claimed) <= EPS or (claimed * held > 0 and abs(held) >= abs(claimed) - EPS)

    @property
    def explained(self) -> bool:
        """Whether trades IB reports as made outside the engine account for the gap, beside the
        strategies' positions (reported, not blocking; see the module docstring)."""
        return abs(self.difference - self.outside) <= EPS and self.covered

    def claimant(self, strategy: str) -> bool:
        """Whether ``strategy``'s book holds this symbol."""
        return any(name == strategy for name, _ in self.claims)


def position_gaps(
    orders: Iterable[JournalOrder],
    fills: Iterable[FillRecord],
    broker_positions: Mapping[str, float],
    outside: Iterable[BrokerExecution] = (),
    unjournaled: Iterable[BrokerExecution] = (),
) -> tuple[PositionGap, ...]:
    """Every symbol whose IB position (``broker_positions``, ``{symbol: signed quantity}``) differs from
    the journal's ``fills`` (attributed to strategies by their ``orders``), sorted by symbol; ``outside``
    are IB's executions made outside the engine that the journal lacks (the reconciliation's
    ``foreign_executions``); ``unjournaled``: executions of our orders not journaled yet (its
    ``missing_fills``), counted as the fills they are about to be."""
    owner = {o.order_ref: o.strategy or None for o in orders}
    claims: dict[str, dict[str, float]] = {}
    unowned: dict[str, float] = {}
    trades = [(f.symbol, f.order_ref, f.signed_quantity) for f in fills]
    trades += [(e.symbol, e.order_ref, OrderSide(e.side).sign * e.quantity) for e in unjournaled]
    for raw, ref, signed in trades:
        symbol = raw.strip().upper()
        name = owner.get(ref) if ref else None
        if name:
            book = claims.setdefault(symbol, {})
            book[name] = book.get(name, 0.0) + signed
        else:
            unowned[symbol] = unowned.get(symbol, 0.0) + signed
    beside: dict[str, float] = {}
    for execution in outside:
        signed = OrderSide(execution.side).sign * execution.quantity
        beside[execution.symbol] = beside.get(execution.symbol, 0.0) + signed
    held = {str(s).strip().upper(): float(q) for s, q in broker_positions.items()}
    gaps: list[PositionGap] = []
    for symbol in sorted(held.keys() | claims.keys() | unowned.keys()):
        gap = PositionGap(
            symbol,
            held.get(symbol, 0.0),
            tuple((n, q) for n, q in claims.get(symbol, {}).items() if abs(q) > EPS),
            unowned.get(symbol, 0.0),
            beside.get(symbol, 0.0),
        )
        if abs(gap.difference) > EPS:
            gaps.append(gap)
    return tuple(gaps)


def adoption_plan(gap: PositionGap, strategy: str | None = None) -> tuple[tuple[str | None, float], ...]:
    """The adjustments that make the journal hold IB's position: ``(owner, signed quantity)`` pairs, owner
    None for no strategy, adding up to ``gap.difference``.

    * IB still holds what the strategies claim (:attr:`PositionGap.covered`): the difference belongs to no
      strategy — a position beside theirs, which no strategy ever sees nor trades. Their books stay.
    * IB holds less than they claim: their books must come down, or a strategy would sell what the account
      no longer holds — never past zero (a book never turns from long to short by an adjustment). IB flat or
      on the other side: every book closes, and what IB holds is no strategy's. IB on their side but
      smaller: one strategy claims the symbol — its book becomes IB's position; several — whose book shrinks
      is not for the engine to guess: ``strategy`` names the one that takes the whole reduction (without
      crossing zero); without it, or if its book cannot take it, :class:`ConfigError` says what to do.
    """
    if gap.covered:
        return ((None, gap.difference),)
    plan: list[tuple[str | None, float]]
    if gap.broker * gap.claimed <= EPS:  # flat, or the other side: every book closes
        plan = [(name, -q) for name, q in gap.claims]
        plan.append((None, gap.broker - gap.unowned))
    else:
        if len(gap.claims) == 1:
            name, claim = gap.claims[0]
            plan = [(name, gap.broker - claim)]
        else:
            plan = [_named_reduction(gap, strategy)]
        plan.append((None, -gap.unowned))
    return tuple((owner, q) for owner, q in plan if abs(q) > EPS)


def _named_reduction(gap: PositionGap, strategy: str | None) -> tuple[str, float]:
    """Several strategies hold ``gap.symbol`` and IB only part of it: the named strategy's book takes the
    whole reduction if it can without crossing zero."""
    reduction = gap.broker - gap.claimed
    claim = dict(gap.claims).get(strategy or "", 0.0)
    if strategy is not None and claim * reduction < 0 and abs(reduction) <= abs(claim) + EPS:
        return strategy, reduction
    owners = ", ".join(f"{n} {_held(q)}" for n, q in gap.claims)
    change = (
        f"reduction of {abs(reduction):g} (from the books' {_held(gap.claimed)} to IB's {_held(gap.broker)})"
    )
    said = ""
    if strategy is not None and claim * reduction >= 0:
        said = f" {strategy}'s book is {_held(claim)}: it holds none of that {_side(gap.claimed)} position."
    elif strategy is not None:
        said = (
            f" {strategy}'s book is {_held(claim)}: a reduction of {abs(reduction):g} would turn it "
            f"{_side(-claim)}."
        )
    raise ConfigError(
        f"{gap.symbol}: several strategies' books hold it ({owners}) but IB holds {_held(gap.broker)}; whose "
        f"book should shrink is not for the engine to guess.{said} Make IB's position agree in TWS (or close "
        "it, then adopt: every book goes to zero), or name the strategy whose book takes the whole "
        f"{change}: engine.adopt_broker_positions(strategy='NAME')"
    )


def _held(quantity: float) -> str:
    """A signed position as a trader says it: ``long 50``, ``short 20``, ``flat``."""
    if abs(quantity) <= EPS:
        return "flat"
    return f"{_side(quantity)} {abs(quantity):g}"


def _side(quantity: float) -> str:
    return "long" if quantity > 0 else "short"
