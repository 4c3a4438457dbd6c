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

Every method may be called from any thread; it runs on the gateway loop and returns when done.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from copilot_quant.errors import GatewayError

if TYPE_CHECKING:
    from copilot_quant.gateway.server import GatewayServer

__all__ = ["BROADCAST_CODES", "FaultInjector"]

logger = logging.getLogger(__name__)

#: Codes that may be broadcast: connectivity, farm status, competing session.
BROADCAST_CODES = frozenset({1100, 1101, 1102, 2103, 2104, 2105, 2106, 2107, 2108, 2158, 10197})


class FaultInjector:
    """The fault switches of one :class:`GatewayServer` (also reachable as methods on the server)."""

    def __init__(self, server: GatewayServer) -> None:
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

    def withhold_executions(self, withhold: bool = True) -> None:
        self._server.withhold_executions(withhold)
