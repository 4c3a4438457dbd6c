"""Batch backtests: each row is the backtest run alone, on any number of workers; a bad run is a row."""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.backtest.batch import BatchStrategy, each_strategy, each_symbol, run_batch
from copilot_quant.backtest.batch_report import render_batch_html, write_batch_report
from copilot_quant.backtest.cluster import LOCAL_CLUSTER_CONFIG, local_cluster
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError
from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast
from copilot_quant.model.spread import SpreadModel
from distributed import Client

pytestmark = pytest.mark.timeout(180)

RANGE = ("2008-01-01", "2011-12-31")
OPTIONS = {"initial_capital": 100_000.0, "commission": 0.001, "slippage": 0.0005}
FAST = BatchStrategy("fast", SmaCrossFast, {"quantity": 100})
SLOW = BatchStrategy("slow", SmaCrossFast, {"quantity": 100, "fast_period": 20, "slow_period": 100})
GUIDE = BatchStrategy("guide", SimpleMovingAverage, {"quantity": 100, "symbol": "MSFT"})
# Over a universe of several symbols a one-symbol example is told which one it trades.
FAST_AAPL = BatchStrategy("fast", SmaCrossFast, {"quantity": 100, "symbol": "AAPL"})
SLOW_AAPL = BatchStrategy(
    "slow", SmaCrossFast, {"quantity": 100, "fast_period": 20, "slow_period": 100, "symbol": "AAPL"}
)


@pytest.fixture(scope="module")
def two_workers():
    # the cluster a batch with jobs=2 starts (quiet settings: no profiler, slower ticks), not Dask's defaults
    with local_cluster(2) as cluster, Client(cluster) as client:
        yield client


def _batch(runs, **kwargs):
    return run_batch(
        runs, start_date=RANGE[0], end_date=RANGE[1], data_provider=SampleDataProvider(),
        engine_options=OPTIONS, **kwargs,
    )  # fmt: skip


def _alone(strategy, symbols):
    engine = BacktestEngine(data_provider=SampleDataProvider(), **OPTIONS)
    engine.add_strategy(strategy)
    return engine.run(*RANGE, symbols)


def test_each_symbol_runs_the_strategy_on_each_symbol_alone():
    batch = _batch(each_symbol([FAST], ["aapl", "MSFT", "IBM"]))
    table = batch.table.set_index("symbols")
    assert sorted(table.index) == ["AAPL", "IBM", "MSFT"]
    for symbol, row in table.iterrows():
        alone = _alone(SmaCrossFast(symbol=symbol, quantity=100), [symbol])
        assert row["final_value"] == pytest.approx(alone.final_value, rel=1e-12)
        assert row["sharpe_ratio"] == pytest.approx(alone.metrics["sharpe_ratio"], rel=1e-9)
        assert row["fills"] == len(alone.fills) > 0
        assert row["strategy"] == "fast"
        assert row["error"] == ""
    assert list(batch.table["sharpe_ratio"]) == sorted(batch.table["sharpe_ratio"], reverse=True)


def test_each_strategy_runs_once_over_the_whole_universe():
    batch = _batch(each_strategy([FAST_AAPL, GUIDE], ["AAPL", "MSFT"]))
    table = batch.table.set_index("strategy")
    assert set(table["symbols"]) == {"AAPL,MSFT"}
    guide = _alone(SimpleMovingAverage(symbol="MSFT", quantity=100), ["AAPL", "MSFT"])
    assert table.loc["guide", "final_value"] == pytest.approx(guide.final_value, rel=1e-12)
    fast = _alone(SmaCrossFast(quantity=100, symbol="AAPL"), ["AAPL", "MSFT"])
    assert table.loc["fast", "final_value"] == pytest.approx(fast.final_value, rel=1e-12)


def test_a_symbol_without_bars_is_a_row_with_its_error_and_the_rest_run():
    batch = _batch(each_symbol([FAST], ["AAPL", "NOPE", "IBM"]))
    failed = batch.table[batch.table["error"] != ""]
    assert list(failed["symbols"]) == ["NOPE"]
    assert "UnknownSymbolError" in failed["error"].iloc[0]
    assert batch.table.index[-1] == 3  # ranked last
    assert batch.table["final_value"].notna().sum() == 2


def test_a_batch_on_workers_equals_the_serial_one_and_ships_each_universe_once(two_workers, monkeypatch):
    runs = [
        *each_symbol([FAST, SLOW], ["AAPL", "MSFT", "NOPE"]),
        *each_strategy([FAST_AAPL, SLOW_AAPL], ["AAPL", "IBM"]),
    ]
    serial = _batch(runs)
    # on the workers users get: the project's quiet settings, not Dask's defaults
    profiling = two_workers.run(lambda: __import__("dask").config.get("distributed.worker.profile.enabled"))
    assert set(profiling.values()) == {LOCAL_CLUSTER_CONFIG["distributed.worker.profile.enabled"]} == {False}
    shipped: list[tuple[object, bool]] = []
    scatter = two_workers.scatter

    def counting_scatter(data, **kwargs):
        shipped.extend((getattr(item, "value", item), kwargs["broadcast"]) for item in data)
        return scatter(data, **kwargs)

    monkeypatch.setattr(two_workers, "scatter", counting_scatter)
    spread = _batch(runs, client=two_workers)
    pd.testing.assert_frame_equal(serial.table, spread.table)
    frames = [(list(value.columns.get_level_values(-1).unique()), broadcast)
              for value, broadcast in shipped if isinstance(value, pd.DataFrame)]  # fmt: skip
    # AAPL and MSFT alone (read by both strategies), then the AAPL+IBM universe: each shipped once
    assert len(frames) == 3
    assert all(broadcast for _, broadcast in frames)


def test_the_spread_in_the_engine_options_is_honoured_on_every_worker(two_workers):
    runs = each_symbol([FAST], ["AAPL", "MSFT", "IBM"])
    wide = {**OPTIONS, "spread": SpreadModel(ticks=5)}
    on_workers = run_batch(
        runs, start_date=RANGE[0], end_date=RANGE[1], data_provider=SampleDataProvider(),
        engine_options=wide, client=two_workers,
    )  # fmt: skip
    for symbol in ("AAPL", "MSFT", "IBM"):
        engine = BacktestEngine(data_provider=SampleDataProvider(), **wide)
        engine.add_strategy(SmaCrossFast(quantity=100))
        alone = engine.run(*RANGE, [symbol])
        row = on_workers.table[on_workers.table["symbols"] == symbol].iloc[0]
        assert row["final_value"] == pytest.approx(alone.final_value)
    off = run_batch(
        runs, start_date=RANGE[0], end_date=RANGE[1], data_provider=SampleDataProvider(),
        engine_options={**OPTIONS, "spread": None},
    )  # fmt: skip
    assert (on_workers.table["final_value"].to_numpy() < off.table["final_value"].to_numpy()).all()


def test_a_strategy_that_cannot_be_built_fails_its_own_rows_only():
    broken = BatchStrategy("broken", SmaCrossFast, {"quantity": 100, "fast_period": 50, "slow_period": 10})
    batch = _batch(each_symbol([FAST, broken], ["AAPL"]))
    rows = batch.table.set_index("strategy")
    assert "need 0 < fast_period < slow_period" in rows.loc["broken", "error"]
    assert rows.loc["fast", "error"] == ""


def test_bad_batches_are_named():
    with pytest.raises(ConfigError, match="already sets symbol='MSFT'"):
        each_symbol([GUIDE], ["AAPL"])
    with pytest.raises(ConfigError, match="no symbols"):
        each_strategy([FAST], [" "])
    with pytest.raises(ConfigError, match="batch is empty"):
        _batch([])
    with pytest.raises(ConfigError, match="cannot rank by 'luck'"):
        _batch(each_symbol([FAST], ["AAPL"]), metric="luck")


def test_the_report_lists_every_run_with_its_error(tmp_path):
    batch = _batch(each_symbol([FAST], ["AAPL", "NOPE"]))
    page = render_batch_html(batch, "fast on AAPL, NOPE")
    assert page.startswith("<!DOCTYPE html>")
    assert "Batch: fast on AAPL, NOPE" in page
    assert page.count("<tr><td>") == 2
    assert "UnknownSymbolError" in page
    written = write_batch_report(batch, tmp_path / "out" / "batch.html")
    assert written.read_text(encoding="utf-8").count('id="runs"') == 1
