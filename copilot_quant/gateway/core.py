"""The gateway's shared state, owned by its event loop: contracts, market, history, broker, sessions.

Sessions register here by client id; the market and the broker report here. The core keeps the books
(the broker sees every price first) and hands the news to its :class:`Publisher`, which encodes it for the
sessions that asked for it (order news only to the placing client, account news to every subscriber): the
protocol side lives in :mod:`copilot_quant.gateway.publisher`, so the core imports no handler. Everything
runs on the gateway's single event-loop thread, so nothing here takes locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import pandas as pd

from copilot_quant.gateway.account_cadence import DEFAULT_ACCOUNT_UPDATE_INTERVAL, AccountRefresh
from copilot_quant.gateway.clock import SimClock
from copilot_quant.gateway.contracts import (
    ContractInfo,
    ContractRegistry,
    ContractRequest,
    always_open_hours,
    session_hours,
)
from copilot_quant.gateway.history import HistoryService
from copilot_quant.gateway.instrument_contracts import SESSION_CALENDARS
from copilot_quant.gateway.market import Bar, MarketReplay, PricePoint, Quote
from copilot_quant.gateway.messages.errors import Code
from copilot_quant.gateway.pacing import HistoricalPacer
from copilot_quant.gateway.wallclock import WallClockMarket
from copilot_quant.model.ports import IDataFeed
from copilot_quant.model.spread import SpreadModel

if TYPE_CHECKING:
    from copilot_quant.gateway.broker import SimBroker
    from copilot_quant.gateway.session import Session

__all__ = ["GatewayCore", "Publisher"]

logger = logging.getLogger(__name__)

_NEW_YORK = ZoneInfo("America/New_York")

#: Informational farm messages real TWS sends right after a client connects.
CONNECT_FARM_CODES = (Code.MARKET_FARM_OK, Code.HMDS_FARM_OK, Code.SECDEF_FARM_OK)


class Publisher(Protocol):
    """Where the core's news goes to reach the sessions (the server sets
    :class:`~copilot_quant.gateway.publisher.SessionPublisher`)."""

    def tick(self, point: PricePoint, quote: Quote) -> None: ...

    def bar(self, bar: Bar) -> None: ...

    def step(self) -> None: ...

    def broker_event(self, event: object) -> None: ...


class GatewayCore:
    """Everything the sessions share. Create it on (or before) the loop thread; use it only from there.

    ``start`` is where the replay begins (None: the data's last bar); ``resume_at``, used only without a
    ``start``, continues an earlier run's replay at its saved clock (see :meth:`MarketReplay.resume`).
    With ``wall_clock`` the market starts at the present instead and trades in real time on ``hours``
    (``"always"`` or ``"exchange"``; see :mod:`copilot_quant.gateway.wallclock`); ``start`` and
    ``resume_at`` must then be None. ``account_update_interval`` is the account refresh in seconds of market
    time (IB's 180; 0 = at every step and fill).
    """

    def __init__(
        self,
        feed: IDataFeed,
        broker: SimBroker,
        *,
        symbols: list[str] | None = None,
        bar_interval: str = "1d",
        start: pd.Timestamp | None = None,
        resume_at: pd.Timestamp | None = None,
        spread: float = 0.0,
        quote_model: SpreadModel | None = None,
        seed: int = 0,
        pacing: bool = False,
        max_clients: int = 32,
        wall_clock: bool = False,
        hours: str = "always",
        account_update_interval: float = DEFAULT_ACCOUNT_UPDATE_INTERVAL,
    ) -> None:
        self.feed = feed
        self.broker = broker
        # Before the market exists, futures symbols read their year against the replay's start (or today).
        self._date_hint = (start or resume_at or pd.Timestamp.now(tz="UTC")).tz_convert(_NEW_YORK).date()
        self.registry = ContractRegistry.from_feed(feed, symbols, today=self.market_date)
        wall: WallClockMarket | None = None
        if wall_clock:
            start, resume_at = WallClockMarket.wall().floor("s"), None
        self.market = MarketReplay(
            feed, bar_interval, start, spread=spread, seed=seed, quote_model=quote_model
        )
        self.market.tick_of = self._tick_of
        self.broker.use_ticks(self._tick_of)
        if wall_clock:
            wall = WallClockMarket(self.market, hours=hours, seed=seed)
        if resume_at is not None and start is None:
            # A restart from a state file: the clock goes on where the earlier run left it.
            self.market.resume(resume_at, self.registry.symbols)
        else:
            self.market.track_all(self.registry.symbols)
        # Contracts restored from a state file stay defined, as at IB (the market starts pricing one when
        # a request names it, like any other symbol).
        for info in broker.known_contracts():
            self.registry.remember(info)
        broker.contract_source = lambda: list(self.registry)
        self.clock = SimClock(self.market, wall=wall)
        self.history = HistoryService(feed, self.market)
        self.pacer = HistoricalPacer(enabled=pacing)
        self.max_clients = max_clients
        #: The Account window's refresh (values, portfolio marks, summary), on the market clock; its cycle
        #: starts with the gateway (see :mod:`copilot_quant.gateway.account_cadence`).
        self.account_refresh = AccountRefresh(account_update_interval, last=self.now)
        self.sessions: dict[int, Session] = {}
        self.pending: set[Session] = set()
        #: Encodes the news for the sessions; None until the server sets one (then nothing is sent).
        self.publisher: Publisher | None = None
        # Extra listeners (tests, benchmarks) on what the market and the broker report.
        self.on_tick_hooks: list[Callable[[PricePoint, Quote], None]] = []
        self.market.tick_listeners.append(self._on_tick)
        self.market.bar_listeners.append(self._on_bar)
        self.market.step_listeners.append(self._on_step)
        self.broker.events += self._on_broker_event

    # -- identity ----------------------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        return self.broker.account_id

    def next_order_id(self, client_id: int) -> int:
        return self.broker.next_order_id(client_id)

    @staticmethod
    def wall_now() -> datetime:
        return datetime.now(UTC)

    @property
    def now(self) -> pd.Timestamp:
        """Market time: the replay's clock, or the wall-clock market's last traded instant."""
        return self.clock.now

    def market_date(self) -> date:
        """The market's current date in New York (what is expired, which futures contract is the front)."""
        if not hasattr(self, "clock"):
            return self._date_hint  # still being built: the market has no clock yet
        return self.now.tz_convert(_NEW_YORK).date()

    def _tick_of(self, symbol: str) -> float | None:
        """A future's or a pair's tick size (their prices live on it); None: the stocks' grid."""
        info = self.registry.known(symbol)
        return info.min_tick if info is not None and info.sec_type != "STK" else None

    def trades(self, symbol: str) -> bool:
        """Whether ``symbol`` prints trades (last, volume); a forex pair only quotes bid and ask."""
        info = self.registry.known(symbol)
        return info is None or info.sec_type != "CASH"

    def trading_hours(self) -> tuple[str, str]:
        """``(tradingHours, liquidHours)`` for contract details: round the clock on an always-open market."""
        wall = self.clock.wall
        if wall is not None and wall.hours == "always":
            return always_open_hours(self.now)
        return session_hours(self.now)

    def farm_codes_on_connect(self) -> tuple[int, ...]:
        return CONNECT_FARM_CODES

    # -- sessions ----------------------------------------------------------------------------------------
    def register(self, session: Session, client_id: int) -> bool:
        """Bind ``session`` to ``client_id``; False when the id is taken (→ 326) or the gateway is full."""
        existing = self.sessions.get(client_id)
        if existing is not None and not existing.closed:
            return False
        if len(self.sessions) >= self.max_clients:
            logger.warning("refusing clientId %d: already %d clients connected", client_id, self.max_clients)
            return False
        self.sessions[client_id] = session
        return True

    def unregister(self, session: Session) -> None:
        if session.client_id is not None and self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]

    def session_for(self, client_id: int) -> Session | None:
        return self.sessions.get(client_id)

    def broadcast(self, fields: list[Any]) -> None:
        for session in list(self.sessions.values()):
            session.send(fields)

    def broadcast_error(self, code: int, message: str | None = None, req_id: int = -1) -> None:
        for session in list(self.sessions.values()):
            session.send_error(req_id, code, message)

    # -- contracts ---------------------------------------------------------------------------------------
    def resolve(self, request: ContractRequest) -> ContractInfo | None:
        """The contract a request designates (None → error 200); it also starts trading in the market."""
        info = self.registry.resolve(request)
        if info is not None:
            self.market.track(info.symbol)
        return info

    def resolve_all(self, request: ContractRequest, *, include_expired: bool = False) -> list[ContractInfo]:
        """Every contract a contract-details request matches (a futures chain lists several)."""
        found = self.registry.resolve_all(request, include_expired=include_expired)
        if len(found) == 1:
            self.market.track(found[0].symbol)
        return found

    # -- fan-out -----------------------------------------------------------------------------------------
    def _on_tick(self, point: PricePoint, quote: Quote) -> None:

        self.broker.on_price(
            point.symbol,
            point.price,
            point.time.to_pydatetime(),
            bid=point.bid,
            ask=point.ask,
            gap=point.gap,
            bar_volume=point.bar_volume,
            width=point.width,
        )
        if self.publisher is not None:
            self.publisher.tick(point, quote)
        for hook in list(self.on_tick_hooks):
            hook(point, quote)

    def _on_bar(self, bar: Bar) -> None:
        if self.publisher is not None:
            self.publisher.bar(bar)

    def _on_step(self, now: pd.Timestamp, session_closed: bool) -> None:

        self.broker.expire_good_till(now.to_pydatetime())
        self.broker.expire_contracts(now.to_pydatetime())
        if self.clock.wall is not None:
            if session_closed:  # the wall-clock market's day ends for everything at once
                self.broker.end_session(now.to_pydatetime())
        else:
            # a replay: each contract's DAY orders end at its own exchange's close (CME's, IDEALPRO's)
            closed = frozenset(c for c in SESSION_CALENDARS if self.market.is_session_close(now, c))
            if closed:
                self.broker.end_session(now.to_pydatetime(), calendars=closed)
        if self.publisher is not None:
            self.publisher.step()

    def _on_broker_event(self, event: object) -> None:
        if self.publisher is not None:
            self.publisher.broker_event(event)
