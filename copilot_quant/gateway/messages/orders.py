"""Order messages: placeOrder/cancelOrder/reqExecutions parsers, and the encoders of openOrder (5),
orderStatus (3), execDetails (11), commissionReport (59), completedOrder (101) and their end markers.

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
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from copilot_quant.gateway.account import MarginImpact
from copilot_quant.gateway.contracts import ContractInfo, parse_contract12
from copilot_quant.gateway.messages import versions as sv
from copilot_quant.gateway.messages.ids import Fields, Out
from copilot_quant.gateway.orders import (
    ExecutionFilter,
    ExecutionRecord,
    PlaceOrderRequest,
    SimOrder,
)
from copilot_quant.gateway.wire import FieldReader, FrameError

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

#: Fields that follow the type of each order condition (placeOrder and openOrder encode them alike).
CONDITION_FIELDS: dict[int, int] = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}

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


# ----- parsers -----------------------------------------------------------------------------------------
def _opt_float(reader: FieldReader) -> float | None:
    text = reader.str()
    if text == "":
        return None
    if text == "Infinite":
        return float("inf")
    try:
        value = float(text)
    except ValueError:
        raise FrameError(f"expected a number field, got {text!r}") from None
    return None if value >= 1e300 else value


def _opt_int(reader: FieldReader) -> int:
    """An int field that may be empty or IB's unset integer (both: 0)."""
    text = reader.str().strip()
    try:
        value = int(text) if text else 0
    except ValueError:
        raise FrameError(f"expected an integer field, got {text!r}") from None
    return 0 if value >= 2**31 - 1 else value


def parse_place_order(reader: FieldReader, version: int = sv.SERVER_VERSION) -> PlaceOrderRequest:
    """Read a placeOrder (3) message, positioned after the message id, walking §5.1 of the notes.

    ``version`` is the connection's server version: it decides which version-gated fields the client
    sent. Every optional group is read so the frame is consumed exactly; fields the simulator does not
    model are skipped. Leftover fields are logged (a client writing a newer layout than it negotiated).
    """
    order_id = reader.int()
    contract = parse_contract12(reader)
    reader.skip(2)  # secIdType, secId
    action = reader.str().strip().upper()
    total_quantity = reader.float()
    order_type = reader.str().strip().upper()
    lmt_price = _opt_float(reader)
    aux_price = _opt_float(reader)
    tif = reader.str().strip().upper()
    oca_group = reader.str()
    account = reader.str()
    reader.skip(2)  # openClose, origin
    order_ref = reader.str()
    transmit = reader.bool()
    parent_id = reader.int()
    reader.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = reader.bool()
    reader.skip(1)  # hidden
    if contract.sec_type == "BAG":
        reader.skip(8 * reader.int())  # combo legs
        reader.skip(reader.int())  # order combo leg prices
        reader.skip(2 * reader.int())  # smart combo routing params
    reader.skip(2)  # deprecated sharesAllocation, discretionaryAmt
    good_after_time = reader.str()
    good_till_date = reader.str()
    reader.skip(3)  # faGroup, faMethod, faPercentage
    if version < sv.FA_PROFILE_DESUPPORT:
        reader.skip(1)  # faProfile
    reader.skip(4)  # modelCode, shortSaleSlot, designatedLocation, exemptCode
    oca_type = _opt_int(reader)
    reader.skip(17)  # rule80A ... volatilityType
    delta_neutral_type = reader.str()
    reader.skip(1)  # deltaNeutralAuxPrice
    if delta_neutral_type:
        reader.skip(8)
    reader.skip(2)  # continuousUpdate, referencePriceType
    trail_stop_price = _opt_float(reader)
    trailing_percent = _opt_float(reader)
    reader.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    increment = _opt_float(reader)
    if increment is not None and increment > 0:
        reader.skip(7)
    reader.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if reader.str():  # hedgeType
        reader.skip(1)  # hedgeParam
    reader.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if reader.bool():  # delta-neutral contract
        reader.skip(3)
    algo_strategy = reader.str()
    algo_params: tuple[tuple[str, str], ...] = ()
    if algo_strategy:
        algo_params = tuple((reader.str(), reader.str()) for _ in range(reader.int()))
    reader.skip(1)  # algoId
    what_if = reader.bool()
    reader.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in ("PEG BENCH", "PEGBENCH"):
        reader.skip(5)
    conditions = _parse_conditions(reader)
    reader.skip(2)  # adjustedOrderType, triggerPrice
    lmt_price_offset = _opt_float(reader)
    reader.skip(7)  # adjustedStopPrice ... softDollarTier value
    cash_qty = _opt_float(reader)
    reader.skip(
        8
    )  # mifid2 x4, dontUseAutoPriceForHedge, isOmsContainer, discretionaryUpToLimitPrice, usePriceMgmtAlgo
    reader.skip(_tail_fields(version))  # duration ... manualOrderTime, as far as the version has them
    if version >= sv.PEGBEST_PEGMID_OFFSETS:
        _skip_peg_offsets(reader, contract.exchange, order_type)
    if reader.remaining:
        log.warning("placeOrder %s carried %d unexpected trailing fields", order_id, reader.remaining)
    return PlaceOrderRequest(
        order_id=order_id,
        contract=contract,
        action=action,
        total_quantity=total_quantity,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        tif=tif or "DAY",
        oca_group=oca_group,
        oca_type=oca_type,
        account=account,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=outside_rth,
        good_after_time=good_after_time,
        good_till_date=good_till_date,
        algo_strategy=algo_strategy,
        algo_params=algo_params,
        what_if=what_if,
        conditions=conditions,
        cash_qty=cash_qty,
        trail_stop_price=trail_stop_price,
        trailing_percent=trailing_percent,
        lmt_price_offset=lmt_price_offset,
    )


def _tail_fields(version: int) -> int:
    """How many of duration, postToAts, autoCancelParent, advancedErrorOverride and manualOrderTime a
    placeOrder at ``version`` carries."""
    gates = (
        sv.DURATION,
        sv.POST_TO_ATS,
        sv.AUTO_CANCEL_PARENT,
        sv.ADVANCED_ORDER_REJECT,
        sv.MANUAL_ORDER_TIME,
    )
    return sum(version >= gate for gate in gates)


def _skip_peg_offsets(reader: FieldReader, exchange: str, order_type: str) -> None:
    """The sv-170 tail: minTradeQty (IBKRATS only), then the PEG BEST / PEG MID offsets."""
    if exchange == "IBKRATS":
        reader.skip(1)  # minTradeQty
    if order_type in ("PEG BEST", "PEGBEST"):
        reader.skip(1)  # minCompeteSize
        if reader.str() == "Infinite":  # competeAgainstBestOffset
            reader.skip(2)
    elif order_type in ("PEG MID", "PEGMID"):
        reader.skip(2)


def _parse_conditions(reader: FieldReader) -> tuple[tuple[str, ...], ...]:
    count = reader.int()
    conditions: list[tuple[str, ...]] = []
    for _ in range(count):
        kind = reader.int()
        size = CONDITION_FIELDS.get(kind)
        if size is None:
            raise FrameError(f"unknown order condition type {kind}")
        conditions.append((str(kind), *(reader.str() for _ in range(size))))
    if count > 0:
        reader.skip(2)  # conditionsIgnoreRth, conditionsCancelOrder
    return tuple(conditions)


@dataclass(frozen=True, slots=True)
class CancelOrderRequest:
    order_id: int
    manual_cancel_time: str = ""


def parse_cancel_order(reader: FieldReader) -> CancelOrderRequest:
    """``4, 1, orderId[, manualOrderCancelTime]`` (the last field from sv 169)."""
    reader.int()  # version
    order_id = reader.int()
    manual = reader.str() if reader.remaining else ""
    return CancelOrderRequest(order_id, manual)


@dataclass(frozen=True, slots=True)
class ExecutionsRequest:
    req_id: int
    filter: ExecutionFilter


def parse_executions_request(reader: FieldReader) -> ExecutionsRequest:
    """``7, 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side``."""
    reader.int()  # version
    req_id = reader.int()
    flt = ExecutionFilter(
        client_id=reader.int(),
        account=reader.str(),
        time=reader.str(),
        symbol=reader.str().strip().upper(),
        sec_type=reader.str().strip().upper(),
        exchange=reader.str().strip().upper(),
        side=reader.str().strip().upper(),
    )
    return ExecutionsRequest(req_id, flt)


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
        0,
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
        0,  # parentId
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
        UNSET_DOUBLE_TEXT,  # cashQty
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
        UNSET_DOUBLE_TEXT,  # cashQty
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
