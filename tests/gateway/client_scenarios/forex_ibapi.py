"""The forex scenario of :mod:`forex_insync` for IB's official Python API: ``python -m ... PORT``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import ibapi.client
from ibapi.contract import Contract

from tests.gateway.client_scenarios.ibapi_client import App, _order, _wait, start


class ForexApp(App):
    def __init__(self) -> None:
        super().__init__()
        self.bars: dict[int, list[list[float]]] = {}
        self.cash: dict[str, float] = {}

    def historicalData(self, reqId: int, bar: Any) -> None:
        self.bars.setdefault(reqId, []).append([bar.open, bar.high, bar.low, bar.close, float(bar.volume)])

    def error(self, reqId: int, *args: Any) -> None:
        super().error(reqId, *args)
        if self.api_errors and self.api_errors[-1][0] == reqId:
            self.event(f"error-{reqId}").set()  # a refused request ends with its error, not an End

    def execDetails(self, reqId: int, contract: Contract, execution: Any) -> None:
        super().execDetails(reqId, contract, execution)
        (self.fills if reqId == -1 else self.executions)[-1]["local_symbol"] = contract.localSymbol

    def position(self, account: str, contract: Contract, position: Any, avgCost: float) -> None:
        self.positions.append(
            {"local_symbol": contract.localSymbol, "position": float(position), "avg_cost": avgCost}
        )

    def updateAccountValue(self, key: str, val: str, currency: str, accountName: str) -> None:
        if key == "CashBalance":
            self.cash[currency] = float(val)

    def accountDownloadEnd(self, accountName: str) -> None:
        self.event("account").set()


def _pair() -> Contract:
    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = "EUR", "CASH", "IDEALPRO", "USD"
    return contract


def _history(app: ForexApp, req_id: int, contract: Contract, what: str) -> list[list[float]]:
    app.reqHistoricalData(req_id, contract, "", "5 D", "1 day", what, 0, 1, False, [])
    ended = app.event("history")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (ended.is_set() or app.event(f"error-{req_id}").is_set()):
        time.sleep(0.05)
    ended.clear()
    return app.bars.get(req_id, [])


def main(port: int) -> dict[str, Any]:
    app = ForexApp()
    thread = start(app, port, 9)
    try:
        app.reqAccountUpdates(True, "")
        _wait(app, "account")
        usd_before = app.cash.get("USD")
        app.reqContractDetails(1, _pair())
        _wait(app, "details")
        [contract] = app.details
        midpoint = _history(app, 2, contract, "MIDPOINT")
        trades = _history(app, 3, contract, "TRADES")
        assert app.next_id is not None
        order_id = app.next_id
        app.placeOrder(order_id, contract, _order("BUY", 20_000, "MKT"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            app.statuses.get(order_id, {}).get("status") == "Filled" and app.fills and app.commissions
        ):
            time.sleep(0.05)
        app.reqExecutions(4, ibapi.client.ExecutionFilter())
        _wait(app, "executions")
        app.reqPositions()
        _wait(app, "positions")
        deadline = time.monotonic() + 10  # both currencies moved: the pushed update has arrived in full
        while time.monotonic() < deadline and not (app.cash.get("EUR") and app.cash.get("USD") != usd_before):
            time.sleep(0.05)
        fills = [
            {"side": f["side"], "shares": f["shares"], "commission": app.commissions.get(f["exec_id"])}
            for f in app.fills
        ]
        held_cash, held_positions = dict(app.cash), list(app.positions)  # before the close updates them
        close_id = order_id + 1
        app.placeOrder(close_id, contract, _order("SELL", 20_000, "MKT"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            app.statuses.get(close_id, {}).get("status") == "Filled"
            and len(app.fills) == 2
            and app.fills[1]["exec_id"] in app.commissions
            and app.cash.get("EUR") == 0
        ):
            time.sleep(0.05)
        return {
            "server_version": app.serverVersion(),
            "contract": {
                "local_symbol": contract.localSymbol,
                "sec_type": contract.secType,
                "exchange": contract.exchange,
                "con_id": contract.conId,
            },
            "midpoint_bars": midpoint,
            "trades_bars": len(trades),
            "status": app.statuses.get(order_id, {}).get("status"),
            "fill_price": app.fills[0]["price"] if app.fills else None,
            "fills": fills,
            "executions": [
                {"local_symbol": e["local_symbol"], "side": e["side"], "shares": e["shares"]}
                for e in app.executions
            ],
            "positions": held_positions,
            "cash": held_cash,
            "closed": {
                "status": app.statuses.get(close_id, {}).get("status"),
                "price": app.fills[1]["price"] if len(app.fills) > 1 else None,
                "commission": app.commissions.get(app.fills[1]["exec_id"]) if len(app.fills) > 1 else None,
                "cash": dict(app.cash),
            },
            "api_errors": app.api_errors,
            "decoder_errors": app.decoder_errors + ([] if thread.is_alive() else ["reader thread ended"]),
        }
    finally:
        app.disconnect()
        thread.join(timeout=5)


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
