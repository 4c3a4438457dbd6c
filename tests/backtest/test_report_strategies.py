"""The HTML report of several strategies on one account: a per-strategy table, trades and equity lines."""

from __future__ import annotations

import re

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.examples.sma_cross import SmaCrossFast
from copilot_quant.reports.backtest import build_figure, render_html
from copilot_quant.reports.strategies import STRATEGY_TRACE_PREFIX


def _strategy(fast: int, slow: int, name: str, symbol: str) -> SmaCrossFast:
    strategy = SmaCrossFast(symbol=symbol, fast_period=fast, slow_period=slow)
    strategy.name = name
    return strategy


@pytest.fixture(scope="module")
def two():
    engine = BacktestEngine(initial_capital=100_000.0, data_provider=SampleDataProvider())
    engine.add_strategy(_strategy(5, 20, "fast one", "AAPL"))
    engine.add_strategy(_strategy(10, 30, "slow", "MSFT"), capital=30_000.0)
    return engine.run("2010-01-01", "2011-12-31", ["AAPL", "MSFT"])


def test_the_page_has_a_row_per_strategy_and_one_for_the_account_that_they_add_up_to(two):
    page = render_html(two)
    table = re.search(r'<table class="symbols" id="strategies">(.*?)</table>', page, re.S)
    assert table is not None
    rows = re.findall(r"<tr[^>]*><th>([^<]+)</th><td>([\d,.]+)</td><td>([\d,.]+)</td>", table.group(1))
    assert [r[0] for r in rows] == ["fast one", "slow", "Account"]
    finals = {name: float(final.replace(",", "")) for name, _, final in rows}
    assert finals["fast one"] + finals["slow"] == pytest.approx(finals["Account"], abs=0.02)
    assert finals["Account"] == pytest.approx(two.final_value, abs=0.005)
    capitals = {name: float(cap.replace(",", "")) for name, cap, _ in rows}
    assert capitals == {"fast one": 70_000.0, "slow": 30_000.0, "Account": 100_000.0}


def test_each_strategy_lists_its_own_trades_under_ids_of_its_own(two):
    page = render_html(two)
    for slug, key in (("fast-one", "fast one"), ("slow", "slow")):
        assert f'id="strategy-{slug}"' in page
        listed = re.search(rf'<table class="trades" id="trades-{slug}">(.*?)</table>', page, re.S)
        assert listed is not None
        assert listed.group(1).count("<tr><td>") == len(two.strategies[key].trades)
    ids = re.findall(r'<(?:table|h2|h3|a) [^>]*id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids are unique on the page"


def test_the_equity_chart_draws_each_strategys_equity_beside_the_accounts(two):
    fig = build_figure(two)
    names = [t.name for t in fig.data if t.name and t.name.startswith(STRATEGY_TRACE_PREFIX)]
    assert names == [f"{STRATEGY_TRACE_PREFIX}fast one", f"{STRATEGY_TRACE_PREFIX}slow"]
    line = next(t for t in fig.data if t.name == f"{STRATEGY_TRACE_PREFIX}slow")
    assert float(line.y[-1]) == pytest.approx(two.strategies["slow"].final_value)
    assert fig.layout.showlegend


def test_one_strategy_has_no_strategies_section():
    engine = BacktestEngine(initial_capital=100_000.0, data_provider=SampleDataProvider())
    engine.add_strategy(SmaCrossFast())
    result = engine.run("2010-01-01", "2010-12-31", ["AAPL"])
    assert 'id="strategies"' not in render_html(result)
    assert not [t for t in build_figure(result).data if (t.name or "").startswith(STRATEGY_TRACE_PREFIX)]
