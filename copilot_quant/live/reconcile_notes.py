"""A reconciliation's findings in a trader's words: what happened, what was recorded, what needs attention.

Fills and status changes that simply happened while the engine was not running (or disconnected) are
news, not problems: they are recorded, reach the strategy once, and say "nothing to do". What a trader
must look at — trades placed outside the engine, positions the journal cannot explain, orders whose end
IB does not report — is marked ``needs attention``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from copilot_quant.errors import ConfigError
from copilot_quant.journal import ReconcileReport
from copilot_quant.journal.positions import EPS, PositionGap, adoption_plan
from copilot_quant.journal.reconcile import BrokerExecution
from copilot_quant.journal.records import JournalOrder
from copilot_quant.model.orders import OrderStatus

__all__ = ["ReconcileNotes", "gap_notice", "reconcile_notes"]


@dataclass(frozen=True, slots=True)
class ReconcileNotes:
    """``news``: what happened and was recorded (nothing to do); ``attention``: what a trader must check."""

    news: tuple[str, ...]
    attention: tuple[str, ...]

    @property
    def lines(self) -> list[str]:
        return [*self.news, *(f"needs attention: {line}" for line in self.attention)]


def _order_words(record: JournalOrder | None, ref: str) -> str:
    if record is None:
        return f"order {ref}"
    owner = f"{record.strategy}'s " if record.strategy else ""
    return (
        f"{owner}order {record.order_id or ref} ({record.side} {record.quantity:g} {record.symbol} "
        f"{record.order_type})"
    )


def _fills_words(executions: list[BrokerExecution]) -> str:
    quantity = sum(e.quantity for e in executions)
    average = sum(e.quantity * e.price for e in executions) / quantity
    return f"{len(executions)} execution(s), {quantity:g} shares at {average:,.4g} on average"


def _books_words(gap: PositionGap) -> str:
    parts = [f"{name} {q:g}" for name, q in gap.claims]
    if abs(gap.unowned) > EPS:
        parts.append(f"no strategy's {gap.unowned:g}")
    return f"{gap.journal:g}" + (f" ({', '.join(parts)})" if parts else "")


def _adoption_words(gap: PositionGap) -> str:
    """What adopting IB's position would record, in words."""
    try:
        plan = adoption_plan(gap)
    except ConfigError:
        return (
            "several strategies hold it, so name whose book takes the difference: "
            "engine.adopt_broker_positions(strategy='NAME')"
        )
    claims = dict(gap.claims)
    effects = [
        f"{owner}'s book goes from {claims.get(owner, 0.0):g} to {claims.get(owner, 0.0) + q:g}"
        if owner is not None
        else f"{q:+g} is recorded as no strategy's (never traded by one)"
        for owner, q in plan
    ]
    return "; ".join(effects)


def gap_notice(gap: PositionGap) -> str:
    """A position gap for a trader: what differs, what was recorded, and how to resolve it."""
    side = "buy" if gap.difference < 0 else "sell"
    if gap.explained:
        return (
            f"{gap.symbol}: IB holds {gap.broker:g}, the journal's fills explain {_books_words(gap)}; trades made "
            f"outside the engine today ({gap.outside:+g}) explain the rest, beside the strategies' positions "
            "(which IB still holds): trading goes on. IB reports those executions only today: adopt the position "
            "(--adopt-broker-positions, engine.adopt_broker_positions()) to record it, or the symbol is "
            "blocked once they are gone"
        )
    if abs(gap.outside) > EPS:
        why = (
            f"IB reports trades made outside the engine today ({gap.outside:+g}: TWS or another program)"
            + ("" if gap.covered else ", which took away what the strategies hold")
        )
    else:
        why = (
            "no execution IB still reports explains it: traded outside the engine before today, or a fresh "
            "account (a simulated gateway started without --state) under an old journal"
        )
    claimants = ", ".join(name for name, _ in gap.claims)
    also = (
        f", nor any order of {claimants} (each decides from its book: its positions, and with several "
        "strategies its cash and equity)"
        if claimants
        else ""
    )
    return (
        f"{gap.symbol}: IB holds {gap.broker:g} but the journal's fills explain {_books_words(gap)} — {why}. "
        f"No {gap.symbol} order is sent{also} until they agree. To resume: make IB's position agree (e.g. "
        f"{side} {abs(gap.difference):g} {gap.symbol} in TWS) and the next reconciliation resumes trading; or "
        "accept IB's position as the truth with --adopt-broker-positions (engine.adopt_broker_positions()), "
        f"which journals an adjustment — {_adoption_words(gap)} — shown by `copilot-quant journal orders`"
    )


def reconcile_notes(
    report: ReconcileReport,
    orders: Mapping[str, JournalOrder],
    away: str,
    gaps: Sequence[PositionGap] | None = None,
) -> ReconcileNotes:
    """The findings of ``report`` for a trader; ``orders`` are the journal's records by ref; ``away`` says
    when things happened ("while the engine was not running", "while disconnected"); ``gaps``, when given,
    word the position mismatches (:func:`gap_notice`) instead of ``report.position_mismatches``."""
    news: list[str] = []
    attention: list[str] = []
    filled_by_ref: dict[str, list[BrokerExecution]] = defaultdict(list)
    for execution in report.missing_fills:
        filled_by_ref[execution.order_ref or ""].append(execution)
    for ref, executions in filled_by_ref.items():
        news.append(
            f"{away}, IB filled {_order_words(orders.get(ref), ref)}: {_fills_words(executions)} — recorded in "
            "the journal and passed to on_fill; nothing to do"
        )
    for record, found in report.unconfirmed_submissions:
        news.append(
            f"{_order_words(record, record.order_ref)} reached IB (id {found.broker_order_id}) just before the "
            "engine stopped; recognised by its reference and not sent again; nothing to do"
        )
    for record in report.unsent_intents:
        news.append(
            f"{_order_words(record, record.order_ref)} was recorded but the engine stopped before sending it; "
            "it is not sent now (an order is never sent twice) — nothing to do unless you still want it"
        )
    for change in report.status_changes:
        if change.order_ref in filled_by_ref and change.broker_status in (
            OrderStatus.FILLED,
            OrderStatus.PARTIALLY_FILLED,
        ):
            continue  # said with its fills above
        news.append(
            f"{away}, {_order_words(orders.get(change.order_ref), change.order_ref)} became "
            f"{change.broker_status} at IB (filled {change.broker_filled:g}); the journal is updated; nothing to do"
        )
    for record in report.vanished_orders:
        attention.append(
            f"{_order_words(record, record.order_ref)} is no longer at IB and IB does not say how it ended; "
            "recorded as cancelled — check TWS's trade log if you expected it to fill"
        )
    for order in report.foreign_orders:
        attention.append(
            f"an order placed outside the engine (TWS or another program): {order.side} {order.quantity:g} "
            f"{order.symbol}, IB id {order.broker_order_id}, {order.status} — no strategy's; left alone"
        )
    for execution in report.foreign_executions:
        attention.append(
            f"a trade made outside the engine: {execution.side} {execution.quantity:g} {execution.symbol} at "
            f"{execution.price:g} (execution {execution.exec_id}) — no strategy's; left alone"
        )
    for mismatch in report.quantity_mismatches:
        note = f" ({mismatch.note})" if mismatch.note else ""
        attention.append(
            f"{_order_words(orders.get(mismatch.order_ref), mismatch.order_ref)}: {mismatch.what} is "
            f"{mismatch.broker:g} at IB but {mismatch.journal:g} in the journal{note} — modified outside the engine?"
        )
    if gaps is not None:
        attention.extend(f"position mismatch {gap_notice(gap)}" for gap in gaps)
        return ReconcileNotes(tuple(news), tuple(attention))
    for position in report.position_mismatches:
        attention.append(
            f"position mismatch {position.symbol}: IB holds {position.broker_qty:g}, the journal's fills explain "
            f"{position.journal_qty:g} — traded outside the engine (TWS, another program), or a fresh simulated "
            "account (a gateway started without --state); left alone"
        )
    return ReconcileNotes(tuple(news), tuple(attention))
