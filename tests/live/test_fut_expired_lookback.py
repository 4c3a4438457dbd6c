"""A live run on the continuous MES whose lookback reaches back before the last roll (#14): the contract
that has since expired is looked up with IB's ``includeExpired``, and its bars fill the lookback's days it
was the contract of, so the strategy starts with the backtest's MES history (spliced by day)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pandas as pd
import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway
from copilot_quant.model.instruments import InstrumentRegistry

from tests.gateway.fut_fx_feed import FutFxFeed

from .conftest import Scripted, Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

#: MESZ6's last trade is 2026-12-18 (rolled into MESH7 from 2026-12-11): on the 22nd it has expired
START = "2026-12-22 16:00"


def _feed() -> FutFxFeed:
    return FutFxFeed(periods=90)  # to January 2027


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    with running_gateway(data=_feed(), start=START, cash=100_000.0) as gw:
        yield gw


class Windows(Scripted):
    """Records the data window of each bar."""

    def __init__(self) -> None:
        super().__init__()
        self.windows: list[pd.DataFrame] = []

    def on_data(self, timestamp, data):
        self.windows.append(data.copy())
        return super().on_data(timestamp, data)


def test_the_lookback_splices_the_expired_contract_as_the_backtest_does(
    gateway: GatewayServer, tmp_path
) -> None:
    registry = InstrumentRegistry(reference=date(2026, 12, 22))
    assert registry.resolve("MESZ6").expiry == date(2026, 12, 18)  # expired at the replay's start
    strategy = Windows()
    engine = LiveStrategyEngine(
        paper_trading=True,
        port=gateway.port,
        client_id=81,
        update_interval=3600,
        journal=tmp_path / "journal.sqlite",
    )
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["MES"], lookback_days=20)
        with Stepper(gateway, interval=0.1):
            assert wait_until(lambda: len(strategy.windows) >= 1, timeout=30)
        first = strategy.windows[0]
        looked_up = dict(engine.data_feed._stocks._contracts)  # what the data adapter qualified
    finally:
        engine.disconnect()
    # the expired contract was qualified (and its history asked) with includeExpired
    assert looked_up["MESZ6"].includeExpired
    assert looked_up["MESZ6"].lastTradeDateOrContractMonth == "20261218"
    # the window reaches back before the roll, and is the backtest's MES (the contract of each day), bar
    # for bar: MESZ6's own bars until 2026-12-10, MESH7's from the roll on
    feed = _feed()
    backtest = feed.bars("MES").loc[first.index]
    pd.testing.assert_frame_equal(first, backtest, check_dtype=False, check_freq=False, check_names=False)
    days = pd.DatetimeIndex(first.index).tz_convert("America/New_York").date
    before = first.loc[days < date(2026, 12, 11)]
    assert first.index[0] < pd.Timestamp("2026-12-01", tz="UTC")
    assert len(before) >= 10
    expired = feed.bars("MESZ6").loc[before.index]
    pd.testing.assert_frame_equal(before, expired, check_dtype=False, check_freq=False, check_names=False)
    assert not before["Close"].equals(feed.bars("MESH7").reindex(before.index)["Close"])
