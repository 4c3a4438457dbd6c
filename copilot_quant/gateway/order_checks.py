"""What the simulated gateway refuses in a placeOrder, with the reason TWS's 201 error carries.

Each check returns the text after ``"Order rejected - reason:"`` or None. The group rules have their own
modules (:mod:`~copilot_quant.gateway.oca`, :mod:`~copilot_quant.gateway.trailing`); buying power is
checked last, against the account's available funds at the order's reference price.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from copilot_quant.gateway.account import Account
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.fut_fx_orders import quantity_problem
from copilot_quant.gateway.order_options import unsupported_option
from copilot_quant.gateway.orders import (
    IbAction,
    IbOrderType,
    PlaceOrderRequest,
    SimOrder,
    TimeInForceCode,
    finite_or_none,
    parse_ib_time,
)
from copilot_quant.gateway.trailing import trailing_problem

__all__ = [
    "auction_of",
    "buying_power_problem",
    "execution_problem",
    "parse_order_type",
    "parse_tif",
    "reference_price",
    "request_problem",
]

_NEW_YORK = ZoneInfo("America/New_York")
_SUPPORTED_TYPES = ", ".join(t.value for t in IbOrderType)

#: What a whole order would cost now: ``quote(price, quantity, action)`` (commission plus fees).
Quote = Callable[[float, float, IbAction], float]


def parse_order_type(text: str) -> IbOrderType | None:
    """IB's order type string (``"STP LMT"``, also ``"STPLMT"``) or None when unknown."""
    normalized = " ".join(text.upper().replace("STPLMT", "STP LMT").split())
    try:
        return IbOrderType(normalized)
    except ValueError:
        return None


def parse_tif(text: str) -> TimeInForceCode:
    try:
        return TimeInForceCode(text.strip().upper())
    except ValueError:
        return TimeInForceCode.DAY  # empty: IB's default (anything else was refused before)


def auction_of(record: SimOrder) -> str:
    """The auction an order executes in only: ``"open"`` (OPG), ``"close"`` (MOC, LOC) or ``""``."""
    if record.tif is TimeInForceCode.OPG:
        return "open"
    return "close" if record.order_type.on_close else ""


def request_problem(
    req: PlaceOrderRequest, contract: ContractInfo, *, account_id: str, now: datetime
) -> str | None:
    """Why TWS would reject ``req`` on its own terms (type, prices, time in force, account, contract)."""
    if req.action.upper() not in ("BUY", "SELL"):
        return f"unknown action {req.action!r}; use BUY or SELL"
    order_type = parse_order_type(req.order_type)
    if order_type is None:
        return f"order type {req.order_type!r} is not supported by the simulated gateway; use one of {_SUPPORTED_TYPES}"
    qty = req.total_quantity
    if not (math.isfinite(qty) and qty > 0):
        return f"order quantity must be positive, got {qty:g}"
    if order_type.needs_limit and not _positive(req.lmt_price):
        return f"a {order_type.value} order needs a positive limit price (lmtPrice)"
    if order_type.needs_stop and not _positive(req.aux_price):
        return f"a {order_type.value} order needs a positive stop price (auxPrice)"
    if order_type.is_trailing:
        problem = trailing_problem(req, order_type)
        if problem is not None:
            return problem
    return (
        _tif_problem(req, order_type, now)
        or _unsupported_problem(req, contract, account_id)
        or expired_problem(contract, now)
    )


def expired_problem(contract: ContractInfo, now: datetime) -> str | None:
    """A futures contract past its last trade date no longer trades (IB: it is no longer listed)."""
    if contract.sec_type != "FUT" or not contract.last_trade_date:
        return None
    today = f"{now.astimezone(_NEW_YORK):%Y%m%d}"
    if today <= contract.last_trade_date:
        return None
    return (
        f"{contract.symbol} expired: its last trade date was {contract.last_trade_date}; trade a listed "
        f"contract (reqContractDetails(Future({contract.wire_symbol!r})) lists them)"
    )


def _tif_problem(req: PlaceOrderRequest, order_type: IbOrderType, now: datetime) -> str | None:
    tif = req.tif.upper() or "DAY"
    if tif not in ("DAY", "GTC", "OPG", "IOC", "GTD"):
        return (
            f"time in force {req.tif!r} is not supported by the simulated gateway; use DAY, GTC, OPG, "
            "IOC or GTD"
        )
    if tif == "GTD":
        until = parse_ib_time(req.good_till_date)
        if until is None:
            return f"a GTD order needs goodTillDate as yyyymmdd hh:mm:ss [zone], got {req.good_till_date!r}"
        if until <= now:
            return f"goodTillDate {req.good_till_date} has passed"
    if tif == "IOC" and order_type not in (IbOrderType.MKT, IbOrderType.LMT):
        return f"time in force IOC (immediate or cancel) takes MKT or LMT orders, not {order_type.value}"
    if tif == "OPG" and order_type not in (IbOrderType.MKT, IbOrderType.LMT):
        return f"time in force OPG (the opening auction) takes MKT or LMT orders, not {order_type.value}"
    if order_type.on_close and tif != "DAY":
        return f"a {order_type.value} order is for today's closing auction: its time in force must be DAY"
    return None


#: IB's triggerMethod values the simulator honours: 0 (default: last for US stocks) and 2 (last). The gateway's
#: stops trigger on the prices it trades at, so both mean what it does (see copilot_quant.gateway.matching).
_TRIGGER_METHODS = (0, 2)
_WITHOUT = "is not supported by the simulated gateway; send the order without it"


def execution_problem(req: PlaceOrderRequest) -> str | None:
    """Why ``req`` asks for an execution the simulator does not model: a trigger method other than on
    trades, a goodAfterTime, an IB algo, or any set field of its :class:`ExecutionOptions`."""
    if req.trigger_method not in _TRIGGER_METHODS:
        return (
            f"triggerMethod={req.trigger_method} is not supported by the simulated gateway: its stops trigger "
            "on trades (0, the default, or 2, last); send the order without it"
        )
    if req.good_after_time:
        return f"goodAfterTime={req.good_after_time!r} {_WITHOUT}"
    if req.algo_strategy:
        return f"algoStrategy={req.algo_strategy!r} (an IB algo) {_WITHOUT}"
    return unsupported_option(req.options)


def _unsupported_problem(req: PlaceOrderRequest, contract: ContractInfo, account_id: str) -> str | None:
    problem = execution_problem(req)
    if problem is not None:
        return problem
    if req.conditions:
        return "conditional orders are not supported by the simulated gateway"
    if req.account and req.account != account_id:
        return f"account {req.account!r} is not managed here; this gateway manages {account_id}"
    if contract.sec_type == "CONTFUT":
        return (
            f"a continuous future (CONTFUT) cannot be traded; order its front contract "
            f"{contract.local_symbol}, e.g. Future(conId={contract.con_id}, exchange={contract.exchange!r})"
        )
    if contract.sec_type not in ("STK", "FUT", "CASH"):
        return (
            "only stocks, futures and forex pairs can be traded on the simulated gateway, got secType "
            f"{contract.sec_type!r}"
        )
    return quantity_problem(req, contract)


def reference_price(req: PlaceOrderRequest, last_price: float | None) -> float | None:
    """The price an order is valued at before it fills: its limit, its stop, else the last price."""
    order_type = parse_order_type(req.order_type)
    limit, stop = finite_or_none(req.lmt_price), finite_or_none(req.aux_price)
    if order_type in (IbOrderType.LMT, IbOrderType.STP_LMT, IbOrderType.LOC) and limit:
        return limit
    if order_type is IbOrderType.STP and stop:
        return stop
    return last_price


def buying_power_problem(
    req: PlaceOrderRequest, contract: ContractInfo, account: Account, price: float | None, quote: Quote
) -> str | None:
    """Why ``req`` at reference ``price`` needs more funds than ``account`` has available, or None."""
    if price is None:
        return None  # a market order before any price is known: it fills at the next price, unchecked
    action = IbAction.BUY if req.action.upper() == "BUY" else IbAction.SELL
    sign = action.side.sign
    commission = quote(price, req.total_quantity, action)
    impact = account.margin_impact(contract, sign * req.total_quantity, price, commission)
    needed = impact.init_change + commission
    if impact.init_change > 0 and needed > account.available_funds + 1e-9:
        if contract.sec_type == "FUT":
            basis = f"{req.total_quantity:g} contracts x {contract.initial_margin:,.2f} initial margin"
        elif contract.sec_type == "CASH":
            basis = f"{req.total_quantity:g} x {price:,.5g} x forex margin {account.forex_margin:.0%}"
        else:
            basis = f"{req.total_quantity:g} x {price:,.2f} / leverage {account.leverage:g}"
        return (
            f"insufficient buying power: the order needs {needed:,.2f} {account.currency} of funds "
            f"({basis} + commission), available funds are {account.available_funds:,.2f} {account.currency}"
        )
    return None


def _positive(value: float | None) -> bool:
    price = finite_or_none(value)
    return price is not None and price > 0
