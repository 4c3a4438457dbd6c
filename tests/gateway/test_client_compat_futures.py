"""Every supported TWS API client lists a futures chain, qualifies a contract and trades it at the gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway

from .client_env import ClientSpec, run_family_scenario
from .fut_fx_feed import FutFxFeed
from .test_client_compat import IB_ASYNC, IB_INSYNC, IBAPI_10_4X, IBAPI_10_19

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def market() -> Iterator[GatewayServer]:
    """Futures minute bars replayed at 20 a second from Monday 2 November 2026 (December is the front)."""
    with running_gateway(data=FutFxFeed(), start="2026-11-02 10:00", bar_interval="1m", speed=20) as gw:
        yield gw


def _run(spec: ClientSpec, port: int) -> dict:
    return run_family_scenario(spec, port, "futures")


@pytest.mark.parametrize(
    ("spec", "version"),
    [(IB_ASYNC, 178), (IB_INSYNC, 176), (IBAPI_10_19, 176), (IBAPI_10_4X, 178)],
    ids=lambda value: value.name if isinstance(value, ClientSpec) else str(value),
)
def test_each_client_qualifies_and_trades_a_future(
    market: GatewayServer, spec: ClientSpec, version: int
) -> None:
    seen = _run(spec, market.port)
    assert seen["server_version"] == version
    assert seen["decoder_errors"] == []
    assert seen["api_errors"] == []
    assert seen["chain"] == ["MESZ6", "MESH7", "MESM7", "MESU7", "MESZ7"]
    assert seen["contract"] == {"local_symbol": "MESZ6", "multiplier": "5", "last_trade": "20261218"}
    assert seen["status"] == "Filled"
    [fill] = seen["fills"]
    assert (fill["side"], fill["shares"]) == ("BOT", 2)
    assert fill["commission"] == pytest.approx(1.24)
    [position] = seen["positions"]
    assert (position["local_symbol"], position["position"]) == ("MESZ6", 2)
    assert position["avg_cost"] == pytest.approx(seen["fill_price"] * 5)
