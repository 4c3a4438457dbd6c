"""Every supported TWS API client qualifies EUR.USD, reads its midpoint history and trades it at the gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway

from .client_env import ClientSpec, run_family_scenario
from .fut_fx_feed import FutFxFeed
from .test_client_compat import IB_ASYNC, IB_INSYNC, IBAPI_10_4X, IBAPI_10_19

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(180)]

START_CASH = 100_000.0
BOUGHT = 20_000


@pytest.fixture
def market() -> Iterator[GatewayServer]:
    """Forex minute quotes replayed at 20 a second from Monday 2 November 2026."""
    with running_gateway(
        data=FutFxFeed(), start="2026-11-02 10:00", bar_interval="1m", speed=20, cash=START_CASH
    ) as gw:
        yield gw


def _run(spec: ClientSpec, port: int) -> dict:
    return run_family_scenario(spec, port, "forex")


@pytest.mark.parametrize(
    ("spec", "version"),
    [(IB_ASYNC, 178), (IB_INSYNC, 176), (IBAPI_10_19, 176), (IBAPI_10_4X, 178)],
    ids=lambda value: value.name if isinstance(value, ClientSpec) else str(value),
)
def test_each_client_qualifies_and_trades_a_forex_pair(
    market: GatewayServer, spec: ClientSpec, version: int
) -> None:
    seen = _run(spec, market.port)
    assert seen["server_version"] == version
    # ib_async and ib_insync log every API error too: the expected 162 is the only one allowed there
    assert [m for m in seen["decoder_errors"] if not m.startswith("Error 162, ")] == []
    [(_, code, text)] = seen["api_errors"]  # TRADES history of a pair: refused as IB does
    assert code == 162
    assert "No historical market data for EUR/CASH@FXSUBPIP Last 1day" in text
    assert seen["trades_bars"] == 0
    contract = seen["contract"]
    assert (contract["local_symbol"], contract["sec_type"], contract["exchange"]) == (
        "EUR.USD",
        "CASH",
        "IDEALPRO",
    )
    assert contract["con_id"] > 0
    assert seen["midpoint_bars"]
    for open_, high, low, close, volume in seen["midpoint_bars"]:
        assert volume == -1  # quote bars carry no volume
        assert 0.5 < low <= min(open_, close) <= max(open_, close) <= high < 2.0
    assert seen["status"] == "Filled"
    price = seen["fill_price"]
    assert 0.5 < price < 2.0
    [fill] = seen["fills"]
    assert (fill["side"], fill["shares"]) == ("BOT", BOUGHT)
    assert fill["commission"] == pytest.approx(2.00)  # IB's forex minimum per order
    assert {"local_symbol": "EUR.USD", "side": "BOT", "shares": BOUGHT} in seen["executions"]
    [position] = seen["positions"]
    assert (position["local_symbol"], position["position"]) == ("EUR.USD", BOUGHT)
    assert position["avg_cost"] == pytest.approx(price)
    cash = seen["cash"]
    assert cash["EUR"] == pytest.approx(BOUGHT)
    assert cash["USD"] == pytest.approx(START_CASH - BOUGHT * price - 2.00, abs=0.01)
    # selling the 20,000 back: the euros are gone, the dollars are back less both commissions and the spread
    closed = seen["closed"]
    assert closed["status"] == "Filled"
    assert closed["commission"] == pytest.approx(2.00)
    assert closed["cash"]["EUR"] == 0
    assert closed["cash"]["USD"] == pytest.approx(
        START_CASH + BOUGHT * (closed["price"] - price) - 4.00, abs=0.01
    )
