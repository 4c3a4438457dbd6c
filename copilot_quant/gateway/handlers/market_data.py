"""Market data requests: reqMktData (1, streaming or snapshot) / cancel (2), reqRealTimeBars (50) / cancel (51),
and the fan-out of market ticks and bars to subscribed sessions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from copilot_quant.gateway.handlers.historical import quote_only_refusal
from copilot_quant.gateway.market import Bar, PricePoint, Quote
from copilot_quant.gateway.messages.errors import Code
from copilot_quant.gateway.messages.ids import Fields, In
from copilot_quant.gateway.messages.market_data import (
    TickType,
    delayed,
    market_data_type,
    parse_cancel,
    parse_mkt_data_request,
    parse_real_time_bars_request,
    real_time_bar,
    tick_price,
    tick_req_params,
    tick_size,
    tick_snapshot_end,
    tick_string,
)
from copilot_quant.gateway.wire import FieldReader

if TYPE_CHECKING:
    from copilot_quant.gateway.client import ClientSession

#: Market data lines per client, as IB's default allowance (error 101 beyond it).
MAX_TICKERS = 100
_REAL_TIME_WHAT = frozenset({"TRADES", "MIDPOINT", "BID", "ASK"})


@dataclass(slots=True)
class RealTimeBarsSub:
    symbol: str
    what: str


def _tick_type(session: ClientSession, tick: int) -> int:
    return delayed(tick) if session.subs.market_data_type in (3, 4) else tick


def req_mkt_data(session: ClientSession, reader: FieldReader) -> None:
    request = parse_mkt_data_request(reader)
    info = session.core.resolve(request.contract)
    if info is None:
        session.send_error(request.req_id, Code.NO_SECURITY_DEFINITION)
        return
    if not request.snapshot and len(session.subs.market_data) >= MAX_TICKERS:
        session.send_error(
            request.req_id, Code.MAX_TICKERS, f"Max number of tickers has been reached ({MAX_TICKERS})"
        )
        return
    quote = session.core.market.track(info.symbol)
    session.send(market_data_type(request.req_id, session.subs.market_data_type))
    session.send(tick_req_params(request.req_id, info.min_tick))
    _send_quote(session, request.req_id, quote, trades=info.sec_type != "CASH")
    if request.snapshot or request.regulatory_snapshot:
        session.send(tick_snapshot_end(request.req_id))
        return
    session.subs.market_data[request.req_id] = info.symbol


def _send_quote(session: ClientSession, req_id: int, quote: Quote, *, trades: bool = True) -> None:
    """Everything known about ``quote`` (what TWS sends when a subscription starts); without ``trades``
    (a forex pair: IDEALPRO quotes, nothing trades) no last price, trade size or volume."""
    t = lambda tick: _tick_type(session, tick)  # noqa: E731
    if math.isfinite(quote.bid):
        session.send(tick_price(req_id, t(TickType.BID), quote.bid, quote.bid_size))
    if math.isfinite(quote.ask):
        session.send(tick_price(req_id, t(TickType.ASK), quote.ask, quote.ask_size))
    if trades and math.isfinite(quote.last):
        session.send(tick_price(req_id, t(TickType.LAST), quote.last, quote.last_size))
        if quote.time is not None:
            session.send(_last_timestamp(session, req_id, quote.time))
    for tick, value in (
        (TickType.HIGH, quote.high),
        (TickType.LOW, quote.low),
        (TickType.OPEN, quote.open),
        (TickType.CLOSE, quote.close),
    ):
        if math.isfinite(value):
            session.send(tick_price(req_id, t(tick), value, 0))
    if trades and quote.volume:
        session.send(tick_size(req_id, t(TickType.VOLUME), quote.volume))


def _last_timestamp(session: ClientSession, req_id: int, time: pd.Timestamp) -> Fields:
    """Tick 45: the trade's time in whole epoch seconds, as TWS sends with every trade (clients use it as
    a lower bound on the server's clock: a bar that closed at or before it is complete)."""
    return tick_string(req_id, _tick_type(session, TickType.LAST_TIMESTAMP), str(int(time.timestamp())))


def cancel_mkt_data(session: ClientSession, reader: FieldReader) -> None:
    session.subs.market_data.pop(parse_cancel(reader), None)


def publish_tick(session: ClientSession, point: PricePoint, quote: Quote) -> None:
    """Send one market step to every market-data subscription of ``session`` on that symbol."""
    subs = session.subs.market_data
    if not subs:
        return
    for req_id, symbol in list(subs.items()):
        if symbol != point.symbol:
            continue
        t = lambda tick: _tick_type(session, tick)  # noqa: E731
        session.send(tick_price(req_id, t(TickType.BID), point.bid, quote.bid_size))
        session.send(tick_price(req_id, t(TickType.ASK), point.ask, quote.ask_size))
        if session.core.trades(point.symbol):
            session.send(tick_price(req_id, t(TickType.LAST), point.price, point.size))
            session.send(_last_timestamp(session, req_id, point.time))
            session.send(tick_size(req_id, t(TickType.VOLUME), quote.volume))
        if point.price >= quote.high:
            session.send(tick_price(req_id, t(TickType.HIGH), quote.high, 0))
        if point.price <= quote.low:
            session.send(tick_price(req_id, t(TickType.LOW), quote.low, 0))


def req_real_time_bars(session: ClientSession, reader: FieldReader) -> None:
    request = parse_real_time_bars_request(reader)
    if request.bar_size != 5:
        session.send_error(
            request.req_id,
            Code.VALIDATION,
            f"Error validating request: real-time bar size must be 5, not {request.bar_size}",
        )
        return
    if request.what_to_show not in _REAL_TIME_WHAT:
        session.send_error(
            request.req_id,
            Code.VALIDATION,
            f"Error validating request: whatToShow {request.what_to_show!r} for real-time bars; use TRADES, "
            "MIDPOINT, BID or ASK",
        )
        return
    info = session.core.resolve(request.contract)
    if info is None:
        session.send_error(request.req_id, Code.NO_SECURITY_DEFINITION)
        return
    refusal = quote_only_refusal(info, request.what_to_show, "5 secs")
    if refusal is not None:
        session.send_error(request.req_id, Code.HMDS, refusal)
        return
    session.subs.real_time_bars[request.req_id] = RealTimeBarsSub(info.symbol, request.what_to_show)


def cancel_real_time_bars(session: ClientSession, reader: FieldReader) -> None:
    session.subs.real_time_bars.pop(parse_cancel(reader), None)


def publish_real_time_bar(session: ClientSession, bar: Bar) -> None:
    """One 5-second bar per market step, stamped at the 5 s boundary before the bar's end."""
    subs = session.subs.real_time_bars
    if not subs:
        return
    epoch = int(bar.end.timestamp()) // 5 * 5 - 5
    side_price = session.core.market.side_price
    for req_id, sub in list(subs.items()):
        if sub.symbol != bar.symbol:
            continue
        o, h, lo, c = (side_price(x, sub.what, sub.symbol) for x in (bar.open, bar.high, bar.low, bar.close))
        if sub.what == "TRADES":
            wap = round((bar.high + bar.low + bar.close) / 3, 6)
            session.send(
                real_time_bar(req_id, epoch, o, h, lo, c, bar.volume, wap, max(1, int(bar.volume // 100)))
            )
        else:
            session.send(real_time_bar(req_id, epoch, o, h, lo, c, 0, -1.0, 0))


HANDLERS = {
    In.REQ_MKT_DATA: req_mkt_data,
    In.CANCEL_MKT_DATA: cancel_mkt_data,
    In.REQ_REAL_TIME_BARS: req_real_time_bars,
    In.CANCEL_REAL_TIME_BARS: cancel_real_time_bars,
}
