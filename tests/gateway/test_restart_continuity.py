"""What a gateway restart keeps: execution ids never repeat across runs (with or without a state file), and
a restart from a state file resumes the market clock where the earlier run stopped (walkthrough F1, F13)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.errors import GatewayError
from copilot_quant.gateway.broker import SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.market import MarketReplay
from copilot_quant.gateway.orders import PlaceOrderRequest
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.gateway.state import load_state

AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)
pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

IB_EXEC_ID = re.compile(r"^[0-9a-f]{8}\.[0-9a-f]{8}\.01\.01$")  # TWS's shape, e.g. 0000e0d5.6581a6b7.01.01


def _buy(order_id: int, qty: float = 10) -> PlaceOrderRequest:
    return PlaceOrderRequest(order_id, ContractRequest(symbol="AAPL"), "BUY", qty, "MKT", None, None, "GTC")


def _fill_one(broker: SimBroker, order_id: int = 1, price: float = 100.0) -> str:
    broker.place_order(1, _buy(order_id), AAPL)
    broker.on_price("AAPL", price, T0)
    return broker.executions()[-1].exec_id


# ----------------------------------------------------------------------------------------------- exec ids
def test_two_fresh_gateway_runs_never_issue_the_same_execution_id() -> None:
    run1, run2 = SimBroker(clock=lambda: T0), SimBroker(clock=lambda: T0)
    first = [_fill_one(run1, n) for n in (1, 2, 3)]
    second = [_fill_one(run2, n) for n in (1, 2, 3)]
    assert not set(first) & set(second)
    assert all(IB_EXEC_ID.match(exec_id) for exec_id in first + second)
    assert len({exec_id.split(".")[0] for exec_id in first}) == 1  # one tag per run, then a sequence


def test_two_fresh_gateway_runs_start_their_perm_ids_apart() -> None:
    """IB's perm ids are unique for the account; a journal that outlives the gateway must not see one twice."""
    first, second = SimBroker(), SimBroker()
    _fill_one(first)
    _fill_one(first, order_id=2)
    _fill_one(second)
    perms = [e.perm_id for e in first.executions()]
    assert perms[1] == perms[0] + 1  # strictly increasing within a run
    assert second.executions()[0].perm_id not in perms
    assert all(0 < p < 2**31 for p in [*perms, second.executions()[0].perm_id])  # IB's 32-bit ids


def test_a_restart_from_a_state_file_never_reuses_an_execution_id(tmp_path: Path, monkeypatch) -> None:
    # Even if the random run tag came out the same, the restarted broker picks another one.
    tags = iter([7, 7, 7, 8]).__next__
    monkeypatch.setattr("copilot_quant.gateway.broker.new_exec_id_tag", tags)
    monkeypatch.setattr("copilot_quant.gateway.broker_persistence.new_exec_id_tag", tags)
    path = tmp_path / "state.json"
    first = SimBroker(state_file=path, clock=lambda: T0)
    before = [_fill_one(first, n) for n in (1, 2)]
    second = SimBroker(state_file=path, clock=lambda: T0)
    after = [_fill_one(second, n) for n in (3, 4)]
    assert [e.split(".")[0] for e in before + after] == ["00000007"] * 2 + ["00000008"] * 2
    assert [e.split(".")[1] for e in after] == ["00000003", "00000004"]  # the sequence goes on, too
    assert len(set(before + after)) == 4


# -------------------------------------------------------------------------------------------- the clock
def _start(state: Path, **config) -> GatewayServer:
    config.setdefault("data", "sample")
    config.setdefault("symbols", ["AAPL"])
    return GatewayServer(GatewayConfig(port=0, state_file=state, **config)).start()


def _buy_and_fill(gw: GatewayServer, order_id: int) -> None:
    contract = gw.core.registry.by_symbol("AAPL")
    gw.call(gw.broker.place_order, 7, _buy(order_id), contract)
    gw.clock.step(1)


def test_a_restart_from_a_state_file_resumes_the_market_clock_and_its_prices(tmp_path: Path) -> None:
    state = tmp_path / "gw.json"
    gw = _start(state)
    data_end = gw.clock.now
    gw.clock.step(3)  # past the sample's last bar: the market is a seeded random walk now
    _buy_and_fill(gw, 1)
    gw.clock.step(2)
    stopped_at = gw.clock.now
    history = gw.core.market.replayed_frame("AAPL")
    gw.stop()
    assert load_state(state).market_time == stopped_at.to_pydatetime()

    resumed = _start(state)
    try:
        assert resumed.clock.now == stopped_at > data_end
        assert resumed.notices == []
        # The resumed market has the same history (generated bars included) and goes on with the same
        # prices the first run would have made: the run that never stopped is the reference.
        pd.testing.assert_frame_equal(resumed.core.market.replayed_frame("AAPL"), history)
        assert resumed.clock.step(2) == gw.clock.step(2)
        # No fill lies in the resumed market's future.
        assert all(e.time <= resumed.clock.now for e in resumed.broker.executions())
    finally:
        resumed.stop()


def test_stopping_the_gateway_saves_the_clock_even_without_trades(tmp_path: Path) -> None:
    state = tmp_path / "gw.json"
    gw = _start(state, data="synthetic", bar_interval="1h", start="2024-03-04 10:30")
    gw.clock.step(2)  # within one session: nothing else would have written the state
    gw.stop()
    assert load_state(state).market_time == gw.clock.now.to_pydatetime()
    resumed = _start(state, data="synthetic", bar_interval="1h")
    try:
        assert resumed.clock.now == gw.clock.now
    finally:
        resumed.stop()


def test_an_explicit_start_replaces_the_saved_clock_with_a_notice(tmp_path: Path) -> None:
    state = tmp_path / "gw.json"
    gw = _start(state)
    gw.clock.step(3)
    gw.stop()
    restarted = _start(state, start="2012-06-01")
    try:
        assert restarted.clock.now < gw.clock.now
        (notice,) = restarted.notices
        assert "replaces the market time" in notice
    finally:
        restarted.stop()


def test_a_state_file_written_before_the_clock_was_kept_starts_at_the_default(tmp_path: Path) -> None:
    state = tmp_path / "gw.json"
    gw = _start(state)
    gw.clock.step(3)
    gw.stop()
    data = json.loads(state.read_text())
    del data["market_time"]
    state.write_text(json.dumps(data))
    restarted = _start(state)
    try:
        assert restarted.clock.now == pd.Timestamp("2013-03-01 21:00", tz="UTC")  # the sample's last bar
    finally:
        restarted.stop()


def test_resuming_far_beyond_the_data_jumps_instead_of_replaying_forever(sample_feed, caplog) -> None:
    market = MarketReplay(sample_feed, "1d")
    target = pd.Timestamp("2013-06-03 20:00", tz="UTC")  # about 65 sessions after the data's end
    with caplog.at_level(logging.WARNING, logger="copilot_quant.gateway.market"):
        assert market.resume(target, ["AAPL"], max_bars=10) == 10
    assert market.now == target
    assert "jumping there" in caplog.text
    assert market.quotes["AAPL"].last > 0  # still a market: it trades on from there
    with pytest.raises(GatewayError, match="before the replay starts"):
        market.resume(target, ["AAPL"])
