"""The client scenario for ib_async and ib_insync (same API): run as ``python -m ... MODULE PORT [MAX]``.

Connects, qualifies AAPL, reads daily history and a market-data snapshot, buys 10 at market and waits for the fill and its commission, leaves a limit
order resting, then reads executions, positions, open and completed orders. Prints one JSON object:
what the client saw, plus every error its decoder or wrapper logged (a dropped message shows up there).
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
from typing import Any


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def connect(
    module: str, port: int, max_version: int | None, client_id: int
) -> tuple[Any, Any, _Errors, list]:
    """``module`` (ib_insync or ib_async) connected as ``client_id``: ``(api, ib, logged errors, errorEvent
    entries (reqId, code, message))``; ``max_version`` caps the client's API version."""
    api = importlib.import_module(module)
    errors = _Errors()
    logging.getLogger(module).addHandler(errors)
    ib = api.IB()
    if max_version is not None:
        ib.client.MaxClientVersion = max_version
    api_errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, message, *_: api_errors.append((req_id, code, message))
    ib.connect("127.0.0.1", port, clientId=client_id, timeout=10)
    return api, ib, errors, api_errors


def main(module: str, port: int, max_version: int | None) -> dict[str, Any]:
    api, ib, errors, api_errors = connect(module, port, max_version, 7)
    try:
        [contract] = ib.qualifyContracts(api.Stock("AAPL", "SMART", "USD"))
        daily = ib.reqHistoricalData(contract, "", "5 D", "1 day", "TRADES", True)
        [snapshot] = ib.reqTickers(contract)
        trade = ib.placeOrder(contract, api.MarketOrder("BUY", 10))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            trade.orderStatus.status == "Filled"
            and trade.fills
            and trade.fills[0].commissionReport.commission
        ):
            ib.sleep(0.05)
        resting = ib.placeOrder(contract, api.LimitOrder("BUY", 1, 1.00))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and resting.orderStatus.status != "Submitted":
            ib.sleep(0.05)
        executions = ib.reqExecutions()
        ib.reqPositions()
        ib.sleep(0.2)
        open_trades = ib.reqOpenOrders()
        completed = ib.reqCompletedOrders(apiOnly=False)
        return {
            "server_version": ib.client.serverVersion(),
            "daily_bars": len(daily),
            "snapshot_last": snapshot.last,
            "status": trade.orderStatus.status,
            "filled": float(trade.orderStatus.filled),
            "fills": [
                {
                    "side": f.execution.side,
                    "shares": float(f.execution.shares),
                    "price": f.execution.price,
                    "perm_id": f.execution.permId,
                    "commission": f.commissionReport.commission,
                }
                for f in trade.fills
            ],
            "executions": [
                {"side": f.execution.side, "shares": float(f.execution.shares), "symbol": f.contract.symbol}
                for f in executions
            ],
            "positions": [
                {"symbol": p.contract.symbol, "position": float(p.position)} for p in ib.positions()
            ],
            "open_orders": [
                {
                    "order_id": t.order.orderId,
                    "type": t.order.orderType,
                    "limit": t.order.lmtPrice,
                    "perm_id": t.order.permId,
                    "status": t.orderStatus.status,
                }
                for t in open_trades
            ],
            "resting_status": resting.orderStatus.status,
            "completed": [{"status": t.orderStatus.status, "type": t.order.orderType} for t in completed],
            "api_errors": [e for e in api_errors if e[1] not in (2104, 2106, 2158)],
            "decoder_errors": errors.messages,
        }
    finally:
        ib.disconnect()


if __name__ == "__main__":
    max_version = int(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), max_version)))
