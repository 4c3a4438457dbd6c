"""A continuous future without the automatic roll: an order that only closes what is still held in the
pre-roll contract trades that contract, in the backtest and live alike (the backtest's rule,
``backtest.rolls.closing_contract``). Before, live sent it to the new front contract — a short there while
the old long stayed — and parity broke."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity import run_parity

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]

BUY_ON = pd.Timestamp("2026-08-03", tz="UTC")  # MESU6 is the front contract
# MESU6's last trade date is 2026-09-18; five weekdays before it (2026-09-11) MES rolls into MESZ6. The
# sell is decided after the roll and fills before MESU6 stops trading.
SELL_ON = pd.Timestamp("2026-09-14", tz="UTC")


class BuyThenSellAfterTheRoll(Strategy):
    """Buys 2 MES once, sells 2 MES at the first bar after the roll; records position('MES') and what it
    holds per contract at each bar (both runs append here, backtest first)."""

    seen: ClassVar[list[tuple[Any, ...]]] = []

    def initialize(self) -> None:
        self.bought = self.sold = False

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        held = {s: p.quantity for s, p in self.positions.items() if p.quantity}
        BuyThenSellAfterTheRoll.seen.append((timestamp, self.position("MES"), held))
        if not self.bought and pd.Timestamp(timestamp) >= BUY_ON:
            self.bought = True
            return [Order("MES", 2, "market", "buy")]
        if self.bought and not self.sold and pd.Timestamp(timestamp) >= SELL_ON:
            self.sold = True
            return [Order("MES", 2, "market", "sell")]
        return None


def test_a_sell_after_the_roll_closes_the_old_contract_live_as_in_the_backtest() -> None:
    BuyThenSellAfterTheRoll.seen = []
    report = run_parity(
        BuyThenSellAfterTheRoll, ["MES"], "2026-07-15", "2026-10-15", data="synthetic", auto_roll=False
    )
    assert report.ok, report.diffs.to_string()
    assert report.weakness() is None
    # both orders traded MESU6: the sell closed the long rather than opening a short in MESZ6
    assert [(row[1], row[2]) for row in report.backtest.fills] == [("MESU6", "buy"), ("MESU6", "sell")]
    assert [(row[1], row[2]) for row in report.live.fills] == [("MESU6", "buy"), ("MESU6", "sell")]
    seen = BuyThenSellAfterTheRoll.seen
    backtest, live = seen[: len(seen) // 2], seen[len(seen) // 2 :]
    assert backtest == live
    assert backtest[-1][1:] == (0.0, {})  # flat at the end, in every contract
    assert any(view[2] == {"MESU6": 2.0} for view in backtest)
