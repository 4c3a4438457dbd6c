"""The client scenario for IB's official Python API (``ibapi``): ``python -m ... PORT [MAX_VERSION]``.

The same scenario as :mod:`insync_family`, written against ``EClient``/``EWrapper`` of any ibapi from
10.19 on (the callbacks that changed between versions accept both forms). ibapi decodes on its own
reader thread and a decoding error ends that thread: it is caught and reported as a decoder error.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from decimal import Decimal
from typing import Any

import ibapi.client
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.wrapper import EWrapper

_FARM_CODES = (2104, 2106, 2158)


class App(EWrapper, EClient):
    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.next_id: int | None = None
        self.events: dict[str, threading.Event] = {}
        self.api_errors: list[tuple[int, int, str]] = []
        self.decoder_errors: list[str] = []
        self.statuses: dict[int, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        self.commissions: dict[str, float] = {}
        self.details: list[Contract] = []
        self.executions: list[dict[str, Any]] = []
        self.positions: list[dict[str, Any]] = []
        self.open_orders: list[dict[str, Any]] = []
        self.completed: list[dict[str, Any]] = []
        self.daily_bars = 0
        self.snapshot_last: float | None = None

    def event(self, name: str) -> threading.Event:
        return self.events.setdefault(name, threading.Event())

    # -- callbacks ---------------------------------------------------------------------------------------
    def nextValidId(self, orderId: int) -> None:
        self.next_id = orderId
        self.event("ready").set()

    def error(self, reqId: int, *args: Any) -> None:
        # 10.19: (code, text, json); 10.4x: (time, code, text, json)
        code, text = (args[0], args[1]) if len(args) < 3 or isinstance(args[1], str) else (args[1], args[2])
        if code not in _FARM_CODES:
            self.api_errors.append((reqId, int(code), str(text)))

    def contractDetails(self, reqId: int, contractDetails: Any) -> None:
        self.details.append(contractDetails.contract)

    def contractDetailsEnd(self, reqId: int) -> None:
        self.event("details").set()

    def historicalData(self, reqId: int, bar: Any) -> None:
        self.daily_bars += 1

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:
        self.event("history").set()

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:
        if tickType == 4:  # last
            self.snapshot_last = price

    def tickSnapshotEnd(self, reqId: int) -> None:
        self.event("snapshot").set()

    def orderStatus(self, orderId: int, status: str, filled: Any, remaining: Any, *args: Any) -> None:
        self.statuses[orderId] = {"status": status, "filled": float(filled)}

    def openOrder(self, orderId: int, contract: Contract, order: Order, orderState: Any) -> None:
        self.open_orders.append(
            {
                "order_id": orderId,
                "type": order.orderType,
                "limit": order.lmtPrice,
                "perm_id": order.permId,
                "status": orderState.status,
            }
        )

    def openOrderEnd(self) -> None:
        self.event("open_orders").set()

    def execDetails(self, reqId: int, contract: Contract, execution: Any) -> None:
        row = {
            "side": execution.side,
            "shares": float(execution.shares),
            "price": execution.price,
            "perm_id": execution.permId,
            "symbol": contract.symbol,
            "exec_id": execution.execId,
        }
        (self.fills if reqId == -1 else self.executions).append(row)

    def execDetailsEnd(self, reqId: int) -> None:
        self.event("executions").set()

    def commissionReport(self, commissionReport: Any) -> None:  # ibapi up to 10.3x
        self.commissions[commissionReport.execId] = commissionReport.commission
        self.event("commission").set()

    def commissionAndFeesReport(self, commissionAndFeesReport: Any) -> None:  # ibapi 10.4x
        self.commissions[commissionAndFeesReport.execId] = commissionAndFeesReport.commissionAndFees
        self.event("commission").set()

    def position(self, account: str, contract: Contract, position: Any, avgCost: float) -> None:
        self.positions.append({"symbol": contract.symbol, "position": float(position)})

    def positionEnd(self) -> None:
        self.event("positions").set()

    def completedOrder(self, contract: Contract, order: Order, orderState: Any) -> None:
        self.completed.append({"status": orderState.status, "type": order.orderType})

    def completedOrdersEnd(self) -> None:
        self.event("completed").set()


def _order(action: str, quantity: int, order_type: str, limit: float | None = None) -> Order:
    order = Order()
    order.action = action
    order.totalQuantity = Decimal(quantity)
    order.orderType = order_type
    if limit is not None:
        order.lmtPrice = limit
    # Defaults that TWS rejects for API orders in older ibapi releases.
    order.eTradeOnly = False
    order.firmQuoteOnly = False
    return order


def _wait(app: App, name: str, timeout: float = 10.0) -> bool:
    return app.event(name).wait(timeout)


def start(app: App, port: int, client_id: int) -> threading.Thread:
    """Connect ``app`` and run its reader thread; a reader that dies on a message is recorded in
    ``app.decoder_errors`` (what the tests must catch). Raises when the gateway sends no nextValidId."""
    app.connect("127.0.0.1", port, clientId=client_id)

    def run() -> None:
        try:
            app.run()
        except Exception as exc:
            app.decoder_errors.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not _wait(app, "ready"):
        raise RuntimeError(f"no nextValidId; errors: {app.api_errors}")
    return thread


def main(port: int, max_version: int | None) -> dict[str, Any]:
    if max_version is not None:
        ibapi.client.MAX_CLIENT_VER = max_version  # type: ignore[attr-defined]
    app = App()
    thread = start(app, port, 7)
    try:
        stock = Contract()
        stock.symbol, stock.secType, stock.exchange, stock.currency = "AAPL", "STK", "SMART", "USD"
        app.reqContractDetails(1, stock)
        _wait(app, "details")
        contract = app.details[0] if app.details else stock
        contract.exchange = "SMART"
        app.reqHistoricalData(3, contract, "", "5 D", "1 day", "TRADES", 1, 1, False, [])
        _wait(app, "history")
        app.reqMktData(4, contract, "", True, False, [])
        _wait(app, "snapshot")
        assert app.next_id is not None
        market_id, resting_id = app.next_id, app.next_id + 1
        app.placeOrder(market_id, contract, _order("BUY", 10, "MKT"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            app.statuses.get(market_id, {}).get("status") == "Filled" and app.fills and app.commissions
        ):
            time.sleep(0.05)
        app.placeOrder(resting_id, contract, _order("BUY", 1, "LMT", 1.00))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and app.statuses.get(resting_id, {}).get("status") != "Submitted":
            time.sleep(0.05)
        app.open_orders.clear()
        app.reqOpenOrders()
        _wait(app, "open_orders")
        app.reqExecutions(2, ibapi.client.ExecutionFilter())
        _wait(app, "executions")
        app.reqPositions()
        _wait(app, "positions")
        app.reqCompletedOrders(False)
        _wait(app, "completed")
        fills = [{**f, "commission": app.commissions.get(f["exec_id"])} for f in app.fills]
        return {
            "server_version": app.serverVersion(),
            "daily_bars": app.daily_bars,
            "snapshot_last": app.snapshot_last,
            "status": app.statuses.get(market_id, {}).get("status"),
            "filled": app.statuses.get(market_id, {}).get("filled"),
            "fills": fills,
            "executions": [{k: e[k] for k in ("side", "shares", "symbol")} for e in app.executions],
            "positions": app.positions,
            "open_orders": [o for o in app.open_orders if o["order_id"] == resting_id],
            "resting_status": app.statuses.get(resting_id, {}).get("status"),
            "completed": app.completed,
            "api_errors": app.api_errors,
            "decoder_errors": app.decoder_errors + ([] if thread.is_alive() else ["reader thread ended"]),
        }
    finally:
        app.disconnect()
        thread.join(timeout=5)


if __name__ == "__main__":
    max_version = int(sys.argv[2]) if len(sys.argv) > 2 else None
    print(json.dumps(main(int(sys.argv[1]), max_version)))
