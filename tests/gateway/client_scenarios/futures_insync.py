"""A futures scenario for ib_async and ib_insync: ``python -m ... MODULE PORT [MAX]``.

Lists the MES chain, qualifies the December 2026 contract, buys 2 at market and waits for the fill and
its commission, then reads positions. Prints one JSON object (what the client saw, and every error its
decoder or wrapper logged).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from tests.gateway.client_scenarios.insync_family import connect


def main(module: str, port: int, max_version: int | None) -> dict[str, Any]:
    api, ib, errors, api_errors = connect(module, port, max_version, 8)
    try:
        chain = ib.reqContractDetails(api.Future("MES", exchange="CME"))
        [contract] = ib.qualifyContracts(api.Future("MES", "202612", "CME"))
        trade = ib.placeOrder(contract, api.MarketOrder("BUY", 2))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            trade.orderStatus.status == "Filled"
            and trade.fills
            and trade.fills[0].commissionReport.commission
        ):
            ib.sleep(0.05)
        ib.reqPositions()
        ib.sleep(0.2)
        return {
            "server_version": ib.client.serverVersion(),
            "chain": [d.contract.localSymbol for d in chain],
            "contract": {
                "local_symbol": contract.localSymbol,
                "multiplier": contract.multiplier,
                "last_trade": contract.lastTradeDateOrContractMonth,
            },
            "status": trade.orderStatus.status,
            "fills": [
                {
                    "side": f.execution.side,
                    "shares": float(f.execution.shares),
                    "commission": f.commissionReport.commission,
                }
                for f in trade.fills
            ],
            "positions": [
                {"local_symbol": p.contract.localSymbol, "position": float(p.position), "avg_cost": p.avgCost}
                for p in ib.positions()
            ],
            "fill_price": trade.orderStatus.avgFillPrice,
            "api_errors": [e for e in api_errors if e[1] not in (2104, 2106, 2158)],
            "decoder_errors": errors.messages,
        }
    finally:
        ib.disconnect()


if __name__ == "__main__":
    max_version = int(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), max_version)))
