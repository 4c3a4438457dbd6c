"""Backtest–live parity under IBKR Tiered pricing: identical commissions, fill by fill.

The gateway prices each execution with its own cost meter (the month's volume), the backtest broker with
its own; the same model object serves both. Small tiers make the run cross tier boundaries and months, and
a volume limit splits orders into executions over several bars, so the per-order minimum, the tiers and
the sell-side fees are all exercised.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from copilot_quant.model.tiered import TieredCommission, TieredRates
from copilot_quant.parity import run_parity

from tests.parity.test_parity_volume_limit import LIMIT, ThinMarket

pytestmark = pytest.mark.timeout(180)

SMALL_TIERS = TieredCommission(TieredRates(tiers=((300, 0.0035), (1_000, 0.002), (math.inf, 0.001))))


def test_tiered_commissions_are_identical_live_and_in_backtest():
    report = run_parity(
        ThinMarket, "AAPL", "2011-01-01", "2011-04-30", volume_limit=LIMIT, commission=SMALL_TIERS
    )
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    fills = report.backtest.fills  # (bar stamp, symbol, side, quantity, price, commission)
    assert [f[5] for f in fills] == pytest.approx([f[5] for f in report.live.fills], abs=1e-9)
    assert report.backtest.commissions == pytest.approx(report.live.commissions, abs=1e-9)
    # the test means something only if both sides sold, and some month went past the first two tiers
    assert {f[2] for f in fills} == {"buy", "sell"}
    volume: dict[tuple[int, int], float] = defaultdict(float)
    for stamp, *_, quantity, _, _ in fills:
        local = stamp.tz_convert("America/New_York")
        volume[local.year, local.month] += quantity
    assert len(volume) >= 3
    assert max(volume.values()) > 1_000
