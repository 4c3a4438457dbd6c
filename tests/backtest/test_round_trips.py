"""FifoLots: one symbol's open lots, closed oldest first, usable on its own (e.g. per strategy)."""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.backtest.round_trips import FifoLots

T = [pd.Timestamp("2024-01-02 21:00", tz="UTC") + pd.Timedelta(days=k) for k in range(5)]


def test_a_partial_close_then_a_reversal_are_matched_oldest_lot_first():
    book = FifoLots("AAPL")
    assert book.fill(10, 100.0, T[0], commission=1.0) == []  # opens a lot
    assert book.fill(5, 110.0, T[1], commission=0.5) == []  # adds a second lot
    closed = book.fill(-12, 120.0, T[2], commission=1.2)  # closes the first lot and 2 of the second
    assert [(t["entry_price"], t["quantity"]) for t in closed] == [(100.0, 10), (110.0, 2)]
    assert closed[0]["pnl"] == pytest.approx(20 * 10 - 1.0 - 1.0)  # both commissions, 0.10 a share
    assert book.position == pytest.approx(3)
    closed = book.fill(-5, 90.0, T[3], commission=0.0)  # through zero: closes 3, opens a short of 2
    assert [(t["side"], t["quantity"]) for t in closed] == [("long", 3)]
    assert book.position == pytest.approx(-2)
    (still_open,) = book.marked(80.0, T[4])
    assert still_open["side"] == "short"
    assert still_open["is_open"]
    assert still_open["pnl"] == pytest.approx(2 * 10.0)
    assert still_open["symbol"] == "AAPL"


def test_two_books_never_share_lots():
    # The closure this replaced read a `symbol` variable that two loops rebound; each book names its own.
    aapl, msft = FifoLots("AAPL"), FifoLots("MSFT")
    aapl.fill(10, 100.0, T[0], 0.0)
    msft.fill(-10, 50.0, T[0], 0.0)
    assert [t["symbol"] for t in aapl.marked(101.0, T[1]) + msft.marked(49.0, T[1])] == ["AAPL", "MSFT"]
    assert aapl.fill(-10, 101.0, T[1], 0.0)[0]["pnl"] == pytest.approx(10.0)
    assert msft.position == pytest.approx(-10)
