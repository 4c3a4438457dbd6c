"""Client compatibility: the same trading scenario with every TWS API client the project supports.

Each client runs in its own subprocess (two of them share the import name ``ibapi``): it connects to a
simulated gateway, reads five daily bars and a market-data snapshot, buys at market and waits for the fill and commission, leaves a limit order resting,
then reads executions, positions, open and completed orders. The gateway must answer each one in the
layouts of the server version it negotiated, so no client drops a message ("Error handling fields") or
loses its reader thread. See client_env.py for where the clients come from.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway

from .client_env import ClientSpec, client_path, scenario_env

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(180)]

IB_ASYNC = ClientSpec("ib_async", "ib_async", "ib_async", "", "insync_family", "ib_async")
IB_INSYNC = ClientSpec(
    "ib_insync-0.9.86", "ib_insync==0.9.86", "ib_insync", "0.9.86", "insync_family", "ib_insync"
)
IBAPI_10_19 = ClientSpec("ibapi-10.19", "nautilus-ibapi==10.19.4", "nautilus-ibapi", "10.19", "ibapi_client")
IBAPI_10_4X = ClientSpec("ibapi-10.46", "nautilus-ibapi==10.46.1", "nautilus-ibapi", "10.4", "ibapi_client")


@pytest.fixture
def market() -> Iterator[GatewayServer]:
    """Synthetic minute bars replayed at 20 bars a second: a market order fills within a fraction of one.

    The replay starts at a fixed mid-session time: started from now, it crossed 16:00 New York within half a
    second when the tests ran in the ten minutes before the close, and the resting DAY order expired."""
    with running_gateway(
        data="synthetic", symbols=["AAPL"], start="2026-11-02 10:00", bar_interval="1m", speed=20
    ) as gw:
        yield gw


def run_scenario(spec: ClientSpec, port: int, max_version: int | None = None) -> dict:
    path = client_path(spec)
    args = [sys.executable, "-m", f"tests.gateway.client_scenarios.{spec.scenario}"]
    if spec.module:
        args.append(spec.module)
    args.append(str(port))
    if max_version is not None:
        args.append(str(max_version))
    done = subprocess.run(
        args, capture_output=True, text=True, env=scenario_env(path), timeout=120, check=False
    )
    assert done.returncode == 0, f"{spec.name} scenario failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_scenario(seen: dict, version: int) -> None:
    assert seen["server_version"] == version
    assert seen["decoder_errors"] == []
    assert seen["api_errors"] == []
    assert seen["daily_bars"] >= 3  # the last complete sessions (the replay is inside one)
    assert seen["snapshot_last"] > 0
    assert seen["status"] == "Filled"
    assert seen["filled"] == 10
    [fill] = seen["fills"]
    assert (fill["side"], fill["shares"], fill["commission"]) == ("BOT", 10, 1.0)
    assert fill["perm_id"] > 0
    assert {"side": "BOT", "shares": 10.0, "symbol": "AAPL"} in seen["executions"]
    assert {"symbol": "AAPL", "position": 10.0} in seen["positions"]
    assert seen["resting_status"] == "Submitted"
    [resting] = [o for o in seen["open_orders"] if o["type"] == "LMT"]
    assert (resting["limit"], resting["status"]) == (1.0, "Submitted")
    assert resting["perm_id"] > 0
    assert {"status": "Filled", "type": "MKT"} in seen["completed"]


@pytest.mark.parametrize(
    ("spec", "version"),
    [(IB_ASYNC, 178), (IB_INSYNC, 176), (IBAPI_10_19, 176), (IBAPI_10_4X, 178)],
    ids=lambda value: value.name if isinstance(value, ClientSpec) else str(value),
)
def test_each_client_trades_and_reads_its_account(market, spec, version):
    check_scenario(run_scenario(spec, market.port), version)


# IB's client decides every version-gated field itself, so capping its maximum makes it a client of each
# older version in turn: each pair of versions brackets one gate (158 duration, 160 postToAts, 162
# autoCancelParent, 163/164 the size rules, 166 advancedOrderRejectJson, 169 manual order times, 170 the
# PEG offsets, 176 issuerId, 177 faProfile, 178 pendingPriceRevision).
@pytest.mark.parametrize("version", [157, 159, 161, 163, 165, 169, 170, 177])
def test_ibs_client_capped_at_each_older_version_trades_in_that_versions_layouts(market, version):
    check_scenario(run_scenario(IBAPI_10_4X, market.port, max_version=version), version)


# ib_async decodes duration from 159 where IB's client (and TWS) start at 158, so 158 is left out.
@pytest.mark.parametrize("version", [157, 163, 170, 177])
def test_ib_async_capped_at_an_older_version_trades_in_that_versions_layouts(market, version):
    check_scenario(run_scenario(IB_ASYNC, market.port, max_version=version), version)
