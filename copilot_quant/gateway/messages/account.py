"""Account messages: positions, portfolio, account values and summary, multi-account updates, P&L.

Encoders follow §6 of the protocol notes at server version 178. position (16 fields), updatePortfolio (20)
and positionMulti (18) are decoded by ib_async with strict tuple unpacking, so their counts are exact.
Request parsers read from just after the message id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from copilot_quant.gateway.account import PnL, PnLSingle, PortfolioItem, PositionItem
from copilot_quant.gateway.messages.ids import Fields, Out
from copilot_quant.gateway.messages.orders import contract11
from copilot_quant.gateway.wire import FieldReader

__all__ = [
    "POSITION_MULTI",
    "POSITION_MULTI_END",
    "AccountSummaryRequest",
    "AccountUpdatesMultiRequest",
    "AccountUpdatesRequest",
    "PnLRequest",
    "PnLSingleRequest",
    "PositionsMultiRequest",
    "account_download_end",
    "account_summary",
    "account_summary_end",
    "account_update_multi",
    "account_update_multi_end",
    "account_update_time",
    "account_value",
    "parse_account_summary_request",
    "parse_account_updates_multi_request",
    "parse_account_updates_request",
    "parse_pnl_request",
    "parse_pnl_single_request",
    "parse_positions_multi_request",
    "pnl",
    "pnl_single",
    "portfolio_value",
    "position",
    "position_end",
    "position_multi",
    "position_multi_end",
]

#: Message ids not (yet) in :class:`~copilot_quant.gateway.messages.ids.Out`.
POSITION_MULTI = 71
POSITION_MULTI_END = 72

_NEW_YORK = ZoneInfo("America/New_York")


def _qty(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ----- encoders ----------------------------------------------------------------------------------------
def position(account: str, item: PositionItem) -> Fields:
    """``61, 3, account, contract11, position, avgCost`` (exactly 16 fields; position 0 removes it)."""
    return [Out.POSITION_DATA, 3, account, *contract11(item.contract), _qty(item.position), item.avg_cost]


def position_end() -> Fields:
    return [Out.POSITION_END, 1]


def portfolio_value(account: str, item: PortfolioItem) -> Fields:
    """updatePortfolio (7), exactly 20 fields, with primaryExchange in the exchange slot."""
    c = item.contract
    return [
        Out.PORTFOLIO_VALUE,
        8,
        c.con_id,
        c.wire_symbol,
        c.sec_type,
        c.last_trade_date,
        0.0,  # strike
        "",  # right
        c.multiplier,
        c.primary_exchange,
        c.currency,
        c.local_symbol or c.symbol,
        c.trading_class,
        _qty(item.position),
        item.market_price,
        item.market_value,
        item.avg_cost,
        item.unrealized_pnl,
        item.realized_pnl,
        account,
    ]


def account_value(account: str, key: str, value: str, currency: str) -> Fields:
    """``6, 2, key, value, currency, account``."""
    return [Out.ACCT_VALUE, 2, key, value, currency, account]


def account_update_time(when: datetime) -> Fields:
    """``8, 1, "HH:MM"`` in exchange time."""
    return [Out.ACCT_UPDATE_TIME, 1, f"{when.astimezone(_NEW_YORK):%H:%M}"]


def account_download_end(account: str) -> Fields:
    return [Out.ACCT_DOWNLOAD_END, 1, account]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    return [Out.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> Fields:
    return [Out.ACCOUNT_SUMMARY_END, 1, req_id]


def account_update_multi(  # noqa: PLR0917 - mirrors the wire layout field by field
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> Fields:
    return [Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency]


def account_update_multi_end(req_id: int) -> Fields:
    return [Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def position_multi(req_id: int, account: str, item: PositionItem, model_code: str = "") -> Fields:
    """``71, 1, reqId, account, contract11, position, avgCost, modelCode`` (exactly 18 fields)."""
    return [
        POSITION_MULTI,
        1,
        req_id,
        account,
        *contract11(item.contract),
        _qty(item.position),
        item.avg_cost,
        model_code,
    ]


def position_multi_end(req_id: int) -> Fields:
    return [POSITION_MULTI_END, 1, req_id]


def pnl(req_id: int, value: PnL) -> Fields:
    """``94, reqId, dailyPnL, unrealizedPnL, realizedPnL``."""
    return [Out.PNL, req_id, value.daily, value.unrealized, value.realized]


def pnl_single(req_id: int, value: PnLSingle) -> Fields:
    """``95, reqId, pos, dailyPnL, unrealizedPnL, realizedPnL, value``; ib_async reads pos as an int."""
    return [
        Out.PNL_SINGLE,
        req_id,
        int(value.position),
        value.daily,
        value.unrealized,
        value.realized,
        value.value,
    ]


# ----- request parsers ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AccountUpdatesRequest:
    subscribe: bool
    account: str


def parse_account_updates_request(reader: FieldReader) -> AccountUpdatesRequest:
    """``6, 2, subscribe, acctCode``."""
    reader.int()  # version
    return AccountUpdatesRequest(reader.bool(), reader.str())


@dataclass(frozen=True, slots=True)
class AccountSummaryRequest:
    req_id: int
    group: str
    tags: tuple[str, ...]


def parse_account_summary_request(reader: FieldReader) -> AccountSummaryRequest:
    """``62, 1, reqId, groupName, tags`` (tags comma-separated)."""
    reader.int()  # version
    req_id = reader.int()
    group = reader.str()
    tags = tuple(t.strip() for t in reader.str().split(",") if t.strip())
    return AccountSummaryRequest(req_id, group, tags)


@dataclass(frozen=True, slots=True)
class AccountUpdatesMultiRequest:
    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool


def parse_account_updates_multi_request(reader: FieldReader) -> AccountUpdatesMultiRequest:
    """``76, 1, reqId, account, modelCode, ledgerAndNLV``."""
    reader.int()  # version
    return AccountUpdatesMultiRequest(reader.int(), reader.str(), reader.str(), reader.bool())


@dataclass(frozen=True, slots=True)
class PositionsMultiRequest:
    req_id: int
    account: str
    model_code: str


def parse_positions_multi_request(reader: FieldReader) -> PositionsMultiRequest:
    """``74, 1, reqId, account, modelCode`` (ib_async sends request id 74 for reqPositionsMulti)."""
    reader.int()  # version
    return PositionsMultiRequest(reader.int(), reader.str(), reader.str())


@dataclass(frozen=True, slots=True)
class PnLRequest:
    req_id: int
    account: str
    model_code: str


def parse_pnl_request(reader: FieldReader) -> PnLRequest:
    """``92, reqId, account, modelCode`` (no version field)."""
    return PnLRequest(reader.int(), reader.str(), reader.str())


@dataclass(frozen=True, slots=True)
class PnLSingleRequest:
    req_id: int
    account: str
    model_code: str
    con_id: int


def parse_pnl_single_request(reader: FieldReader) -> PnLSingleRequest:
    """``94, reqId, account, modelCode, conId`` (no version field)."""
    return PnLSingleRequest(reader.int(), reader.str(), reader.str(), reader.int())
