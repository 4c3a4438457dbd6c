"""Sweeps and walk-forward on Dask distributed: the same tables as a serial run, whatever the workers do.

Each cluster is a real LocalCluster of worker processes on free ports, closed by its fixture.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dask
import pandas as pd
import pytest
from copilot_quant.backtest.cluster import Compute, Shared, local_cluster, ship_code_of, task_pool
from copilot_quant.backtest.sweep import parameter_grid, run_sweep
from copilot_quant.backtest.walk_forward import walk_forward
from copilot_quant.cli.strategy_spec import load_strategy_class
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError
from copilot_quant.examples.sma_cross import SmaCrossFast
from distributed import Client, LocalCluster

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

RANGE = ("2006-01-01", "2011-12-31")
OPTIONS = {"initial_capital": 100_000.0, "commission": 0.001, "slippage": 0.0005}
GRID = parameter_grid({"fast_period": [5, 10, 20], "slow_period": [30, 50, 100]})


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return SampleDataProvider().get_historical_data("AAPL", *RANGE)


def _cluster(workers: int) -> LocalCluster:
    return local_cluster(workers)  # as run_sweep(jobs=N) starts it, with its quiet settings


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda n: f"{n}-workers")
def client(request):
    with _cluster(request.param) as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def two_workers():
    with _cluster(2) as cluster, Client(cluster) as client:
        yield client


def factory(**params):
    return SmaCrossFast(quantity=100, **params)


class CrashOnce(SmaCrossFast):
    """Kills the worker process building it, the first time only (the marker file remembers)."""

    def __init__(self, marker: str, **params) -> None:
        if not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)
        super().__init__(quantity=100, **params)


def _sweep(data: pd.DataFrame, strategy=factory, **kwargs):
    return run_sweep(
        strategy, GRID, symbols="AAPL", data=data, engine_options=OPTIONS, holdout_from="2010-06-01", **kwargs
    )


def test_a_sweep_on_one_two_or_three_workers_equals_the_serial_one(bars, client):
    serial = _sweep(bars, equity_curves=True)
    spread = _sweep(bars, client=client, equity_curves=True)
    pd.testing.assert_frame_equal(serial.table, spread.table)
    assert serial.table["error"].eq("").all()
    assert sorted(spread.equity_curves) == list(range(1, len(GRID) + 1))
    for rank, curve in serial.equity_curves.items():
        pd.testing.assert_series_equal(curve, spread.equity_curves[rank])


def test_several_combinations_per_task_give_the_same_table_and_progress_counts_combinations(
    bars, two_workers
):
    seen: list[tuple[int, int]] = []
    chunked = _sweep(bars, client=two_workers, per_task=4, progress=lambda d, t: seen.append((d, t)))
    pd.testing.assert_frame_equal(_sweep(bars).table, chunked.table)
    assert [t for _, t in seen] == [len(GRID)] * 3  # 9 combinations in tasks of 4, 4 and 1
    assert sorted(d for d, _ in seen)[-1] == len(GRID)
    with pytest.raises(ConfigError, match="per_task must be at least 1"):
        _sweep(bars, per_task=0)


def test_by_default_a_grid_on_workers_goes_in_shrinking_tasks_and_gives_the_same_table(bars, two_workers):
    grid = parameter_grid({"fast_period": [5, 8, 10, 12, 15, 20], "slow_period": [30, 40, 50, 100]})
    seen: list[int] = []

    def sweep(**kwargs):
        return run_sweep(factory, grid, symbols="AAPL", data=bars, engine_options=OPTIONS, **kwargs)

    spread = sweep(client=two_workers, progress=lambda done, total: seen.append(done))
    # 24 combinations on 2 workers: tasks of 6, 5, 4, 3, 2, 1, 1, 1, 1 (a quarter of what is left each)
    steps = sorted(b - a for a, b in zip([0, *sorted(seen)], sorted(seen), strict=False))
    assert sorted(seen)[-1] == 24
    assert steps == [1, 1, 1, 1, 2, 3, 4, 5, 6]
    pd.testing.assert_frame_equal(sweep().table, spread.table)


def test_a_walk_forward_on_workers_equals_the_serial_one(bars, client):
    kwargs = {"symbols": "AAPL", "data": bars, "engine_options": OPTIONS, "folds": 3}
    serial = walk_forward(factory, GRID, **kwargs)
    spread = walk_forward(factory, GRID, client=client, **kwargs)
    pd.testing.assert_frame_equal(serial.table, spread.table)
    pd.testing.assert_series_equal(serial.equity, spread.equity)
    assert serial.metrics == spread.metrics


def test_the_bars_travel_to_the_workers_once_not_once_per_run(bars, two_workers, monkeypatch):
    shipped: list[object] = []
    calls: list[int] = []
    scatter = two_workers.scatter

    def counting_scatter(data, **kwargs):
        calls.append(len(data))
        shipped.extend(getattr(item, "value", item) for item in data)  # unwrapped from its pickler
        assert kwargs["broadcast"] is True  # to every worker, once
        return scatter(data, **kwargs)

    monkeypatch.setattr(two_workers, "scatter", counting_scatter)
    _sweep(bars, client=two_workers)
    frames = [item for item in shipped if isinstance(item, pd.DataFrame)]
    assert len(frames) == 1
    assert len(shipped) == 2  # the bars and the job (strategy factory and engine settings) ...
    assert calls == [2]  # ... in one scatter: one round trip to the scheduler before the first run


def test_a_worker_leaving_while_the_bars_are_broadcast_does_not_fail_the_sweep(
    bars, two_workers, monkeypatch
):
    """Dask's broadcast fails with the departed worker's address when one leaves mid-copy: shipped again."""
    scatter = two_workers.scatter
    failures = [
        KeyError("tcp://127.0.0.1:1"),
        OSError("stream closed"),
        ValueError("Can not use replicate to delete data"),  # one left between counting and copying
    ]

    def leaving_scatter(data, **kwargs):
        if failures:
            raise failures.pop(0)  # what the scheduler's replicate raised for a worker that just died
        return scatter(data, **kwargs)

    monkeypatch.setattr(two_workers, "scatter", leaving_scatter)
    spread = _sweep(bars, client=two_workers)
    assert not failures
    pd.testing.assert_frame_equal(_sweep(bars).table, spread.table)


def test_shipping_waits_for_a_worker_when_none_is_left_then_goes_on(bars, two_workers, monkeypatch):
    """Every worker died and the nannies take seconds to restart them (a loaded machine): shipping waits
    for one to be up, asked of the scheduler, instead of failing the sweep after a few short pauses."""
    scatter, nthreads = two_workers.scatter, two_workers.nthreads
    back_at: list[float] = []  # when the restarted workers are up: 3 s after the first failed shipping

    def gone() -> bool:
        return not back_at or time.monotonic() < back_at[0]

    def none_left_for_a_while(data, **kwargs):
        if not back_at:
            back_at.append(time.monotonic() + 3.0)
        if gone():
            raise TimeoutError("No valid workers found")  # the scheduler's answer with no worker
        return scatter(data, **kwargs)

    monkeypatch.setattr(two_workers, "scatter", none_left_for_a_while)
    monkeypatch.setattr(two_workers, "nthreads", lambda: {} if back_at and gone() else nthreads())
    spread = _sweep(bars, client=two_workers)
    assert back_at
    pd.testing.assert_frame_equal(_sweep(bars).table, spread.table)


def test_a_worker_killed_mid_sweep_has_its_run_retried_and_the_table_is_complete(bars, two_workers, tmp_path):
    marker = str(tmp_path / "crashed")
    target = {"fast_period": 10, "slow_period": 50}

    def crashing(**params):
        return CrashOnce(marker, **params) if params == target else factory(**params)

    spread = _sweep(bars, strategy=crashing, client=two_workers)
    assert Path(marker).exists()  # a worker process really died building the target's strategy
    pd.testing.assert_frame_equal(_sweep(bars).table, spread.table)
    assert spread.table["error"].eq("").all()


@pytest.fixture(scope="module")
def impatient():
    """Two workers whose scheduler gives up on a task at the first worker death (KilledWorker at once)."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        _cluster(2) as cluster,
        Client(cluster) as client,
    ):
        yield client


class CrashAlways(SmaCrossFast):
    def __init__(self, **params) -> None:
        os._exit(1)


def test_a_task_given_up_by_the_scheduler_is_submitted_again_and_completes(bars, impatient, tmp_path):
    marker = str(tmp_path / "crashed")
    target = {"fast_period": 20, "slow_period": 30}

    def crashing(**params):
        return CrashOnce(marker, **params) if params == target else factory(**params)

    spread = _sweep(bars, strategy=crashing, client=impatient)
    assert Path(marker).exists()
    pd.testing.assert_frame_equal(_sweep(bars).table, spread.table)


def test_a_task_that_kills_every_worker_it_meets_is_a_failed_row_and_the_rest_complete(bars, impatient):
    target = {"fast_period": 5, "slow_period": 100}

    def deadly(**params):
        return CrashAlways(**params) if params == target else factory(**params)

    spread = _sweep(bars, strategy=deadly, client=impatient)
    failed = spread.table[spread.table["error"] != ""]
    assert [(r.fast_period, r.slow_period) for r in failed.itertuples()] == [(5, 100)]
    assert "KilledWorker" in failed["error"].iloc[0]
    ran = spread.table[spread.table["error"] == ""].sort_values(["fast_period", "slow_period"])
    alone = (
        _sweep(bars)
        .table.set_index(["fast_period", "slow_period"])
        .loc[list(zip(ran["fast_period"], ran["slow_period"], strict=True))]
    )
    assert list(ran["final_value"]) == list(alone["final_value"])


def test_a_task_of_several_runs_that_kills_every_worker_is_split_and_only_the_killer_fails(bars, impatient):
    target = {"fast_period": 10, "slow_period": 50}

    def deadly(**params):
        return CrashAlways(**params) if params == target else factory(**params)

    spread = _sweep(bars, strategy=deadly, client=impatient, per_task=3)  # the target shares its task
    failed = spread.table[spread.table["error"] != ""]
    assert [(r.fast_period, r.slow_period) for r in failed.itertuples()] == [(10, 50)]
    serial = _sweep(bars).table
    ran = spread.table[spread.table["error"] == ""]
    by_params = serial.set_index(["fast_period", "slow_period"])["final_value"]
    assert [by_params[(r.fast_period, r.slow_period)] for r in ran.itertuples()] == list(ran["final_value"])
    assert len(ran) == len(GRID) - 1


def test_a_failing_combination_on_workers_is_a_row_with_its_error(bars, two_workers):
    def picky(**params):
        if params["slow_period"] == 50:
            raise ValueError("no fifties")
        return factory(**params)

    sweep = _sweep(bars, strategy=picky, client=two_workers)
    failed = sweep.table[sweep.table["error"] != ""]
    assert sorted(failed["fast_period"]) == [5, 10, 20]
    assert set(failed["error"]) == {"ValueError: no fifties"}
    assert sweep.table["sharpe_ratio"].notna().sum() == 6


def test_a_task_the_cluster_cannot_run_goes_to_on_failure_and_the_rest_go_on(two_workers):
    def halve(x):
        if x == 3:
            raise RuntimeError("three")
        return x / 2

    with task_pool(Compute(client=two_workers)) as pool:
        results = pool.run(
            halve, ((x,) for x in range(6)), total=6, on_failure=lambda args, exc: f"{args[0]}: {exc}"
        )
    assert results == [0.0, 0.5, 1.0, "3: three", 2.0, 2.5]


def test_a_long_grid_streams_through_a_bounded_window(two_workers):
    """The task iterable is read only as results come back: never more than a window ahead of them."""
    consumed = 0
    ahead: list[int] = []

    def tasks():
        nonlocal consumed
        for x in range(300):
            consumed += 1
            yield (x,)

    with task_pool(Compute(client=two_workers)) as pool:
        results = pool.run(
            abs, tasks(), total=300, on_failure=repr, progress=lambda done, _: ahead.append(consumed - done)
        )
    assert results == list(range(300))
    assert max(ahead) <= 16  # 8 per worker thread: the client holds a few dozen futures, not 300


def test_an_interrupted_run_cancels_its_tasks_and_the_client_stays_usable(two_workers):
    def stop(done, total):
        raise KeyboardInterrupt  # what Ctrl-C raises in the client while it waits

    with task_pool(Compute(client=two_workers)) as pool:
        with pytest.raises(KeyboardInterrupt):
            pool.run(time.sleep, ((2.0,) for _ in range(40)), total=40, on_failure=repr, progress=stop)
        wait_until = time.monotonic() + 10  # the window's 16 tasks would need 16 s on 2 workers
        while two_workers.processing() and any(two_workers.processing().values()):
            assert time.monotonic() < wait_until, "the cancelled tasks kept running"
            time.sleep(0.05)
        assert pool.run(abs, ((-x,) for x in range(3)), total=3, on_failure=repr) == [0, 1, 2]


def test_the_serial_pool_reads_shared_values_and_reports_failures_the_same_way():
    shared = Shared(10)
    seen: list[tuple[int, int]] = []
    with task_pool(Compute()) as pool:
        results = pool.run(
            lambda base, x: base // x,
            ((shared, x) for x in (5, 0, 2)),
            total=3,
            on_failure=lambda args, exc: type(exc).__name__,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert results == [2, "ZeroDivisionError", 5]
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_a_strategy_loaded_from_a_file_runs_on_workers_that_cannot_import_it(bars, two_workers, tmp_path):
    source = tmp_path / "my_cross.py"
    source.write_text(
        "from copilot_quant.examples.sma_cross import SmaCrossFast\n\n"
        "class MyCross(SmaCrossFast):\n"
        "    def __init__(self, fast_period=10, slow_period=30):\n"
        "        super().__init__('AAPL', 100, fast_period, slow_period)\n"
    )
    cls = load_strategy_class(f"{source}:MyCross")
    ship_code_of(cls)
    spread = _sweep(bars, strategy=cls, client=two_workers)
    assert spread.table["error"].eq("").all(), spread.table["error"].tolist()
    pd.testing.assert_frame_equal(_sweep(bars).table, spread.table)


def test_a_script_without_a_main_guard_is_told_to_add_one(tmp_path):
    """Dask's workers import the script again (spawn): unguarded, they cannot start; the error says why."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "from copilot_quant.backtest.sweep import run_sweep\n"
        "from copilot_quant.data.providers import SampleDataProvider\n"
        "from copilot_quant.examples.sma_cross import SmaCrossFast\n"
        "run_sweep(SmaCrossFast, [{'fast_period': 5}], symbols='AAPL', data_provider=SampleDataProvider(), jobs=2)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert done.returncode != 0
    assert "ConfigError: the local Dask cluster could not start its 2 worker process(es)" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr


def test_bad_compute_settings_are_named():
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        Compute(workers=0)
    with pytest.raises(ConfigError, match="scheduler address is empty"):
        Compute(scheduler=" ")


def test_an_unreachable_scheduler_is_a_named_error(bars):
    import socket

    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot reach a Dask scheduler"):
        _sweep(bars, scheduler=f"tcp://127.0.0.1:{port}")


def _timers(dask_worker=None, dask_scheduler=None) -> dict[str, float]:
    server = dask_worker or dask_scheduler
    return {name: pc.callback_time for name, pc in server.periodic_callbacks.items()}


def test_the_local_cluster_a_run_starts_keeps_its_background_work_off_the_backtests_cores():
    with task_pool(Compute(workers=2)) as pool:
        client = pool.client  # type: ignore[attr-defined]
        worker, _ = client.run(_timers).values()
        scheduler = client.run_on_scheduler(_timers)
    assert "profile" not in worker  # no statistical profiler sampling the running backtest every 10 ms
    assert worker["tick"] == scheduler["tick"] == 500  # the event-loop watchdog: every 500 ms, not 20
    assert worker["memory_monitor"] == 500  # memory limits still enforced, checked twice a second
    assert dask.config.get("distributed.worker.profile.enabled") is True  # the caller's settings untouched
