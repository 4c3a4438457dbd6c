"""What clients send about orders: the placeOrder (3), cancelOrder (4) and reqExecutions (7) parsers.

placeOrder's layout is the protocol notes' §5.1, per negotiated server version (``version``, default 178):
below 177 it carries faProfile; duration (158), postToAts (160), autoCancelParent (162),
advancedErrorOverride and manualOrderTime (166, 169) and the PEG BEST/MID block (170) exist from the version
in brackets (the gates are in :mod:`copilot_quant.gateway.messages.versions`). Every optional group is read
so that the frame is consumed exactly, and every execution-changing field is kept (see
:func:`parse_place_order` for the fields skipped on purpose and why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from copilot_quant.gateway.contracts import parse_contract12
from copilot_quant.gateway.messages import versions as sv
from copilot_quant.gateway.order_options import ExecutionOptions
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
    return _maybe_int(reader) or 0


def _maybe_int(reader: FieldReader) -> int | None:
    """An int field; None when empty or IB's unset integer (ib_async sends "", IB's client the number)."""
    text = reader.str().strip()
    if not text:
        return None
    try:
        value = int(float(text)) if any(c in text for c in ".eE") else int(text)
    except (ValueError, OverflowError):
        raise FrameError(f"expected an integer field, got {text!r}") from None
    return None if value >= 2**31 - 1 else value


def _flag(reader: FieldReader) -> bool:
    """A boolean field: "1" is true; empty, "0", "false" and IB's unset integer are false."""
    text = reader.str().strip()
    if text in ("", "0", "false", "False"):
        return False
    return text != str(2**31 - 1)


_Read = Callable[[FieldReader], object]


def _read_options(reader: FieldReader, options: dict[str, object], *names: tuple[str, _Read]) -> None:
    """Read the next fields into ``options`` (ExecutionOptions field name -> value), in order."""
    for name, read in names:
        options[name] = read(reader)


def _str(reader: FieldReader) -> str:
    return reader.str()


def parse_place_order(reader: FieldReader, version: int = sv.SERVER_VERSION) -> PlaceOrderRequest:
    """Read a placeOrder (3) message, positioned after the message id, walking §5.1 of the notes.

    ``version`` is the connection's server version: it decides which version-gated fields the client
    sent. Every optional group is read so the frame is consumed exactly. Leftover fields are logged (a
    client writing a newer layout than it negotiated).

    Every field that changes how IB executes an order is read into the request: the ones the simulator
    models into their own attributes, the others into ``options`` (:class:`ExecutionOptions`), which the
    broker refuses when set. Skipped on purpose, because they carry no execution meaning here:
    secIdType/secId (the contract is resolved from its other fields), openClose and origin (customer
    open/close labels for options and institutions), the deprecated sharesAllocation, modelCode, rule80A,
    extOperator, solicited, algoId, manualOrderTime and the four mifid2 fields (regulatory labels),
    shortSaleSlot, designatedLocation, exemptCode, settlingFirm, clearingAccount and clearingIntent
    (institutional clearing and short-sale locate information), softDollarTier (research payment),
    overridePercentageConstraints and advancedErrorOverride (the simulator has no precautionary checks to
    override), orderMiscOptions (IB internal, always empty), dontUseAutoPriceForHedge (meaningful only
    with a hedgeType, which is refused). Fields that only follow a refused field are skipped too: BAG combo
    legs (secType BAG is refused), the delta-neutral order's 8 fields (deltaNeutralOrderType), the
    delta-neutral contract's 3 (its flag), the scale order's 7 (scalePriceIncrement), hedgeParam
    (hedgeType), the PEG BENCH/BEST/MID fields (those order types are refused) and conditionsIgnoreRth /
    conditionsCancelOrder (conditions are refused).
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
    options: dict[str, object] = {}
    _read_options(
        reader, options, ("block_order", _flag), ("sweep_to_fill", _flag), ("display_size", _maybe_int)
    )
    trigger_method = _opt_int(reader)
    outside_rth = reader.bool()
    options["hidden"] = _flag(reader)
    if contract.sec_type == "BAG":
        reader.skip(8 * reader.int())  # combo legs
        reader.skip(reader.int())  # order combo leg prices
        reader.skip(2 * reader.int())  # smart combo routing params
    reader.skip(1)  # deprecated sharesAllocation
    options["discretionary_amt"] = _opt_float(reader)
    good_after_time = reader.str()
    good_till_date = reader.str()
    _read_options(reader, options, ("fa_group", _str), ("fa_method", _str), ("fa_percentage", _str))
    if version < sv.FA_PROFILE_DESUPPORT:
        options["fa_profile"] = reader.str()
    reader.skip(4)  # modelCode, shortSaleSlot, designatedLocation, exemptCode
    oca_type = _opt_int(reader)
    reader.skip(2)  # rule80A, settlingFirm
    _read_section5(reader, options)
    trail_stop_price = _opt_float(reader)
    trailing_percent = _opt_float(reader)
    _read_scale_and_hedge(reader, options)
    algo_strategy = reader.str()
    algo_params: tuple[tuple[str, str], ...] = ()
    if algo_strategy:
        algo_params = tuple((reader.str(), reader.str()) for _ in range(reader.int()))
    reader.skip(1)  # algoId
    what_if = reader.bool()
    reader.skip(2)  # orderMiscOptions, solicited
    _read_options(reader, options, ("randomize_size", _flag), ("randomize_price", _flag))
    if order_type in ("PEG BENCH", "PEGBENCH"):
        reader.skip(5)
    conditions = _parse_conditions(reader)
    _read_options(reader, options, ("adjusted_order_type", _str), ("trigger_price", _opt_float))
    lmt_price_offset = _opt_float(reader)
    _read_options(
        reader,
        options,
        ("adjusted_stop_price", _opt_float),
        ("adjusted_stop_limit_price", _opt_float),
        ("adjusted_trailing_amount", _opt_float),
        ("adjustable_trailing_unit", _maybe_int),
    )
    reader.skip(3)  # extOperator, softDollarTier name and value
    cash_qty = _opt_float(reader)
    reader.skip(5)  # mifid2 x4, dontUseAutoPriceForHedge
    _read_options(
        reader,
        options,
        ("is_oms_container", _flag),
        ("discretionary_up_to_limit_price", _flag),
        ("use_price_mgmt_algo", _flag),
    )
    _read_tail(reader, options, version)
    if version >= sv.PEGBEST_PEGMID_OFFSETS:
        _read_peg_offsets(reader, options, contract.exchange, order_type)
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
        trigger_method=trigger_method,
        options=ExecutionOptions(**options),  # type: ignore[arg-type]
    )


def _read_section5(reader: FieldReader, options: dict[str, object]) -> None:
    """allOrNone ... deltaNeutralAuxPrice (§5.1 item 5 after settlingFirm, and item 6)."""
    _read_options(
        reader,
        options,
        ("all_or_none", _flag),
        ("min_qty", _maybe_int),
        ("percent_offset", _opt_float),
        ("e_trade_only", _flag),
        ("firm_quote_only", _flag),
        ("nbbo_price_cap", _opt_float),
        ("auction_strategy", _maybe_int),
        ("starting_price", _opt_float),
        ("stock_ref_price", _opt_float),
        ("delta", _opt_float),
        ("stock_range_lower", _opt_float),
        ("stock_range_upper", _opt_float),
    )
    reader.skip(1)  # overridePercentageConstraints
    _read_options(
        reader,
        options,
        ("volatility", _opt_float),
        ("volatility_type", _maybe_int),
        ("delta_neutral_order_type", _str),
        ("delta_neutral_aux_price", _opt_float),
    )
    if options["delta_neutral_order_type"]:
        reader.skip(8)  # the delta-neutral order's conId ... designatedLocation
    _read_options(reader, options, ("continuous_update", _flag), ("reference_price_type", _maybe_int))


def _read_scale_and_hedge(reader: FieldReader, options: dict[str, object]) -> None:
    """scaleInitLevelSize ... the delta-neutral contract (§5.1 items 7 to 9, after trailingPercent)."""
    _read_options(
        reader,
        options,
        ("scale_init_level_size", _maybe_int),
        ("scale_subs_level_size", _maybe_int),
        ("scale_price_increment", _opt_float),
    )
    increment = options["scale_price_increment"]
    if isinstance(increment, float) and increment > 0:
        reader.skip(7)  # scalePriceAdjustValue ... scaleRandomPercent
    _read_options(
        reader,
        options,
        ("scale_table", _str),
        ("active_start_time", _str),
        ("active_stop_time", _str),
        ("hedge_type", _str),
    )
    if options["hedge_type"]:
        reader.skip(1)  # hedgeParam
    options["opt_out_smart_routing"] = _flag(reader)
    reader.skip(2)  # clearingAccount, clearingIntent
    _read_options(reader, options, ("not_held", _flag), ("delta_neutral_contract", _flag))
    if options["delta_neutral_contract"]:
        reader.skip(3)  # its conId, delta, price


def _read_tail(reader: FieldReader, options: dict[str, object], version: int) -> None:
    """duration, postToAts, autoCancelParent, advancedErrorOverride and manualOrderTime, as far as
    ``version`` has them."""
    if version >= sv.DURATION:
        options["duration"] = _maybe_int(reader)
    if version >= sv.POST_TO_ATS:
        options["post_to_ats"] = _maybe_int(reader)
    if version >= sv.AUTO_CANCEL_PARENT:
        options["auto_cancel_parent"] = _flag(reader)
    if version >= sv.ADVANCED_ORDER_REJECT:
        reader.skip(1)  # advancedErrorOverride
    if version >= sv.MANUAL_ORDER_TIME:
        reader.skip(1)  # manualOrderTime


def _read_peg_offsets(
    reader: FieldReader, options: dict[str, object], exchange: str, order_type: str
) -> None:
    """The sv-170 tail: minTradeQty (IBKRATS only), then the PEG BEST / PEG MID offsets."""
    if exchange == "IBKRATS":
        options["min_trade_qty"] = _maybe_int(reader)
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
