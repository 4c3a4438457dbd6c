"""run_account_parity refuses what it cannot run, before any backtest or gateway starts."""

from __future__ import annotations

import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.examples.sma_cross import SmaCrossFast
from copilot_quant.parity import ParityStrategy, run_account_parity


@pytest.mark.parametrize(
    ("strategies", "why"),
    [
        ([], "at least one ParityStrategy"),
        (
            [ParityStrategy(SmaCrossFast), ParityStrategy(SmaCrossFast, {"fast_period": 3})],
            "two strategies are named",
        ),
        ([ParityStrategy(dict)], "Strategy subclass"),  # type: ignore[arg-type]
        ([ParityStrategy(SmaCrossFast, capital=-1.0)], "positive amount"),
    ],
)
def test_bad_strategies_are_refused_with_a_named_error(strategies, why):
    with pytest.raises(ConfigError, match=why):
        run_account_parity(strategies, ["AAPL"], "2010-01-01", "2010-02-01")


def test_two_instances_of_one_class_run_under_their_names():
    a = ParityStrategy(SmaCrossFast, {"fast_period": 3}, name="a")
    assert (a.label, ParityStrategy(SmaCrossFast).label) == ("a", "SmaCrossFast")
