"""The futures scenario of :mod:`futures_insync` for IB's official Python API: ``python -m ... PORT``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ibapi.contract import Contract

from tests.gateway.client_scenarios.ibapi_client import App, _order, _wait, start


class FuturesApp(App):
    def position(self, account: str, contract: Contract, position: Any, avgCost: float) -> None:
        self.positions.append(
            {"local_symbol": contract.localSymbol, "position": float(position), "avg_cost": avgCost}
        )


def _future(month: str = "") -> Contract:
    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = "MES", "FUT", "CME", "USD"
    contract.lastTradeDateOrContractMonth = month
    return contract


def main(port: int) -> dict[str, Any]:
    app = FuturesApp()
    thread = start(app, port, 8)
    try:
        app.reqContractDetails(1, _future())
        _wait(app, "details")
        chain = [c.localSymbol for c in app.details]
        app.details.clear()
        app.events.pop("details").clear()
        app.reqContractDetails(2, _future("202612"))
        _wait(app, "details")
        [contract] = app.details
        assert app.next_id is not None
        order_id = app.next_id
        app.placeOrder(order_id, contract, _order("BUY", 2, "MKT"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            app.statuses.get(order_id, {}).get("status") == "Filled" and app.fills and app.commissions
        ):
            time.sleep(0.05)
        app.reqPositions()
        _wait(app, "positions")
        fills = [
            {"side": f["side"], "shares": f["shares"], "commission": app.commissions.get(f["exec_id"])}
            for f in app.fills
        ]
        return {
            "server_version": app.serverVersion(),
            "chain": chain,
            "contract": {
                "local_symbol": contract.localSymbol,
                "multiplier": contract.multiplier,
                "last_trade": contract.lastTradeDateOrContractMonth,
            },
            "status": app.statuses.get(order_id, {}).get("status"),
            "fills": fills,
            "positions": app.positions,
            "fill_price": app.fills[0]["price"] if app.fills else None,
            "api_errors": app.api_errors,
            "decoder_errors": app.decoder_errors + ([] if thread.is_alive() else ["reader thread ended"]),
        }
    finally:
        app.disconnect()
        thread.join(timeout=5)


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
