"""Historical requests: reqHistoricalData (20, with keepUpToDate), cancel (25), reqHeadTimestamp (87),
cancelHeadTimestamp (90); and the keepUpToDate updates (90) as the market clock moves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.history import BarSize, HistoryError, parse_bar_size
from copilot_quant.gateway.market import Bar
from copilot_quant.gateway.messages.errors import Code
from copilot_quant.gateway.messages.historical import (
    HistoricalBar,
    head_timestamp,
    historical_data,
    historical_update,
    parse_head_timestamp_request,
    parse_historical_request,
)
from copilot_quant.gateway.messages.ids import In
from copilot_quant.gateway.messages.market_data import parse_cancel
from copilot_quant.gateway.wire import FieldReader

if TYPE_CHECKING:
    from copilot_quant.gateway.client import ClientSession


@dataclass(slots=True)
class KeepUpToDate:
    """A live historical subscription: the last bar sent, extended or replaced as the market moves."""

    symbol: str
    size: BarSize
    format_date: int
    what: str
    forming: HistoricalBar | None


def req_historical_data(session: ClientSession, reader: FieldReader) -> None:
    request = parse_historical_request(reader)
    core = session.core
    info = core.resolve(request.contract)
    if info is None or (core.registry.expired(info) and not request.include_expired):
        # IB answers 200 for an expired future's history unless the contract sets includeExpired
        session.send_error(request.req_id, Code.NO_SECURITY_DEFINITION)
        return
    if request.keep_up_to_date and request.end:
        _fail(
            session,
            request.req_id,
            Code.VALIDATION,
            "Error validating request.-'bK' : cause - End date not supported with live updates",
        )
        return
    if request.what_to_show.upper() == "ADJUSTED_LAST" and request.end:
        # IB serves split/dividend-adjusted bars only up to now: an explicit end is refused.
        _fail(
            session,
            request.req_id,
            Code.VALIDATION,
            "Error validating request.-'bK' : cause - End date not supported with adjusted last",
        )
        return
    refusal = quote_only_refusal(info, request.what_to_show, request.bar_size)
    if refusal is not None:
        session.send_error(request.req_id, Code.HMDS, refusal)
        return
    identity = (
        info.con_id,
        request.end,
        request.bar_size,
        request.duration,
        request.what_to_show,
        request.use_rth,
    )
    violation = core.pacer.check(identity, (info.con_id, request.what_to_show))
    if violation is not None:
        session.send_error(
            request.req_id, Code.HMDS, f"Historical data request pacing violation: {violation}"
        )
        return
    try:
        answer = core.history.query(
            info.symbol,
            end=request.end,
            duration=request.duration,
            bar_size=request.bar_size,
            what=request.what_to_show,
            format_date=request.format_date,
        )
    except HistoryError as exc:
        _fail(session, request.req_id, exc.code, exc.message)
        return
    session.send(historical_data(request.req_id, answer.start, answer.end, answer.bars))
    if request.keep_up_to_date:
        session.subs.historical_updates[request.req_id] = KeepUpToDate(
            info.symbol,
            parse_bar_size(request.bar_size),
            request.format_date,
            request.what_to_show,
            answer.bars[-1] if answer.bars else None,
        )


def quote_only_refusal(info: ContractInfo, what: str, bar_size: str) -> str | None:
    """IB's answer to trade bars of a forex pair: IDEALPRO disseminates quotes, not trades, so TRADES
    (and ADJUSTED_LAST) history does not exist for CASH; ask for MIDPOINT, BID, ASK or BID_ASK."""
    if info.sec_type != "CASH" or what.upper() not in ("TRADES", "ADJUSTED_LAST"):
        return None
    label = "Last" if what.upper() == "TRADES" else "Adjusted_Last"
    return (
        "Historical Market Data Service error message:No historical market data for "
        f"{info.wire_symbol}/CASH@FXSUBPIP {label} {bar_size.replace(' ', '')} "
        "(forex has no trades: ask for MIDPOINT, BID, ASK or BID_ASK)"
    )


def _fail(session: ClientSession, req_id: int, code: int, message: str) -> None:
    """Answer a failed historical request.

    ib_async counts 321 as a warning and would keep waiting for bars until its own 60 s timeout, so
    after a 321 an empty historicalData ends the request (real TWS leaves it hanging).
    """
    session.send_error(req_id, code, message)
    if code == Code.VALIDATION:
        session.send(historical_data(req_id, "", "", []))


def cancel_historical_data(session: ClientSession, reader: FieldReader) -> None:
    session.subs.historical_updates.pop(parse_cancel(reader), None)


def publish_bar(session: ClientSession, bar: Bar) -> None:
    """Send the keepUpToDate update each live historical subscription on ``bar.symbol`` gets from ``bar``."""
    subs = session.subs.historical_updates
    if not subs:
        return
    history = session.core.history
    for req_id, sub in list(subs.items()):
        if sub.symbol != bar.symbol:
            continue
        shown = session.core.market.quoted_bar(bar, sub.what)  # MIDPOINT/BID/ASK: that side of the quote
        updated = history.update_bar(shown, sub.size, sub.forming, sub.format_date)
        sub.forming = updated
        session.send(historical_update(req_id, updated))


def req_head_timestamp(session: ClientSession, reader: FieldReader) -> None:
    request = parse_head_timestamp_request(reader)
    info = session.core.resolve(request.contract)
    if info is None or (session.core.registry.expired(info) and not request.include_expired):
        session.send_error(request.req_id, Code.NO_SECURITY_DEFINITION)
        return
    try:
        stamp = session.core.history.head_timestamp(info.symbol, request.format_date)
    except HistoryError as exc:
        session.send_error(request.req_id, exc.code, exc.message)
        return
    session.send(head_timestamp(request.req_id, stamp))


def cancel_head_timestamp(session: ClientSession, reader: FieldReader) -> None:
    """``90, reqId``: head timestamps are answered at once, so there is nothing left to cancel."""


HANDLERS = {
    In.REQ_HISTORICAL_DATA: req_historical_data,
    In.CANCEL_HISTORICAL_DATA: cancel_historical_data,
    In.REQ_HEAD_TIMESTAMP: req_head_timestamp,
    In.CANCEL_HEAD_TIMESTAMP: cancel_head_timestamp,
}
