"""Fault injection for the simulated gateway: the failures a real IB Gateway puts clients through.

* drop every client connection (crash, network cut);
* refuse new connections for N seconds (the listening socket is closed, so connects are really refused),
  then listen again on the same port;
* restart (stop + start on the same port, state kept) — ``GatewayServer.restart``;
* broadcast connectivity messages 1100 / 1101 / 1102 and farm status 2103 / 2104 / 2105 / 2106 / 2158;
* emit 10197 (no market data during a competing live session);
* order faults from :class:`~copilot_quant.gateway.broker.SimBroker`: reject the next order, withhold and
  release execution reports; a fill while the client is away needs nothing special: orders keep working
  while their client is disconnected, and the fill is found with reqExecutions after reconnecting.

Drills of what real IB does that a well-behaved gateway never shows (``docs/ib-behaviours.md``):

* :meth:`FaultInjector.order_message` — an informational code about a working order (10349) with no
  status change; :meth:`FaultInjector.answer_next_order` — the next order answered with an error only
  (321 read-only API, 110 off the tick grid) or with a message while it keeps working;
* :meth:`FaultInjector.hold_order` / :meth:`FaultInjector.reactivate_order` — orderStatus ``Inactive``
  with ``whyHeld`` (a short sale waiting for a locate) while the order keeps working, and back;
* :meth:`FaultInjector.correct_execution` — an execution correction (execId ``….02``);
* :meth:`FaultInjector.reset_losing_orders` — a gateway reset that loses the newest orders, rolls the
  order ids back and drops every client;
* :meth:`FaultInjector.stall_bar_streams` — keepUpToDate bar streams stop silently while ticks flow;
* :meth:`FaultInjector.farm` — farm codes with farm names (2103-2108, 2157/2158), 2110 and 1300;
* :meth:`FaultInjector.outage` — the listener closed for longer than a client's backoff;
* :meth:`FaultInjector.socket_port_reset` — 1300: the API port moves, clients must reconnect there;
* :meth:`FaultInjector.executions_today_only` — reqExecutions covers the current day only;
* :meth:`FaultInjector.commission_reports` — commission reports late, zero or in another currency;
* :meth:`FaultInjector.throttle_account_updates` — another account-refresh cadence (IB's is 3 minutes);
* :meth:`FaultInjector.market_data_permission` — market-data permission codes on a subscription (354,
  10167 delayed data, 10168, 10089/10090).

Every method may be called from any thread; it runs on the gateway loop and returns when done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from copilot_quant.errors import ConfigError, GatewayError
from copilot_quant.gateway.account_cadence import AccountCadenceError, check_interval
from copilot_quant.gateway.messages.market_data import market_data_type
from copilot_quant.gateway.messages.orders import order_status

if TYPE_CHECKING:
    from copilot_quant.gateway.broker import SimBroker
    from copilot_quant.gateway.core import GatewayCore

__all__ = ["BROADCAST_CODES", "FaultInjector", "FaultTarget"]

logger = logging.getLogger(__name__)

#: Codes that may be broadcast: connectivity, farm status, competing session.
BROADCAST_CODES = frozenset(
    {1100, 1101, 1102, 1300, 2103, 2104, 2105, 2106, 2107, 2108, 2110, 2157, 2158, 10197}
)

#: Real TWS texts of the farm codes; the farm name follows the colon.
FARM_TEXTS = {
    2103: "Market data farm connection is broken:{farm}",
    2104: "Market data farm connection is OK:{farm}",
    2105: "HMDS data farm connection is broken:{farm}",
    2106: "HMDS data farm connection is OK:{farm}",
    2107: "HMDS data farm connection is inactive but should be available upon demand.{farm}",
    2108: "Market data farm connection is inactive but should be available upon demand.{farm}",
    2157: "Sec-def data farm connection is broken:{farm}",
    2158: "Sec-def data farm connection is OK:{farm}",
}
#: The farm a code names when none is given.
DEFAULT_FARMS = {2103: "usfarm", 2104: "usfarm", 2108: "usfarm", 2157: "secdefil", 2158: "secdefil"}
OTHER_TEXTS = {
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored automatically.",
    1300: "TWS socket port has been reset and this connection is being dropped. Please reconnect on port {port}",
}
#: Market-data permission codes, real TWS's texts; ``None``: the subscription then gets no more ticks.
PERMISSION_TEXTS: dict[int, tuple[str, int | None]] = {
    354: ("Requested market data is not subscribed.", None),
    10167: ("Requested market data is not subscribed. Displaying delayed market data.", 3),
    10168: ("Requested market data is not subscribed. Delayed market data is not enabled.", None),
    10089: ("Requested market data requires additional subscription for API. Delayed data available.", 3),
    10090: (
        "Part of requested market data is not subscribed. Subscription-independent ticks are still active.",
        1,
    ),
}
#: orderStatus (3): the index of the status and of whyHeld in the fields list.
_STATUS_FIELD, _WHY_HELD_FIELD = 2, 10


class FaultTarget(Protocol):
    """What the fault switches need of a gateway (:class:`~copilot_quant.gateway.server.GatewayServer`
    is one): its state, its loop, and its listening socket. Faults never import the server."""

    @property
    def core(self) -> GatewayCore: ...

    @property
    def broker(self) -> SimBroker: ...

    @property
    def port(self) -> int: ...

    @property
    def running(self) -> bool: ...

    def call(self, fn: Any, *args: Any) -> Any: ...

    def drop_sessions(self) -> int: ...

    async def listen(self) -> None: ...

    async def close_listener(self) -> None: ...

    async def move_listener(self, port: int = 0) -> int: ...

    def reject_next_order(self, reason: str = "Simulated rejection") -> None: ...

    def withhold_executions(self, withhold: bool = True) -> None: ...


class FaultInjector:
    """The fault switches of one :class:`GatewayServer` (also reachable as methods on the server)."""

    def __init__(self, server: FaultTarget) -> None:
        self._server = server
        self._timers: list[asyncio.TimerHandle] = []

    def drop_all(self) -> int:
        """Abort every client connection; returns how many were dropped."""
        count = int(self._server.call(self._server.drop_sessions))
        logger.warning("fault: dropped %d client connection(s)", count)
        return count

    def broadcast(self, code: int, message: str | None = None) -> None:
        """Send error ``code`` with reqId −1 to every connected client."""
        if code not in BROADCAST_CODES:
            raise GatewayError(f"{code} is not a broadcast message; use one of {sorted(BROADCAST_CODES)}.")
        logger.warning("fault: broadcasting %d", code)
        self._server.call(self._server.core.broadcast_error, code, message)

    def refuse_connections(self, seconds: float) -> None:
        """Close the listening socket now and reopen it on the same port after ``seconds``."""
        if seconds <= 0:
            raise GatewayError(f"refuse_connections needs a positive number of seconds, got {seconds}.")
        server = self._server

        async def close_then_reopen() -> None:
            await server.close_listener()
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(seconds, lambda: loop.create_task(self._reopen())))

        logger.warning("fault: refusing connections for %.1f s", seconds)
        server.call(close_then_reopen)

    async def _reopen(self) -> None:
        if self._server.running:
            return
        try:
            await self._server.listen()
            logger.warning("fault over: accepting connections again on port %d", self._server.port)
        except OSError:
            logger.exception("could not listen again on port %d", self._server.port)

    def cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def reject_next_order(self, reason: str = "Simulated rejection") -> None:
        self._server.reject_next_order(reason)

    # -- drills of real IB behaviour (docs/ib-behaviours.md) -----------------------------------------------
    def farm(self, code: int, farm: str | None = None) -> str:
        """Broadcast a farm/connectivity code with real TWS's text naming ``farm``; returns the text."""
        if code in FARM_TEXTS:
            name = farm or DEFAULT_FARMS.get(code, "ushmds")
            text = FARM_TEXTS[code].format(farm=name)
        elif code in OTHER_TEXTS:
            text = OTHER_TEXTS[code].format(port=self._server.port)
        else:
            raise GatewayError(
                f"{code} is not a farm code; use one of {sorted({*FARM_TEXTS, *OTHER_TEXTS})}."
            )
        self.broadcast(code, text)
        return text

    def order_message(self, order_id: int, code: int, message: str, client_id: int | None = None) -> None:
        """Send error ``code`` about working order ``order_id`` without changing its status (e.g. 10349)."""
        self._call_broker(lambda b: b.order_message(order_id, code, message, client_id))

    def answer_next_order(self, code: int, message: str, *, keeps_working: bool = False) -> None:
        """Answer the next new order with ``code`` only (321, 110) or, with ``keeps_working``, accept it and
        then send ``code`` (10349)."""
        self._call_broker(lambda b: b.answer_next_order(code, message, keeps_working=keeps_working))

    def hold_order(self, order_id: int, why_held: str = "locate", client_id: int | None = None) -> None:
        """Report order ``order_id`` as ``Inactive`` with ``why_held`` while the gateway keeps working it."""
        self._send_status(order_id, client_id, "Inactive", why_held)

    def reactivate_order(self, order_id: int, client_id: int | None = None) -> None:
        """Report a held order's real status again (IB reactivated it)."""
        self._send_status(order_id, client_id, None, "")

    def _send_status(self, order_id: int, client_id: int | None, status: str | None, why_held: str) -> None:
        def send() -> None:
            record = self._server.broker.find_order(order_id, client_id)
            if record is None:
                raise GatewayError(f"no order {order_id} at the gateway")
            session = self._server.core.session_for(record.client_id)
            if session is None:
                raise GatewayError(f"the client of order {order_id} is not connected")
            fields = order_status(record)
            if status is not None:
                fields[_STATUS_FIELD] = status
            fields[_WHY_HELD_FIELD] = why_held
            session.send(fields)

        logger.warning("fault: order %d status %s %s", order_id, status or "(real)", why_held)
        self._server.call(send)

    def correct_execution(
        self, exec_id: str | None = None, *, shares: float | None = None, price: float | None = None
    ) -> str:
        """Correct an execution (the last by default) with a ``….02`` execId; returns the new execId."""
        record = self._call_broker(lambda b: b.correct_execution(exec_id, shares=shares, price=price))
        return str(record.exec_id)

    def reset_losing_orders(self, count: int, client_id: int | None = None) -> int:
        """A gateway reset: the ``count`` newest orders are lost, their ids are reissued, every client is
        dropped. Returns how many orders were lost."""
        lost = self._call_broker(lambda b: b.lose_recent_orders(count, client_id))
        self.drop_all()
        return len(lost)

    def stall_bar_streams(self, symbol: str | None = None) -> int:
        """Stop every keepUpToDate bar stream (of ``symbol``) silently, ticks going on; returns how many."""

        def stall() -> int:
            stalled = 0
            for session in self._server.core.sessions.values():
                subs = session.subs.historical_updates
                for req_id, sub in list(subs.items()):
                    if symbol is None or sub.symbol == symbol.upper():
                        del subs[req_id]
                        stalled += 1
            return stalled

        count = int(self._server.call(stall))
        logger.warning("fault: stalled %d bar stream(s)", count)
        return count

    def socket_port_reset(self, port: int = 0) -> int:
        """TWS's 1300: the API port moves to ``port`` (0: a free one), every client is told "reconnect on
        port N" and dropped. Returns the new port."""
        server = self._server

        async def move() -> int:
            new_port = await server.move_listener(port)
            server.core.broadcast_error(1300, OTHER_TEXTS[1300].format(port=new_port))
            for session in list(server.core.sessions.values()):
                session.flush()
            server.drop_sessions()
            return new_port

        new_port = int(server.call(move))
        logger.warning("fault: API port reset, now %d", new_port)
        return new_port

    def outage(self, seconds: float) -> None:
        """Drop every client and refuse connections for ``seconds`` (IB's weekly re-authentication and
        weekend maintenance last far longer than a client's reconnect backoff)."""
        self.refuse_connections(seconds)
        self.drop_all()

    def executions_today_only(self, on: bool = True) -> None:
        """reqExecutions answers only the current market day's executions (as IB does) when ``on``."""
        self._call_broker(lambda b: setattr(b, "executions_today_only", bool(on)))

    def commission_reports(self, mode: str) -> int:
        """Commission reports ``normal``, ``zero``, ``late`` (held back), ``release`` (send the held ones,
        back to normal) or ``currency:XXX``; returns how many held reports were released."""
        mode = mode.strip()
        if mode == "release":
            released = int(self._call_broker(lambda b: b.release_commissions()))
            self._call_broker(lambda b: setattr(b, "commission_mode", "normal"))
            return released
        if mode not in ("normal", "zero", "late") and not (mode.startswith("currency:") and len(mode) > 9):
            raise GatewayError(
                f"unknown commission mode {mode!r}; use normal, zero, late, release or currency:EUR"
            )
        self._call_broker(lambda b: setattr(b, "commission_mode", mode))
        return 0

    def market_data_permission(self, code: int, symbol: str | None = None) -> int:
        """Answer every market-data subscription (on ``symbol``) with permission ``code``: 10167/10089 also
        switch it to delayed data (type 3), 354/10168 end its ticks. Returns how many were answered."""
        if code not in PERMISSION_TEXTS:
            raise GatewayError(
                f"{code} is not a market-data permission code; use one of {sorted(PERMISSION_TEXTS)}."
            )
        text, data_type = PERMISSION_TEXTS[code]

        def answer() -> int:
            count = 0
            for session in self._server.core.sessions.values():
                subs = session.subs.market_data
                for req_id, sub_symbol in list(subs.items()):
                    if symbol is not None and sub_symbol != symbol.upper():
                        continue
                    session.send_error(req_id, code, text)
                    if data_type is None:
                        del subs[req_id]
                    elif data_type != 1:
                        session.subs.market_data_type = data_type
                        session.send(market_data_type(req_id, data_type))
                    count += 1
            return count

        count = int(self._server.call(answer))
        logger.warning("fault: market-data permission %d on %d subscription(s)", code, count)
        return count

    def throttle_account_updates(self, seconds: float | None) -> None:
        """Refresh account values every ``seconds`` of market time from now on (the cadence
        ``GatewayConfig.account_update_interval`` sets; IB's is 180 s): a longer one makes the values lag
        fills for longer, 0 sends them at every step and fill; None goes back to the configured cadence."""
        if seconds is not None:
            try:
                check_interval(seconds)
            except AccountCadenceError as exc:
                raise GatewayError(f"throttle_account_updates: {exc}") from None
        core = self._server.core
        self._server.call(lambda: core.account_refresh.restart(core.now, seconds))

    def _call_broker(self, action: Callable[[SimBroker], Any]) -> Any:
        try:
            return self._server.call(action, self._server.broker)
        except ConfigError as exc:
            raise GatewayError(str(exc)) from None

    def withhold_executions(self, withhold: bool = True) -> None:
        self._server.withhold_executions(withhold)
