"""Parity for the other markets (#14): a forex strategy (EUR.USD) in a backtest and live through the
simulated gateway, on the synthetic pair: the same orders, fills (IB's forex commission, slipped prices on
the pair's own tick) and equity, with cash counted in USD over every currency held."""

from __future__ import annotations

import pytest
from copilot_quant.examples.fut_fx import FxBreakout
from copilot_quant.parity import run_parity

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]


def test_a_forex_strategy_has_parity_on_eur_usd() -> None:
    report = run_parity(
        FxBreakout,
        ["EUR.USD"],
        "2026-05-01",
        "2026-08-31",
        data="synthetic",
        strategy_kwargs={"units": 20_000, "lookback": 5},
        # the defaults: the stock commission rate leaves a pair alone (it pays IB's forex rate, 0.2 bp with
        # a USD 2 minimum, in both runs); the 5 bp slippage moves each market fill, onto the pair's tick
        # against the order in both runs
    )
    assert report.ok, report.diffs.to_string()
    assert report.weakness() is None
    fills = report.backtest.fills
    assert len(fills) >= 4  # it traded, both ways
    assert {row[2] for row in fills} == {"buy", "sell"}
    # prices on the pair's tick (0.00005), not the stock cent grid; IB's forex minimum per order
    assert any(round(row[4], 2) != row[4] for row in fills)
    assert all(round(row[4] / 0.00005) * 0.00005 == pytest.approx(row[4], abs=1e-12) for row in fills)
    assert all(row[5] == pytest.approx(2.0) for row in fills)
    # cash counts every balance in USD (EUR at the pair's close): so it is the equity, whatever is held
    assert report.live.final_cash == pytest.approx(report.live.final_equity)
