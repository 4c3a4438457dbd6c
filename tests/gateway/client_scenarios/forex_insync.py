"""A forex scenario for ib_async and ib_insync: ``python -m ... MODULE PORT [MAX]``.

Qualifies EUR.USD on IDEALPRO, reads daily MIDPOINT history (and asks for TRADES, which IB refuses for a
pair with error 162), buys 20,000 EUR at market and waits for the fill and its commission, then reads the
execution, the position and the account's cash balances. Prints one JSON object (what the client saw,
and every error its decoder or wrapper logged).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from tests.gateway.client_scenarios.insync_family import connect

_FARM_CODES = (2104, 2106, 2158)


def main(module: str, port: int, max_version: int | None) -> dict[str, Any]:
    api, ib, errors, api_errors = connect(module, port, max_version, 9)
    try:
        pair = api.Contract(symbol="EUR", secType="CASH", currency="USD", exchange="IDEALPRO")
        [contract] = ib.qualifyContracts(pair)
        midpoint = ib.reqHistoricalData(contract, "", "5 D", "1 day", "MIDPOINT", False)
        trades = ib.reqHistoricalData(contract, "", "5 D", "1 day", "TRADES", False)
        usd_before = _cash(ib).get("USD")
        trade = ib.placeOrder(contract, api.MarketOrder("BUY", 20_000))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            trade.orderStatus.status == "Filled"
            and trade.fills
            and trade.fills[0].commissionReport.commission
        ):
            ib.sleep(0.05)
        executions = ib.reqExecutions()
        ib.reqPositions()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (  # both currencies moved: the update arrived in full
            _cash(ib).get("EUR") and _cash(ib).get("USD") != usd_before
        ):
            ib.sleep(0.05)
        held = {"positions": _positions(ib), "cash": _cash(ib)}
        close = ib.placeOrder(contract, api.MarketOrder("SELL", 20_000))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            close.orderStatus.status == "Filled"
            and close.fills
            and close.fills[0].commissionReport.commission
            and _cash(ib).get("EUR") == 0
        ):
            ib.sleep(0.05)
        return {
            "server_version": ib.client.serverVersion(),
            "contract": {
                "local_symbol": contract.localSymbol,
                "sec_type": contract.secType,
                "exchange": contract.exchange,
                "con_id": contract.conId,
            },
            "midpoint_bars": [[b.open, b.high, b.low, b.close, float(b.volume)] for b in midpoint],
            "trades_bars": len(trades),
            "status": trade.orderStatus.status,
            "fill_price": trade.orderStatus.avgFillPrice,
            "fills": [
                {
                    "side": f.execution.side,
                    "shares": float(f.execution.shares),
                    "commission": f.commissionReport.commission,
                    "commission_currency": f.commissionReport.currency,
                }
                for f in trade.fills
            ],
            "executions": [
                {
                    "local_symbol": f.contract.localSymbol,
                    "side": f.execution.side,
                    "shares": float(f.execution.shares),
                }
                for f in executions
            ],
            **held,
            "closed": {
                "status": close.orderStatus.status,
                "price": close.orderStatus.avgFillPrice,
                "commission": close.fills[0].commissionReport.commission if close.fills else None,
                "cash": _cash(ib),
            },
            "api_errors": [e for e in api_errors if e[1] not in _FARM_CODES],
            "decoder_errors": errors.messages,
        }
    finally:
        ib.disconnect()


def _positions(ib: Any) -> list[dict[str, Any]]:
    return [
        {"local_symbol": p.contract.localSymbol, "position": float(p.position), "avg_cost": p.avgCost}
        for p in ib.positions()
    ]


def _cash(ib: Any) -> dict[str, float]:
    return {v.currency: float(v.value) for v in ib.accountValues() if v.tag == "CashBalance"}


if __name__ == "__main__":
    max_version = int(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), max_version)))
