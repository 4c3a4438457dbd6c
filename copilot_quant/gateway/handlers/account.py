"""Account requests — reqPositions (61) / cancel (64), reqAccountUpdates (6), reqAccountUpdatesMulti (76) /
cancel (77), reqAccountSummary (62) / cancel (63), reqPositionsMulti (74) / cancel (75), reqPnL (92) /
cancel (93), reqPnLSingle (94) / cancel (95) — and the pushes to subscribers when the account changes, at
IB's cadence (:mod:`copilot_quant.gateway.account_cadence`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot_quant.gateway.broker_events import AccountChanged
from copilot_quant.gateway.messages.account import (
    account_download_end,
    account_summary,
    account_summary_end,
    account_update_multi,
    account_update_multi_end,
    account_update_time,
    account_value,
    parse_account_summary_request,
    parse_account_updates_multi_request,
    parse_account_updates_request,
    parse_pnl_request,
    parse_pnl_single_request,
    parse_positions_multi_request,
    pnl,
    pnl_single,
    portfolio_value,
    position,
    position_end,
    position_multi,
    position_multi_end,
)
from copilot_quant.gateway.messages.ids import In
from copilot_quant.gateway.messages.market_data import parse_cancel
from copilot_quant.gateway.wire import FieldReader

if TYPE_CHECKING:
    from copilot_quant.gateway.client import ClientSession
    from copilot_quant.gateway.core import GatewayCore

#: Message ids of the multi-position requests (not in the In enum because ib_async reuses 74/75 numbers).
REQ_POSITIONS_MULTI = 74
CANCEL_POSITIONS_MULTI = 75


def req_positions(session: ClientSession, reader: FieldReader) -> None:
    """``61, 1``: every position, then positionEnd (62); later changes are pushed."""
    broker = session.core.broker
    session.subs.positions = True
    for item in broker.positions():
        session.send(position(broker.account_id, item))
    session.send(position_end())


def cancel_positions(session: ClientSession, reader: FieldReader) -> None:
    session.subs.positions = False


#: Key of the plain reqAccountUpdates subscription in ``Subscriptions.account_values_sent``.
ACCOUNT_UPDATES_KEY = -1


def changed_values(
    session: ClientSession, key: int, values: list[tuple[str, str, str]], *, full: bool = False
) -> list[tuple[str, str, str]]:
    """The ``(tag, value, currency)`` entries of ``values`` not yet sent on subscription ``key``.

    ``full`` (a new subscription) forgets what was sent and returns everything. Re-sending unchanged
    values after every fill and market step made up most of the gateway's traffic (and of the client's
    decoding work); ib_async keeps the last value per tag, so the unchanged ones carry no news.
    """
    return _unsent(session.subs.account_values_sent, key, values, full)


def changed_summary(
    session: ClientSession, req_id: int, values: list[tuple[str, str, str]], *, full: bool = False
) -> list[tuple[str, str, str]]:
    """:func:`changed_values` for reqAccountSummary ``req_id`` (its own ids: a summary and a multi request
    may share a number)."""
    return _unsent(session.subs.summary_sent, req_id, values, full)


def _unsent(
    sent: dict[int, dict[tuple[str, str], str]], key: int, values: list[tuple[str, str, str]], full: bool
) -> list[tuple[str, str, str]]:
    last = sent[key] = {} if full else sent.setdefault(key, {})
    out: list[tuple[str, str, str]] = []
    for entry in values:
        tag, value, currency = entry
        if last.get((tag, currency)) != value:
            last[(tag, currency)] = value
            out.append(entry)
    return out


def _send_account(session: ClientSession) -> None:
    broker = session.core.broker
    account = broker.account_id
    for key, value, currency in changed_values(
        session, ACCOUNT_UPDATES_KEY, broker.account_values(), full=True
    ):
        session.send(account_value(account, key, value, currency))
    for item in broker.portfolio():
        session.send(portfolio_value(account, item))
    session.send(account_update_time(session.core.now.to_pydatetime()))


def req_account_updates(session: ClientSession, reader: FieldReader) -> None:
    """``6, 2, subscribe, account``: values, portfolio, time, then accountDownloadEnd (54)."""
    request = parse_account_updates_request(reader)
    session.subs.account_updates = request.subscribe
    if not request.subscribe:
        session.subs.account_values_sent.pop(ACCOUNT_UPDATES_KEY, None)
    if request.subscribe:
        _send_account(session)
        session.send(account_download_end(session.core.broker.account_id))


def req_account_updates_multi(session: ClientSession, reader: FieldReader) -> None:
    """``76, 1, reqId, account, modelCode, ledgerAndNLV``: values as 73, then 74."""
    request = parse_account_updates_multi_request(reader)
    broker = session.core.broker
    session.subs.account_updates_multi.add(request.req_id)
    for key, value, currency in changed_values(session, request.req_id, broker.account_values(), full=True):
        session.send(
            account_update_multi(request.req_id, broker.account_id, request.model_code, key, value, currency)
        )
    session.send(account_update_multi_end(request.req_id))


def cancel_account_updates_multi(session: ClientSession, reader: FieldReader) -> None:
    req_id = parse_cancel(reader)
    session.subs.account_updates_multi.discard(req_id)
    session.subs.account_values_sent.pop(req_id, None)


def req_account_summary(session: ClientSession, reader: FieldReader) -> None:
    """``62, 1, reqId, group, tags``: the modelled tags (63 each), then accountSummaryEnd (64); later the
    tags that changed, at each account refresh (IB: every 3 minutes)."""
    request = parse_account_summary_request(reader)
    broker = session.core.broker
    session.subs.account_summary[request.req_id] = request.tags
    summary = broker.account_summary(request.tags)
    for tag, value, currency in changed_summary(session, request.req_id, summary, full=True):
        session.send(account_summary(request.req_id, broker.account_id, tag, value, currency))
    session.send(account_summary_end(request.req_id))


def cancel_account_summary(session: ClientSession, reader: FieldReader) -> None:
    req_id = parse_cancel(reader)
    session.subs.account_summary.pop(req_id, None)
    session.subs.summary_sent.pop(req_id, None)


def req_positions_multi(session: ClientSession, reader: FieldReader) -> None:
    request = parse_positions_multi_request(reader)
    broker = session.core.broker
    for item in broker.positions():
        session.send(position_multi(request.req_id, broker.account_id, item, request.model_code))
    session.send(position_multi_end(request.req_id))


def cancel_positions_multi(session: ClientSession, reader: FieldReader) -> None:
    """Positions-multi answers are one-shot here; nothing to cancel."""


def req_pnl(session: ClientSession, reader: FieldReader) -> None:
    request = parse_pnl_request(reader)
    session.subs.pnl[request.req_id] = True
    session.send(pnl(request.req_id, session.core.broker.pnl()))


def cancel_pnl(session: ClientSession, reader: FieldReader) -> None:
    session.subs.pnl.pop(reader.int(), None)


def req_pnl_single(session: ClientSession, reader: FieldReader) -> None:
    request = parse_pnl_single_request(reader)
    session.subs.pnl_single[request.req_id] = request.con_id
    value = session.core.broker.pnl_single(request.con_id)
    if value is not None:
        session.send(pnl_single(request.req_id, value))


def cancel_pnl_single(session: ClientSession, reader: FieldReader) -> None:
    session.subs.pnl_single.pop(reader.int(), None)


def publish_account_change(core: GatewayCore, event: AccountChanged) -> None:
    """A fill changed cash and positions. What IB sends at once goes now: the positions (61), the traded
    contracts' portfolio lines (7) and the P&L streams; the account values wait for the next refresh
    (:mod:`~copilot_quant.gateway.account_cadence`), unless the interval is 0."""
    broker = core.broker
    symbols = {item.contract.symbol for item in event.items}
    changed_positions = [p for p in broker.positions(include_flat=True) if p.contract.symbol in symbols]
    values = core.account_refresh.on_every_change
    for session in list(core.sessions.values()):
        if session.subs.positions:
            for held in changed_positions:
                session.send(position(broker.account_id, held))
        if session.subs.account_updates:
            for item in event.items:
                session.send(portfolio_value(broker.account_id, item))
        if values:
            push_account_values(session)
        push_pnl(session)


def push_account_values(session: ClientSession) -> None:
    """The account refresh for ``session``: the values that changed since it was last sent them, on each
    of its subscriptions (reqAccountUpdates with the account time, reqAccountUpdatesMulti,
    reqAccountSummary)."""
    core = session.core
    broker = core.broker
    subs = session.subs
    if not (subs.account_updates or subs.account_updates_multi or subs.account_summary):
        return
    values = broker.account_values()
    if subs.account_updates:
        changed = changed_values(session, ACCOUNT_UPDATES_KEY, values)
        for key, value, currency in changed:
            session.send(account_value(broker.account_id, key, value, currency))
        if changed:
            session.send(account_update_time(core.now.to_pydatetime()))
    for req_id in subs.account_updates_multi:
        for key, value, currency in changed_values(session, req_id, values):
            session.send(account_update_multi(req_id, broker.account_id, "", key, value, currency))
    for req_id, tags in subs.account_summary.items():
        for tag, value, currency in changed_summary(session, req_id, broker.account_summary(tags)):
            session.send(account_summary(req_id, broker.account_id, tag, value, currency))


def push_pnl(session: ClientSession) -> None:
    """The P&L streams (reqPnL, reqPnLSingle): real time at IB, so after every fill and market step."""
    broker = session.core.broker
    for req_id in session.subs.pnl:
        session.send(pnl(req_id, broker.pnl()))
    for req_id, con_id in session.subs.pnl_single.items():
        single = broker.pnl_single(con_id)
        if single is not None:
            session.send(pnl_single(req_id, single))


def push_marks(core: GatewayCore) -> None:
    """After a market step: the P&L streams; and when the account refresh is due, every portfolio line
    at its new mark and the changed account values."""
    broker = core.broker
    refresh = core.account_refresh.due(core.now)
    portfolio = broker.portfolio() if refresh else []
    for session in list(core.sessions.values()):
        if refresh:
            if session.subs.account_updates:
                for item in portfolio:
                    session.send(portfolio_value(broker.account_id, item))
            push_account_values(session)
        push_pnl(session)


HANDLERS = {
    In.REQ_POSITIONS: req_positions,
    In.CANCEL_POSITIONS: cancel_positions,
    In.REQ_ACCOUNT_UPDATES: req_account_updates,
    In.REQ_ACCOUNT_UPDATES_MULTI: req_account_updates_multi,
    In.CANCEL_ACCOUNT_UPDATES_MULTI: cancel_account_updates_multi,
    In.REQ_ACCOUNT_SUMMARY: req_account_summary,
    In.CANCEL_ACCOUNT_SUMMARY: cancel_account_summary,
    REQ_POSITIONS_MULTI: req_positions_multi,
    CANCEL_POSITIONS_MULTI: cancel_positions_multi,
    In.REQ_PNL: req_pnl,
    In.CANCEL_PNL: cancel_pnl,
    In.REQ_PNL_SINGLE: req_pnl_single,
    In.CANCEL_PNL_SINGLE: cancel_pnl_single,
}
