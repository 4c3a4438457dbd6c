"""``copilot-quant sweep``: the grid syntax, the table, the export, and the errors a user makes."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import SUCCESS, USAGE_ERROR
from copilot_quant.cli.logs import configure_logging
from copilot_quant.cli.sweep import MAX_COMBINATIONS, parse_grid
from copilot_quant.errors import ConfigError
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(120)

EXAMPLE = Path(__file__).resolve().parents[2] / "copilot_quant" / "examples" / "sma_cross.py"
SPEC = f"{EXAMPLE}:SimpleMovingAverage"


def sweep(*args: str, where: tuple[str, ...] = ("--serial",)):
    """In this process unless ``where`` says otherwise: the Dask paths have their own tests below."""
    return CliRunner().invoke(app, ["sweep", SPEC, "--symbols", "AAPL", *where, *args])


# ------------------------------------------------------------------------------------------- grid syntax
@pytest.mark.parametrize(
    ("item", "values"),
    [
        ("fast=5,10,20", [5, 10, 20]),
        ("fast=5:20:5", [5, 10, 15, 20]),
        ("fast=5:8", [5, 6, 7, 8]),
        ("band=0.5:1.5:0.25", [0.5, 0.75, 1.0, 1.25, 1.5]),
        ("symbol=AAPL,MSFT", ["AAPL", "MSFT"]),
        ("window=[5, 10]", [5, 10]),
        ("window=[[1, 2], [3]]", [[1, 2], [3]]),
        ("flag=true,false", [True, False]),
        ("when='09:30','10:00'", ["09:30", "10:00"]),
    ],
)
def test_grid_values(item, values):
    name = item.partition("=")[0]
    assert parse_grid([item]) == {name: values}


@given(st.integers(-50, 50), st.integers(0, 40), st.integers(1, 9))
def test_an_integer_range_includes_its_stop_when_the_step_lands_on_it(start, span, step):
    stop = start + span
    values = parse_grid([f"n={start}:{stop}:{step}"])["n"]
    assert values == list(range(start, stop + 1, step))


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["fast"], "not NAME=VALUES"),
        (["1x=3"], "not NAME=VALUES"),
        (["fast="], "gives no values"),
        (["fast=1,2", "fast=3"], "given twice"),
        (["fast=10:5"], "START <= STOP"),
        (["fast=1:5:0"], "positive STEP"),
        (["fast=a:b"], "not a number"),
        ([f"fast=1:{MAX_COMBINATIONS + 1}"], "at most"),
        ([], "nothing to sweep"),
    ],
)
def test_bad_grids_are_named(items, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid(items)


# ------------------------------------------------------------------------------------------- command
def test_a_sweep_ranks_every_combination_and_exports_the_whole_table(tmp_path):
    """By default on a local Dask cluster, with a strategy class loaded from a file."""
    out = tmp_path / "sweep.csv"
    result = sweep(
        "--start", "2009-01-01", "--end", "2011-12-31",
        "-g", "fast_period=5,10", "-g", "slow_period=20:40:20",
        "-p", "quantity=100", "--holdout-from", "2011-01-01", "--top", "3", "--export", str(out),
        where=(),
    )  # fmt: skip
    assert result.exit_code == SUCCESS, result.output
    assert "Sweeping SimpleMovingAverage(" in result.output
    assert "on a local Dask cluster of" in result.output
    assert "distributed" not in result.output  # Dask's own logs stay out of the output
    assert "quantity=100" in result.output
    assert "Top 3 of 4 by sharpe_ratio (ranked before 2011-01-01" in result.output
    table = pd.read_csv(out)
    assert len(table) == 4
    assert sorted(zip(table["fast_period"], table["slow_period"], strict=True)) == [
        (5, 20), (5, 40), (10, 20), (10, 40)
    ]  # fmt: skip
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert list(table["sharpe_ratio"]) == sorted(table["sharpe_ratio"], reverse=True)
    assert (table["fills"] > 0).all()
    assert "holdout_sharpe_ratio" in table.columns
    assert "--holdout-from DATE" not in result.output  # the overfitting hint is for sweeps without one


def test_without_a_holdout_the_user_is_told_why_to_use_one():
    result = sweep("--start", "2010-01-01", "--end", "2010-12-31", "-g", "fast_period=5,10")
    assert result.exit_code == SUCCESS, result.output
    assert "--holdout-from DATE" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-g", "fastest=5,10"], "fastest"),  # not a parameter of the class: caught before any run
        (["-g", "fast_period=5,10", "-p", "fast_period=3"], "both -p and -g"),
        (["-g", "fast_period=5", "--metric", "luck"], "cannot rank by 'luck'"),
        (["-g", "fast_period=5", "--holdout-from", "someday"], "--holdout-from"),
        (["-g", "fast_period=5", "--holdout-from", "2020-01-01"], "leaves no bars on one side"),
        (["-g", "fast_period=5", "--top", "0"], "--top must be at least 1"),
        (["-g", "fast_period=5", "--volume-limit", "2"], "--volume-limit"),
        (["-g", "fast_period=5", "--fill-at", "noon"], "--fill-at must be next_open or close"),
        (["-g", "fast_period=5", "--export", "out.xlsx"], "name the file *.csv or *.parquet"),
        (["-g", "fast_period=5", "--report", "out.txt"], "name the file *.html"),
    ],
)
def test_mistakes_exit_2_with_one_line_saying_what_to_fix(args, message):
    result = sweep("--start", "2010-01-01", "--end", "2010-06-30", *args)
    assert result.exit_code == USAGE_ERROR, result.output
    assert "Error:" in result.output
    assert message in " ".join(result.output.split())


def test_the_volume_limit_reaches_every_run(tmp_path):
    """A thin allowance (1e-5 of ~1.7e8 shares a day) cuts the 2,000-share DAY orders short (their remainders
    expire with the day): every run trades less and ends elsewhere than without the limit."""
    runs = {}
    for limit in (None, "0.00001"):
        out = tmp_path / f"{limit}.csv"
        args = [
            "--start",
            "2010-01-01",
            "--end",
            "2010-12-31",
            "-g",
            "fast_period=5,10",
            "-p",
            "quantity=2000",
        ]
        args += ["--export", str(out), *(["--volume-limit", limit] if limit else [])]
        result = sweep(*args)
        assert result.exit_code == SUCCESS, result.output
        runs[limit] = pd.read_csv(out).set_index("fast_period").sort_index()
    assert (runs[None]["fills"] > 0).all()
    assert (runs["0.00001"]["final_value"] != runs[None]["final_value"]).all()


# ------------------------------------------------------------------------------------------- --report
FAST = f"{EXAMPLE}:SmaCrossFast"


def test_the_report_of_a_sweep_is_written_after_it(tmp_path):
    out = tmp_path / "reports" / "sweep.html"
    result = CliRunner().invoke(app, [
        "sweep", FAST, "-s", "AAPL", "--start", "2009-01-01", "--end", "2011-12-31",
        "-g", "fast_period=5,10", "-g", "slow_period=20,40", "-p", "quantity=100",
        "--holdout-from", "2011-01-01", "--report", str(out), "--serial",
    ])  # fmt: skip
    assert result.exit_code == SUCCESS, result.output
    assert f"Report written to {out.resolve()}" in " ".join(result.output.split())
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "Parameter sweep: SmaCrossFast(quantity=100) on AAPL, 2009-01-01 to 2011-12-31" in text
    assert '"meta":"holdout_sharpe_ratio"' in text  # the holdout's map beside the ranked one
    assert 'id="ranked"' in text


def test_the_report_of_a_walk_forward_shows_its_folds(tmp_path):
    out = tmp_path / "wf.html"
    result = CliRunner().invoke(app, [
        "sweep", FAST, "-s", "AAPL", "--start", "2009-01-01", "--end", "2011-12-31",
        "-g", "fast_period=5,10", "-g", "slow_period=20,40", "-p", "quantity=100",
        "--walk-forward", "2", "-r", str(out), "--serial",
    ])  # fmt: skip
    assert result.exit_code == SUCCESS, result.output
    assert "Report written to" in result.output
    text = out.read_text(encoding="utf-8")
    assert "Walk-forward: SmaCrossFast(quantity=100) on AAPL" in text
    assert 'id="folds"' in text
    assert 'id="chain-metrics"' in text


def test_a_report_name_that_is_not_html_is_refused_before_any_backtest(tmp_path):
    out = tmp_path / "sweep.png"
    result = CliRunner().invoke(app, [
        "sweep", FAST, "-s", "AAPL", "--start", "2010-01-01", "--end", "2010-12-31",
        "-g", "fast_period=5,10", "--report", str(out),
    ])  # fmt: skip
    assert result.exit_code == USAGE_ERROR, result.output
    assert "name the file *.html" in " ".join(result.output.split())
    assert "Sweeping" not in result.output  # refused before the sweep started
    assert not out.exists()


def test_a_worker_slow_to_exit_when_the_local_cluster_closes_stays_out_of_the_output():
    """On a loaded machine Dask's nanny kills a worker process that takes more than a few seconds to exit
    after the sweep's results are in, and says so at WARNING: routine for the command (nothing is lost),
    so it is not printed; Dask's other warnings still are. Dask's own text, through the CLI's handler."""
    printed = io.StringIO()
    handler = configure_logging(0, Console(file=printed, width=200))
    nanny = logging.getLogger("distributed.nanny")
    try:
        nanny.warning("Worker process still alive after %.1f seconds, killing", 4.0)
        assert printed.getvalue() == ""
        nanny.warning("Worker tcp://127.0.0.1:1 (pid=7) exceeded 95% memory budget. Restarting...")
        assert "exceeded 95% memory budget" in printed.getvalue()
    finally:
        logging.getLogger().removeHandler(handler)


# ------------------------------------------------------------------------------------------- where it runs
@pytest.fixture(scope="module")
def scheduler_address():
    """A running Dask cluster, as `dask scheduler` and `dask worker` would start it (on free ports)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as cluster:
        yield cluster.scheduler_address


GRID_ARGS = ("--start", "2009-01-01", "--end", "2011-12-31", "-g", "fast_period=5,10", "-g", "slow_period=20,40",
             "-p", "quantity=100", "--holdout-from", "2011-01-01")  # fmt: skip


def _exported(tmp_path: Path, name: str, *where: str) -> tuple[str, pd.DataFrame]:
    out = tmp_path / f"{name}.csv"
    result = sweep(*GRID_ARGS, "--export", str(out), where=where)
    assert result.exit_code == SUCCESS, result.output
    return " ".join(result.output.split()), pd.read_csv(out)


def test_scheduler_runs_the_sweep_on_that_cluster_with_the_serial_table(tmp_path, scheduler_address):
    _, serial = _exported(tmp_path, "serial", "--serial")
    output, remote = _exported(tmp_path, "remote", "--scheduler", scheduler_address)
    assert f"on the Dask cluster at {scheduler_address}" in output
    pd.testing.assert_frame_equal(serial, remote)
    _, chunked = _exported(tmp_path, "chunked", "--scheduler", scheduler_address, "--per-task", "3")
    pd.testing.assert_frame_equal(serial, chunked)


def test_the_scheduler_address_can_come_from_dasks_environment_variable(
    tmp_path, scheduler_address, monkeypatch
):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", scheduler_address)
    output, _ = _exported(tmp_path, "env")
    assert f"on the Dask cluster at {scheduler_address}" in output
    output, _ = _exported(tmp_path, "serial", "--serial")  # an explicit choice wins over the environment
    assert "in this process" in output


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (("--serial", "--scheduler", "tcp://127.0.0.1:1"), "give one of them"),
        (("-j", "2", "--scheduler", "tcp://127.0.0.1:1"), "the cluster's workers decide"),
        (("--serial", "-j", "2"), "drop --jobs 2"),
        (("-j", "0"), "--jobs must be at least 1"),
        (("--scheduler", " "), "--scheduler is empty"),
        (("--per-task", "0"), "--per-task must be at least 1"),
    ],
)
def test_contradictory_places_to_run_exit_2(where, message):
    result = sweep("-g", "fast_period=5,10", where=where)
    assert result.exit_code == USAGE_ERROR, result.output
    assert message in " ".join(result.output.split())
    assert "Sweeping" not in result.output
