"""Order messages: the encoders of openOrder (5), orderStatus (3), execDetails (11), commissionReport (59),
completedOrder (101) and their end markers. The placeOrder/cancelOrder/reqExecutions parsers are
:mod:`~copilot_quant.gateway.messages.order_requests` (re-exported here).

Layouts are the protocol notes' §5, per negotiated server version (``version``, default 178): below 177
openOrder, completedOrder and placeOrder carry faProfile; duration (158), postToAts (160),
autoCancelParent (162), advancedErrorOverride and manualOrderTime (166, 169, placeOrder only), the PEG
BEST/MID block (170) and execDetails' pendingPriceRevision (178) exist from the version in brackets (the
gates are in :mod:`copilot_quant.gateway.messages.versions`). openOrder and completedOrder are written with
every optional group switched off (no delta-neutral, scale, hedge, algo, PEG or conditions) and every
count a number, which is what ib_async's decoder needs; openOrder is then exactly 127 fields at 178.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from copilot_quant.gateway.account import MarginImpact
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.messages import versions as sv
from copilot_quant.gateway.messages.ids import Fields, Out
from copilot_quant.gateway.messages.order_requests import (
    CONDITION_FIELDS,
    CancelOrderRequest,
    ExecutionsRequest,
    parse_cancel_order,
    parse_executions_request,
    parse_place_order,
)
from copilot_quant.gateway.orders import (
    ExecutionRecord,
    SimOrder,
)

__all__ = [
    "CONDITION_FIELDS",
    "UNSET_DOUBLE_TEXT",
    "UNSET_INTEGER_TEXT",
    "CancelOrderRequest",
    "ExecutionsRequest",
    "commission_report",
    "completed_order",
    "completed_orders_end",
    "contract11",
    "exec_details",
    "exec_details_end",
    "format_ib_time",
    "open_order",
    "open_order_end",
    "order_status",
    "parse_cancel_order",
    "parse_executions_request",
    "parse_place_order",
]

log = logging.getLogger(__name__)

#: What real TWS writes for unset doubles and ints in order and commission fields (ib_async maps both back).
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"
UNSET_INTEGER_TEXT = "2147483647"

_EXEC_ZONE_NAME = "US/Eastern"
_EXEC_ZONE = ZoneInfo("America/New_York")


def format_ib_time(when: datetime) -> str:
    """``yyyymmdd hh:mm:ss US/Eastern`` with the wall-clock time in that zone (execDetails, completedTime)."""
    return f"{when.astimezone(_EXEC_ZONE):%Y%m%d %H:%M:%S} {_EXEC_ZONE_NAME}"


def _ib_time(when: datetime | None) -> str:
    """A GTD order's goodTillDate as TWS writes it (``yyyymmdd hh:mm:ss zone``), "" for none."""
    return "" if when is None else f"{when.astimezone(_EXEC_ZONE):%Y%m%d %H:%M:%S} {_EXEC_ZONE_NAME}"


def _qty(value: float) -> str:
    """Quantities as TWS sends them: whole numbers without a decimal point."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _price(value: float | None) -> object:
    return UNSET_DOUBLE_TEXT if value is None else value


# ----- encoders ----------------------------------------------------------------------------------------
def contract11(info: ContractInfo) -> Fields:
    """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency, localSymbol,
    tradingClass (the contract block of openOrder, completedOrder, execDetails and position)."""
    return [
        info.con_id,
        info.wire_symbol,
        info.sec_type,
        info.last_trade_date,
        0.0,
        "",
        info.multiplier,
        info.exchange,
        info.currency,
        info.local_symbol or info.symbol,
        info.trading_class,
    ]


def order_status(record: SimOrder) -> Fields:
    """``3, orderId, status, filled, remaining, avgFillPrice, permId, parentId, lastFillPrice, clientId,
    whyHeld, mktCapPrice`` (no version field since sv 131)."""
    return [
        Out.ORDER_STATUS,
        record.order_id,
        record.status.value,
        _qty(record.filled),
        _qty(record.remaining),
        record.avg_fill_price,
        record.perm_id,
        record.parent_id,
        record.last_fill_price,
        record.client_id,
        "",
        0.0,
    ]


def _margin_block(what_if: MarginImpact | None) -> Fields:
    if what_if is None:
        return [*([UNSET_DOUBLE_TEXT] * 12), "", ""]
    m = what_if
    numbers = [
        m.init_before,
        m.maint_before,
        m.equity_before,
        m.init_change,
        m.maint_change,
        m.equity_change,
        m.init_after,
        m.maint_after,
        m.equity_after,
    ]
    # ib_async calls float() on these: they must be numeric strings, never empty.
    return [f"{n:.2f}" for n in numbers] + [m.commission, m.commission, m.commission, m.currency, ""]


def open_order(
    record: SimOrder, what_if: MarginImpact | None = None, version: int = sv.SERVER_VERSION
) -> Fields:
    """openOrder (5) in ``version``'s layout (127 fields at 178). With ``what_if`` it is the answer to a
    whatIf order (numeric margins)."""
    fields: Fields = [Out.OPEN_ORDER, record.order_id, *contract11(record.contract)]
    fields += [
        record.action.value,
        _qty(record.quantity),
        record.order_type.value,
        _price(record.lmt_price),
        _price(record.aux_price),
        record.tif.value,
        record.oca_group,
        record.account,
        "O",  # openClose
        0,  # origin: customer
        record.order_ref,
        record.client_id,
        record.perm_id,
        record.outside_rth,
        False,  # hidden
        0.0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # deprecated sharesAllocation
        *_fa_params(version),
        "",  # modelCode
        _ib_time(record.good_till),  # goodTillDate
        "",  # rule80A
        UNSET_DOUBLE_TEXT,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        UNSET_DOUBLE_TEXT,  # startingPrice
        UNSET_DOUBLE_TEXT,  # stockRefPrice
        UNSET_DOUBLE_TEXT,  # delta
        UNSET_DOUBLE_TEXT,  # stockRangeLower
        UNSET_DOUBLE_TEXT,  # stockRangeUpper
        UNSET_INTEGER_TEXT,  # displaySize
        False,  # blockOrder
        False,  # sweepToFill
        False,  # allOrNone
        UNSET_INTEGER_TEXT,  # minQty
        record.oca_type or 3,  # ocaType (TWS reports 3 for an order outside any group)
        False,  # eTradeOnly
        False,  # firmQuoteOnly
        UNSET_DOUBLE_TEXT,  # nbboPriceCap
        record.parent_id,  # parentId
        0,  # triggerMethod
        UNSET_DOUBLE_TEXT,  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType (empty: no delta-neutral group; ib_async only checks truthiness)
        UNSET_DOUBLE_TEXT,  # deltaNeutralAuxPrice
    ]
    fields += [
        False,  # continuousUpdate
        0,  # referencePriceType
        _price(record.trail_stop_price),  # trailStopPrice
        _price(record.trailing_percent),  # trailingPercent
        UNSET_DOUBLE_TEXT,  # basisPoints
        UNSET_INTEGER_TEXT,  # basisPointsType
        "",  # comboLegsDescrip
        0,  # combo legs count
        0,  # order combo leg prices count
        0,  # smart combo routing params count
        UNSET_INTEGER_TEXT,  # scaleInitLevelSize
        UNSET_INTEGER_TEXT,  # scaleSubsLevelSize
        UNSET_DOUBLE_TEXT,  # scalePriceIncrement (unset: no scale group follows)
        "",  # hedgeType (empty: no hedgeParam)
        False,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        0,  # delta-neutral contract flag
        "",  # algoStrategy (empty: no params)
        False,  # solicited
        what_if is not None,  # whatIf
        record.status.value,
        *_margin_block(what_if),
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions count
        "",  # adjustedOrderType
        UNSET_DOUBLE_TEXT,  # triggerPrice
        _price(record.trail_stop_price),  # trailStopPrice
        _price(record.lmt_price_offset),  # lmtPriceOffset
        UNSET_DOUBLE_TEXT,  # adjustedStopPrice
        UNSET_DOUBLE_TEXT,  # adjustedStopLimitPrice
        UNSET_DOUBLE_TEXT,  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        _price(record.cash_qty),  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        False,  # discretionaryUpToLimitPrice
        False,  # usePriceMgmtAlgo
    ]
    if version >= sv.DURATION:
        fields.append(UNSET_INTEGER_TEXT)  # duration
    if version >= sv.POST_TO_ATS:
        fields.append(UNSET_INTEGER_TEXT)  # postToAts
    if version >= sv.AUTO_CANCEL_PARENT:
        fields.append(False)  # autoCancelParent
    return fields + _peg_offsets(version)


def open_order_end() -> Fields:
    return [Out.OPEN_ORDER_END, 1]


def _fa_params(version: int) -> Fields:
    """faGroup, faMethod, faPercentage, and faProfile below server version 177 (all empty)."""
    return ["", "", ""] if version >= sv.FA_PROFILE_DESUPPORT else ["", "", "", ""]


def _peg_offsets(version: int) -> Fields:
    """minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsetAtWhole, midOffsetAtHalf (sv 170)."""
    if version < sv.PEGBEST_PEGMID_OFFSETS:
        return []
    return [UNSET_INTEGER_TEXT, UNSET_INTEGER_TEXT, UNSET_DOUBLE_TEXT, UNSET_DOUBLE_TEXT, UNSET_DOUBLE_TEXT]


def completed_order(record: SimOrder, version: int = sv.SERVER_VERSION) -> Fields:
    """completedOrder (101) in ``version``'s layout: no orderId, clientId or sharesAllocation, and no
    margin block."""
    completed = format_ib_time(record.completed_at) if record.completed_at is not None else ""
    fields: Fields = [Out.COMPLETED_ORDER, *contract11(record.contract)]
    fields += [
        record.action.value,
        _qty(record.quantity),
        record.order_type.value,
        _price(record.lmt_price),
        _price(record.aux_price),
        record.tif.value,
        record.oca_group,
        record.account,
        "O",  # openClose
        0,  # origin
        record.order_ref,
        record.perm_id,
        record.outside_rth,
        False,  # hidden
        0.0,  # discretionaryAmt
        "",  # goodAfterTime
        *_fa_params(version),
        "",  # modelCode
        _ib_time(record.good_till),  # goodTillDate
        "",  # rule80A
        UNSET_DOUBLE_TEXT,  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        UNSET_DOUBLE_TEXT,  # startingPrice
        UNSET_DOUBLE_TEXT,  # stockRefPrice
        UNSET_DOUBLE_TEXT,  # delta
        UNSET_DOUBLE_TEXT,  # stockRangeLower
        UNSET_DOUBLE_TEXT,  # stockRangeUpper
        UNSET_INTEGER_TEXT,  # displaySize
        False,  # sweepToFill
        False,  # allOrNone
        UNSET_INTEGER_TEXT,  # minQty
        record.oca_type or 3,  # ocaType (TWS reports 3 for an order outside any group)
        0,  # triggerMethod
        UNSET_DOUBLE_TEXT,  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType (empty: no delta-neutral group)
        UNSET_DOUBLE_TEXT,  # deltaNeutralAuxPrice
        False,  # continuousUpdate
        0,  # referencePriceType
        _price(record.trail_stop_price),  # trailStopPrice
        _price(record.trailing_percent),  # trailingPercent
        "",  # comboLegsDescrip
        0,  # combo legs count
        0,  # order combo leg prices count
        0,  # smart combo routing params count
        UNSET_INTEGER_TEXT,  # scaleInitLevelSize
        UNSET_INTEGER_TEXT,  # scaleSubsLevelSize
        UNSET_DOUBLE_TEXT,  # scalePriceIncrement
        "",  # hedgeType
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        0,  # delta-neutral contract flag
        "",  # algoStrategy
        False,  # solicited
        record.status.value,
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions count
        _price(record.trail_stop_price),  # trailStopPrice
        _price(record.lmt_price_offset),  # lmtPriceOffset
        _price(record.cash_qty),  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        "",  # autoCancelDate
        _qty(record.filled),  # filledQuantity
        0,  # refFuturesConId
        False,  # autoCancelParent
        "",  # shareholder
        False,  # imbalanceOnly
        False,  # routeMarketableToBbo
        0,  # parentPermId
        completed,  # completedTime
        record.completed_status,
    ]
    return fields + _peg_offsets(version)


def completed_orders_end() -> Fields:
    """``102``: a single field, no version."""
    return [Out.COMPLETED_ORDERS_END]


def exec_details(req_id: int, execution: ExecutionRecord, version: int = sv.SERVER_VERSION) -> Fields:
    """execDetails (11): reqId is −1 for live fills or the reqExecutions id; from server version 178 it
    ends with pendingPriceRevision (ib_insync, which stops at 176, unpacks exactly the fields before it)."""
    e = execution
    fields: Fields = [
        Out.EXECUTION_DATA,
        req_id,
        e.order_id,
        *contract11(e.contract),
        e.exec_id,
        format_ib_time(e.time),
        e.account,
        e.contract.primary_exchange or e.contract.exchange,
        e.side,
        _qty(e.shares),
        e.price,
        e.perm_id,
        e.client_id,
        0,  # liquidation
        _qty(e.cum_qty),
        e.avg_price,
        e.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        2,  # lastLiquidity: removed liquidity (a marketable fill)
    ]
    if version >= sv.PENDING_PRICE_REVISION:
        fields.append(False)  # pendingPriceRevision
    return fields


def exec_details_end(req_id: int) -> Fields:
    return [Out.EXECUTION_DATA_END, 1, req_id]


def commission_report(execution: ExecutionRecord) -> Fields:
    """``59, 1, execId, commission, currency, realizedPNL, yield, yieldRedemptionDate`` (exactly 8 fields).

    An opening trade has no realized P&L: TWS sends its unset double, which ib_async maps to 0.
    """
    realized = UNSET_DOUBLE_TEXT if execution.realized_pnl is None else execution.realized_pnl
    return [
        Out.COMMISSION_REPORT,
        1,
        execution.exec_id,
        execution.commission,
        execution.currency,
        realized,
        UNSET_DOUBLE_TEXT,
        "",
    ]
