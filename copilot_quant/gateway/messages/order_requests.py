"""What clients send about orders: the placeOrder (3), cancelOrder (4) and reqExecutions (7) parsers.

placeOrder's layout is the protocol notes' §5.1, per negotiated server version (``version``, default 178):
below 177 it carries faProfile; duration (158), postToAts (160), autoCancelParent (162),
advancedErrorOverride and manualOrderTime (166, 169) and the PEG BEST/MID block (170) exist from the version
in brackets (the gates are in :mod:`copilot_quant.gateway.messages.versions`). Every optional group is read
so that the frame is consumed exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from copilot_quant.gateway.contracts import parse_contract12
from copilot_quant.gateway.messages import versions as sv
from copilot_quant.gateway.orders import ExecutionFilter, PlaceOrderRequest
from copilot_quant.gateway.wire import FieldReader, FrameError

__all__ = [
    "CONDITION_FIELDS",
    "CancelOrderRequest",
    "ExecutionsRequest",
    "parse_cancel_order",
    "parse_executions_request",
    "parse_place_order",
]

log = logging.getLogger(__name__)

#: Fields that follow the type of each order condition (placeOrder and openOrder encode them alike).
CONDITION_FIELDS: dict[int, int] = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


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
