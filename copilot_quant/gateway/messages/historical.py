"""Historical data: reqHistoricalData (20) → historicalData (17), keepUpToDate updates (90), head
timestamp (87 → 88), cancel (25)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from copilot_quant.gateway.contracts import ContractRequest, parse_contract12
from copilot_quant.gateway.messages.ids import Fields, Out
from copilot_quant.gateway.wire import FieldReader

__all__ = [
    "HeadTimestampRequest",
    "HistoricalBar",
    "HistoricalRequest",
    "head_timestamp",
    "historical_data",
    "historical_update",
    "parse_head_timestamp_request",
    "parse_historical_request",
]


@dataclass(frozen=True, slots=True)
class HistoricalRequest:
    req_id: int
    contract: ContractRequest
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool
    #: The contract's ``includeExpired``: an expired future's history is served only when it is set.
    include_expired: bool = False


def parse_historical_request(reader: FieldReader) -> HistoricalRequest:
    """``20, reqId, contract12, includeExpired, endDateTime, barSize, duration, useRTH, whatToShow,
    formatDate, [BAG legs], keepUpToDate, chartOptions`` (no version field)."""
    req_id = reader.int()
    contract = parse_contract12(reader)
    include_expired = reader.bool()
    end = reader.str().strip()
    bar_size = reader.str().strip()
    duration = reader.str().strip()
    use_rth = reader.bool()
    what = reader.str().strip().upper()
    format_date = reader.int(1)
    if contract.sec_type == "BAG":
        reader.skip(reader.int() * 4)
    keep = reader.bool() if reader.remaining else False
    return HistoricalRequest(
        req_id, contract, end, bar_size, duration, use_rth, what, format_date, keep, include_expired
    )


@dataclass(frozen=True, slots=True)
class HeadTimestampRequest:
    req_id: int
    contract: ContractRequest
    use_rth: bool
    what_to_show: str
    format_date: int
    include_expired: bool = False


def parse_head_timestamp_request(reader: FieldReader) -> HeadTimestampRequest:
    """``87, reqId, contract12, includeExpired, useRTH, whatToShow, formatDate``."""
    req_id = reader.int()
    contract = parse_contract12(reader)
    include_expired = reader.bool()
    use_rth = reader.bool()
    what = reader.str().strip().upper()
    format_date = reader.int(1)
    return HeadTimestampRequest(req_id, contract, use_rth, what, format_date, include_expired)


@dataclass(frozen=True, slots=True)
class HistoricalBar:
    """One bar as sent: ``date`` already formatted the way the request asked."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


def historical_data(req_id: int, start: str, end: str, bars: Iterable[HistoricalBar]) -> Fields:
    """``17, reqId, startDateStr, endDateStr, barCount, (date, o, h, l, c, volume, WAP, count)*``.

    At sv 178 this message is also the end of the request (no separate HISTORICAL_DATA_END).
    """
    items = list(bars)
    fields: Fields = [Out.HISTORICAL_DATA, req_id, start, end, len(items)]
    for bar in items:
        fields += [bar.date, bar.open, bar.high, bar.low, bar.close, _num(bar.volume), bar.wap, bar.count]
    return fields


def historical_update(req_id: int, bar: HistoricalBar) -> Fields:
    """``90, reqId, barCount, date, open, close, high, low, WAP, volume`` (note the price order)."""
    return [
        Out.HISTORICAL_DATA_UPDATE,
        req_id,
        bar.count,
        bar.date,
        bar.open,
        bar.close,
        bar.high,
        bar.low,
        bar.wap,
        _num(bar.volume),
    ]


def head_timestamp(req_id: int, stamp: str) -> Fields:
    return [Out.HEAD_TIMESTAMP, req_id, stamp]


def _num(value: float) -> str:
    """A volume in whole shares, as IB reports stock volumes (adjusted data can carry fractions)."""
    return str(round(float(value))) if math.isfinite(value) else "0"
