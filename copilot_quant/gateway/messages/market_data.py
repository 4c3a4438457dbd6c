"""Market data: reqMktData (1) / cancel (2), reqMarketDataType (59), real-time bars (50/51), and the ticks.

Only tick types ib_async has a mapping for are defined here: it asserts on any other and drops the tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from copilot_quant.gateway.contracts import ContractRequest, parse_contract12
from copilot_quant.gateway.messages.ids import Fields, Out
from copilot_quant.gateway.wire import FieldReader

__all__ = [
    "MarketDataRequest",
    "RealTimeBarsRequest",
    "TickType",
    "delayed",
    "market_data_type",
    "parse_cancel",
    "parse_market_data_type",
    "parse_mkt_data_request",
    "parse_real_time_bars_request",
    "real_time_bar",
    "tick_price",
    "tick_req_params",
    "tick_size",
    "tick_snapshot_end",
    "tick_string",
]


class TickType(IntEnum):
    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    HIGH = 6
    LOW = 7
    VOLUME = 8
    CLOSE = 9
    OPEN = 14
    LAST_TIMESTAMP = 45


# Live tick type → its delayed twin (sent with market data type 3/4).
_DELAYED = {0: 69, 1: 66, 2: 67, 3: 70, 4: 68, 5: 71, 6: 72, 7: 73, 8: 74, 9: 75, 14: 76, 45: 88}


def delayed(tick_type: int) -> int:
    """The delayed variant of a live tick type (unchanged if it has none)."""
    return _DELAYED.get(tick_type, tick_type)


@dataclass(frozen=True, slots=True)
class MarketDataRequest:
    req_id: int
    contract: ContractRequest
    generic_ticks: str
    snapshot: bool
    regulatory_snapshot: bool


def parse_mkt_data_request(reader: FieldReader) -> MarketDataRequest:
    """``1, 11, reqId, contract12, [BAG legs], dncFlag[, conId, delta, price], genericTicks, snapshot,
    regulatorySnapshot, mktDataOptions``."""
    reader.int()  # version
    req_id = reader.int()
    contract = parse_contract12(reader)
    if contract.sec_type == "BAG":
        reader.skip(reader.int() * 4)
    if reader.bool():
        reader.skip(3)
    generic = reader.str()
    snapshot = reader.bool()
    regulatory = reader.bool()
    return MarketDataRequest(req_id, contract, generic, snapshot, regulatory)


def parse_cancel(reader: FieldReader) -> int:
    """``<id>, version, reqId`` (cancelMktData, cancelRealTimeBars, cancelHistoricalData …) → reqId."""
    reader.int()
    return reader.int()


def parse_market_data_type(reader: FieldReader) -> int:
    """``59, 1, type``: 1 live, 2 frozen, 3 delayed, 4 delayed-frozen."""
    reader.int()
    return reader.int()


@dataclass(frozen=True, slots=True)
class RealTimeBarsRequest:
    req_id: int
    contract: ContractRequest
    bar_size: int
    what_to_show: str
    use_rth: bool


def parse_real_time_bars_request(reader: FieldReader) -> RealTimeBarsRequest:
    """``50, 3, reqId, contract12, barSize, whatToShow, useRTH, options``."""
    reader.int()
    req_id = reader.int()
    contract = parse_contract12(reader)
    bar_size = reader.int()
    what = reader.str().upper()
    use_rth = reader.bool()
    return RealTimeBarsRequest(req_id, contract, bar_size, what, use_rth)


def tick_price(req_id: int, tick_type: int, price: float, size: float = 0.0, attr_mask: int = 0) -> Fields:
    """Exactly 7 fields (ib_async unpacks it strictly)."""
    return [Out.TICK_PRICE, 6, req_id, tick_type, price, _size(size), attr_mask]


def tick_size(req_id: int, tick_type: int, size: float) -> Fields:
    return [Out.TICK_SIZE, 6, req_id, tick_type, _size(size)]


def tick_string(req_id: int, tick_type: int, value: str) -> Fields:
    return [Out.TICK_STRING, 6, req_id, tick_type, value]


def market_data_type(req_id: int, data_type: int) -> Fields:
    return [Out.MARKET_DATA_TYPE, 1, req_id, data_type]


def tick_req_params(
    req_id: int, min_tick: float, bbo_exchange: str = "9c0001", permissions: int = 3
) -> Fields:
    return [Out.TICK_REQ_PARAMS, req_id, min_tick, bbo_exchange, permissions]


def tick_snapshot_end(req_id: int) -> Fields:
    return [Out.TICK_SNAPSHOT_END, 1, req_id]


def real_time_bar(  # noqa: PLR0917 - mirrors the wire layout field by field
    req_id: int,
    epoch: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    wap: float,
    count: int,
) -> Fields:
    return [Out.REAL_TIME_BARS, 3, req_id, epoch, open_, high, low, close, _size(volume), wap, count]


def _size(size: float) -> str:
    """Sizes are decimals on the wire; a stock's are whole shares, written without a trailing '.0' as TWS
    writes them (adjusted data can carry fractions of a share; they are rounded away)."""
    return str(round(float(size))) if math.isfinite(size) else "0"
