"""The engine's reactions to what real IB does beyond a well-behaved gateway (docs/ib-behaviours.md).

The IB edge (:mod:`copilot_quant.brokers`) already handles each behaviour; this part turns what it reports
into engine events a trader sees — each one an ``alert`` (journaled, logged, on ``engine.on.event``):

* a bar stream that died while quotes kept flowing (restarted by the data adapter; ``bar_stream_stalled``);
* a market-data permission problem for a symbol (354, 10167, 10168, 10089 …; ``market_data_problem``);
* an outage longer than ``outage_alert_after`` (the connection keeps reconnecting and the engine keeps
  running: GTC orders may be working at IB; ``connection.outage``);
* an execution correction (``register_correction_callback``): also handed to the fill dispatcher, which
  books the difference and tells the strategy (:meth:`FillDispatcher.corrected`);
* an order IB no longer knows after a reconnect (lost in a gateway reset: CANCELLED, reason ``lost: …``),
  and an execution for an order believed finished (rejected by an error code alone, Inactive): it is
  working again (the adapter journals that alert itself).

Handlers run on IB's loop thread: they only emit and hand over, never block.
"""

from __future__ import annotations

import logging

from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.exec_corrections import ExecutionCorrection
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.order_tracking import OrderRecord
from copilot_quant.journal import EventKind
from copilot_quant.live.events import EventLog
from copilot_quant.live.fills import FillDispatcher

__all__ = ["IbReactions"]

log = logging.getLogger(__name__)


class IbReactions:
    """Subscribes to the IB edge's reports and raises the engine's alerts (see the module docstring)."""

    def __init__(
        self,
        *,
        connection: IBConnection,
        feed: LiveDataFeedAdapter,
        broker: LiveBrokerAdapter,
        events: EventLog,
        fills: FillDispatcher,
    ) -> None:
        self._events = events
        self._fills = fills
        feed.bar_stream_stalled += self.on_bar_stream_stalled
        feed.market_data_problem += self.on_market_data_problem
        connection.outage += self.on_outage
        broker.register_correction_callback(self.on_correction)
        broker.register_error_callback(self.on_order_error)

    def on_bar_stream_stalled(self, symbol: str, silent: float, count: int) -> None:
        again = f" (stalled {count} times this run)" if count > 1 else ""
        self._events.emit(
            EventKind.ALERT,
            f"the {symbol} bar stream sent nothing for {silent:.0f}s while quotes flowed{again}; "
            "it was restarted (IB drops keepUpToDate streams after farm flaps or a competing login)",
            level=logging.WARNING,
        )

    def on_market_data_problem(self, symbol: str, code: int, text: str) -> None:
        self._events.emit(
            EventKind.ALERT,
            f"market data for {symbol}: IB {code}: {text} — check the account's market-data "
            "subscriptions; its prices and bars may be delayed or missing",
            level=logging.WARNING,
        )

    def on_outage(self, seconds: float) -> None:
        self._events.emit(
            EventKind.ALERT,
            f"no connection to IB for {seconds / 60:.1f} min; still reconnecting (the engine keeps running: "
            "orders already at IB, GTC ones included, keep working there)",
            level=logging.ERROR,
        )

    def on_correction(self, correction: ExecutionCorrection) -> None:
        self._events.emit(EventKind.ALERT, correction.describe(), level=logging.ERROR)
        self._fills.corrected(correction)

    def on_order_error(self, record: OrderRecord, message: str) -> None:
        """Alert on the order errors that mean the books were wrong about IB (the engine records every
        order error in ``engine.errors`` besides)."""
        order = record.order
        what = f"order {order.order_id} ({order.side} {order.quantity:g} {order.symbol})"
        if record.lost and message.startswith("lost"):
            self._events.emit(
                EventKind.ALERT,
                f"{what}: {message}; it is no longer working at IB and will not be cancelled through its "
                "old order id",
                level=logging.ERROR,
            )
        elif "working again at IB" in message:
            # the broker adapter journals this alert itself: here it reaches engine.events and listeners
            self._events.emit(EventKind.ALERT, message, level=logging.ERROR, journaled=False)
