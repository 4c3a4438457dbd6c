"""Order and execution records of the simulated gateway, in IB's own vocabulary, and id allocation.

This is the gateway side of the edge: values here carry IB's strings (``BUY``, ``STP LMT``,
``PreSubmitted``, ``BOT``) because they go straight onto the wire. Everything is a small frozen value;
:class:`~copilot_quant.gateway.broker.SimBroker` replaces a record with an updated copy instead of
mutating it, so a record handed out in an event never changes underneath its reader.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from copilot_quant.gateway.order_options import ExecutionOptions
from copilot_quant.model.orders import OrderSide

if TYPE_CHECKING:
    from copilot_quant.gateway.contracts import ContractInfo, ContractRequest

__all__ = [
    "ExecutionFilter",
    "ExecutionRecord",
    "IbAction",
    "IbOrderType",
    "IbStatus",
    "IdAllocator",
    "PlaceOrderRequest",
    "SimOrder",
    "TimeInForceCode",
    "exec_id_tag",
    "new_exec_id_tag",
    "parse_ib_time",
]

_EXCHANGE_TZ = ZoneInfo("America/New_York")


class IbAction(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def side(self) -> OrderSide:
        return OrderSide.BUY if self is IbAction.BUY else OrderSide.SELL

    @property
    def exec_side(self) -> str:
        """The side string of an execution report (``BOT``/``SLD``)."""
        return "BOT" if self is IbAction.BUY else "SLD"


class IbOrderType(StrEnum):
    MKT = "MKT"
    LMT = "LMT"
    STP = "STP"
    STP_LMT = "STP LMT"
    TRAIL = "TRAIL"
    TRAIL_LIMIT = "TRAIL LIMIT"
    MOC = "MOC"
    LOC = "LOC"

    @property
    def needs_limit(self) -> bool:
        return self in (IbOrderType.LMT, IbOrderType.STP_LMT, IbOrderType.LOC)

    @property
    def on_close(self) -> bool:
        return self in (IbOrderType.MOC, IbOrderType.LOC)

    @property
    def is_trailing(self) -> bool:
        return self in (IbOrderType.TRAIL, IbOrderType.TRAIL_LIMIT)

    @property
    def needs_stop(self) -> bool:
        return self in (IbOrderType.STP, IbOrderType.STP_LMT)


class TimeInForceCode(StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    OPG = "OPG"
    IOC = "IOC"
    GTD = "GTD"


class IbStatus(StrEnum):
    """Order states as TWS reports them in orderStatus/openOrder."""

    PRE_SUBMITTED = "PreSubmitted"  # accepted, held by IB until it can work (simulated stops wait here)
    SUBMITTED = "Submitted"  # working at the exchange (also with partial fills)
    FILLED = "Filled"
    CANCELLED = "Cancelled"  # cancelled by the client, by global cancel, or expired (DAY) or rejected

    @property
    def is_done(self) -> bool:
        return self in (IbStatus.FILLED, IbStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class PlaceOrderRequest:
    """A placeOrder (3) message as the client sent it, reduced to what the simulator uses.

    ``order_type``, ``action`` and ``tif`` are the raw strings: the broker validates them (an unknown
    order type is a 201 rejection, not a parse error). Unset prices are ``None``. ``algo_params`` and
    ``conditions`` are parsed so the frame is consumed exactly; the broker rejects algo and conditional
    orders, a goodAfterTime, a triggerMethod other than 0 (default) and 2 (last), and any execution
    option the simulator does not model (``options``, see :mod:`~copilot_quant.gateway.order_options`).
    """

    order_id: int
    contract: ContractRequest
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    outside_rth: bool = False
    good_after_time: str = ""
    good_till_date: str = ""
    algo_strategy: str = ""
    algo_params: tuple[tuple[str, str], ...] = ()
    what_if: bool = False
    conditions: tuple[tuple[str, ...], ...] = ()
    cash_qty: float | None = None
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    lmt_price_offset: float | None = None
    trigger_method: int = 0
    options: ExecutionOptions = field(default_factory=ExecutionOptions)


@dataclass(frozen=True, slots=True)
class SimOrder:
    """The simulated gateway's view of one order: what was asked and how far it got."""

    client_id: int
    order_id: int
    perm_id: int
    contract: ContractInfo
    action: IbAction
    quantity: float
    order_type: IbOrderType
    lmt_price: float | None
    aux_price: float | None
    tif: TimeInForceCode
    account: str
    submitted_at: datetime
    status: IbStatus = IbStatus.SUBMITTED
    order_ref: str = ""
    outside_rth: bool = False
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    completed_at: datetime | None = None
    #: Why an order ended (``"Filled"``, ``"Cancelled by client"``, ``"Rejected: ..."``): TWS's completedStatus.
    completed_status: str = ""
    #: The one-cancels-all group (``""``: none) and its IB ocaType (see :mod:`copilot_quant.model.oca`).
    oca_group: str = ""
    oca_type: int = 0
    #: Trailing orders: the trail as a percent (else ``aux_price`` is the amount), the limit offset of a
    #: TRAIL LIMIT, and the stop where it stands now (IB's trailStopPrice; the broker keeps it current).
    trailing_percent: float | None = None
    lmt_price_offset: float | None = None
    trail_stop_price: float | None = None
    #: A GTD order's goodTillDate: it expires when the market clock reaches it.
    good_till: datetime | None = None
    #: A bracket exit's parent (IB's parentId, an order id of the same client; 0: none). It works only for
    #: what its parent filled (see :mod:`copilot_quant.model.bracket`).
    parent_id: int = 0
    #: A forex order sized in money: the quote-currency amount asked (``quantity`` is what it bought).
    cash_qty: float | None = None
    #: IB's triggerMethod as the client sent it: 0 (default) or 2 (last) — stops trigger on trades either way.
    trigger_method: int = 0

    @property
    def remaining(self) -> float:
        return max(self.quantity - self.filled, 0.0)

    @property
    def is_done(self) -> bool:
        return self.status.is_done

    @property
    def key(self) -> tuple[int, int]:
        return (self.client_id, self.order_id)


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One fill. ``realized_pnl`` is ``None`` for an opening trade (TWS then sends its unset double)."""

    exec_id: str
    client_id: int
    order_id: int
    perm_id: int
    contract: ContractInfo
    side: str  # "BOT" or "SLD"
    shares: float
    price: float
    time: datetime
    cum_qty: float
    avg_price: float
    account: str
    commission: float
    currency: str = "USD"
    order_ref: str = ""
    realized_pnl: float | None = None

    @property
    def signed_shares(self) -> float:
        return self.shares if self.side == "BOT" else -self.shares


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    """reqExecutions' filter. Empty strings and client id 0 mean "any"."""

    client_id: int = 0
    account: str = ""
    time: str = ""
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""

    def since(self) -> datetime | None:
        """The filter's time as an aware datetime (naive times are New York time), or None."""
        return parse_ib_time(self.time.replace("-", " "))  # as before: a naive time is New York time

    def matches(self, execution: ExecutionRecord) -> bool:
        since = self.since()
        return (
            (self.client_id in (0, execution.client_id))
            and (not self.account or self.account == execution.account)
            and (since is None or execution.time >= since)
            and (
                not self.symbol
                or self.symbol.upper() in (execution.contract.wire_symbol, execution.contract.symbol)
            )
            and (not self.sec_type or self.sec_type.upper() == execution.contract.sec_type.upper())
            and (not self.exchange or self.exchange.upper() in _exchanges(execution.contract))
            and (not self.side or _side_matches(self.side, execution.side))
        )


def parse_ib_time(text: str) -> datetime | None:
    """IB's ``yyyymmdd hh:mm:ss [zone]`` (naive: New York time) or ``yyyymmdd-hh:mm:ss`` (UTC) as an aware
    datetime, or None when empty or unreadable."""
    text = text.strip()
    if not text:
        return None
    zone: ZoneInfo = ZoneInfo("UTC") if "-" in text else _EXCHANGE_TZ
    parts = text.replace("-", " ").split()
    if len(parts) >= 3:
        try:
            zone = ZoneInfo(parts[2])
        except (KeyError, ValueError):
            return None
    try:
        stamp = datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")  # noqa: DTZ007 - zone set below
    except ValueError:
        return None
    return stamp.replace(tzinfo=zone)


def _exchanges(contract: ContractInfo) -> set[str]:
    return {str(contract.exchange).upper(), str(contract.primary_exchange).upper()}


def _side_matches(wanted: str, side: str) -> bool:
    wanted = wanted.upper()
    return wanted == side or (wanted == "BUY" and side == "BOT") or (wanted == "SELL" and side == "SLD")


def new_exec_id_tag() -> int:
    """A random 32-bit tag for the execution ids of one gateway run (see :class:`IdAllocator`)."""
    return secrets.randbits(32)


def new_perm_id_base() -> int:
    """Where a fresh gateway run starts its perm ids: a random multiple of 1,000 below 2**31 (IB's perm ids
    are 32-bit and unique for the account), so two runs without ``--state`` do not reuse each other's."""
    return 1_000_000 + 1_000 * secrets.randbelow(2_000_000)


def exec_id_tag(exec_id: str) -> int | None:
    """The run tag (first field) of an execution id this gateway issued, or None for another shape."""
    head, _, _ = exec_id.partition(".")
    try:
        return int(head, 16)
    except ValueError:
        return None


@dataclass(slots=True)
class IdAllocator:
    """Order, permanent and execution ids.

    Order ids are per client: the next valid id is one above the highest id that client ever used, so
    ids are never reused across reconnects, and (with persistence) across restarts. Perm ids and
    execution sequence numbers are global and strictly increasing; a fresh run starts its perm ids at a
    random base (:func:`new_perm_id_base`), so a journal that outlives the gateway never sees one twice.

    Execution ids are unique across gateway runs, as IB's are (a journal that outlives a gateway relies on
    it): ``TTTTTTTT.SSSSSSSS.01.01``, IB's shape, where ``T`` is a tag drawn at random for each run
    (``exec_tag``) and ``S`` the sequence number, which a ``--state`` file carries across restarts.
    """

    last_order_id: dict[int, int] = field(default_factory=dict)
    last_perm_id: int = field(default_factory=new_perm_id_base)
    last_exec_seq: int = 0
    exec_tag: int = field(default_factory=new_exec_id_tag)

    def next_order_id(self, client_id: int) -> int:
        return self.last_order_id.get(client_id, 0) + 1

    def is_fresh(self, client_id: int, order_id: int) -> bool:
        """True if ``order_id`` is above every id this client used before (a new order may use it)."""
        return order_id > self.last_order_id.get(client_id, 0)

    def use_order_id(self, client_id: int, order_id: int) -> None:
        self.last_order_id[client_id] = max(order_id, self.last_order_id.get(client_id, 0))

    def new_perm_id(self) -> int:
        self.last_perm_id += 1
        return self.last_perm_id

    def new_exec_id(self) -> str:
        self.last_exec_seq += 1
        return f"{self.exec_tag:08x}.{self.last_exec_seq:08x}.01.01"


def finite_or_none(value: float | None) -> float | None:
    """``None`` for unset/absent prices (``None``, NaN, infinities or IB's UNSET_DOUBLE)."""
    if value is None or not math.isfinite(value) or value >= 1e300:
        return None
    return value
