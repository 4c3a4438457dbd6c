"""Where many backtests run: in this process, or on Dask distributed (a local cluster or one you name).

Sweeps, walk-forward analysis and batches describe their work as one function and one argument tuple per
task; :func:`task_pool` gives a pool that runs them and returns the results in task order, whatever order
they finish in — so a result never depends on the number of workers.

* :class:`Compute` says where. ``Compute()`` (one worker, no scheduler) runs every task in this process,
  one after the other: the debugging path, where breakpoints and tracebacks work as usual.
  ``Compute(workers=N)`` starts a Dask ``LocalCluster`` of N worker processes with one thread each for the
  duration of the run (no set-up; free ports). ``Compute(scheduler="tcp://host:8786")``
  runs on the workers of a running Dask cluster; ``Compute(client=client)`` reuses an open
  ``distributed.Client``.
* :class:`Shared` wraps a value many tasks read (the bars, the strategy factory): it is shipped to each
  worker once (``scatter(..., broadcast=True)``), not once per task. ``Shared(value, broadcast=False)``
  is for a value one task reads (one symbol's bars): it travels once, to the worker that runs the task.
* Tasks are submitted in a bounded window (a few per worker thread) and taken as they complete
  (``as_completed``), so a grid of 100,000 combinations never holds 100,000 futures in the client; the
  task iterable is read lazily, so the caller can load data as the window advances.
* A worker that dies: Dask reschedules its tasks on the other workers (a local cluster's nanny also
  restarts the process). A task that still fails because of the cluster (``KilledWorker`` after repeated
  deaths, shared data lost with its last worker) is resubmitted with its shared data shipped again, up to
  :data:`RESUBMITS` times, alone (the cluster drains first), so a task that kills every worker it runs
  on takes no innocent task down with it; then, like a task whose function raised, it goes to the caller's
  ``on_failure`` — one failed task never ends the run.

Classes loaded from a file (``copilot-quant sweep path/to/strategy.py:Class``) are not importable by name on
a worker: :func:`ship_code_of` makes cloudpickle send their module's code with the tasks.
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import CancelledError  # distributed's FutureCancelledError is one
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import cloudpickle
import dask
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed

from copilot_quant.errors import ConfigError

__all__ = [
    "LOCAL_CLUSTER_CONFIG",
    "RESUBMITS",
    "Compute",
    "Shared",
    "TaskPool",
    "local_cluster",
    "ship_code_of",
    "task_pool",
]

log = logging.getLogger(__name__)

#: Times a task lost to the cluster (not to its own error) is submitted again before it counts as failed.
RESUBMITS = 2

#: Tasks in flight per worker thread: enough to keep every worker busy while results travel back.
_WINDOW_PER_THREAD = 8
_MIN_WINDOW = 16

#: Times shipping a shared value is tried when workers come and go under it, and the pause after the first.
_SCATTER_TRIES = 4
_SCATTER_PAUSE = 0.25
#: Seconds to wait for a worker to (re)join when none is left to ship to (a local cluster's nanny restarts a
#: dead worker: seconds on a loaded machine, as it imports pandas again).
_WORKERS_BACK_S = 60.0

#: Seconds to wait for a named scheduler before saying it cannot be reached.
_CONNECT_TIMEOUT = 15

#: Dask settings for the LocalCluster a run starts. Its defaults wake every process of an idle 2-worker
#: cluster hundreds of times a second (the event-loop watchdog every 20 ms in the scheduler, each nanny and
#: each worker; the memory monitor every 100 ms; a statistical profiler sampling the running task every 10 ms
#: for the dashboard): ~110 ms of CPU a second measured on this project's 2-core machine, taken from the
#: backtests once every core runs one. With these, ~15 ms a second. Memory limits are still enforced
#: (checked twice a second); only the dashboard's profile and system plots go. The README shows the same
#: settings for a real cluster.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.deploy.cluster-repr-interval": "10s",
}

Progress = Callable[[int, int], None]
OnFailure = Callable[[tuple[Any, ...], BaseException], Any]


@dataclass(frozen=True, slots=True)
class Compute:
    """Where tasks run: this process (the default), a LocalCluster of ``workers``, a ``scheduler`` address,
    or an open ``client``."""

    workers: int = 1
    scheduler: str | None = None
    client: Client | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"jobs must be at least 1, got {self.workers}")
        if self.scheduler is not None and self.client is not None:
            raise ConfigError("give a scheduler address or an open client, not both")
        if self.scheduler is not None and not self.scheduler.strip():
            raise ConfigError("the scheduler address is empty; give e.g. tcp://10.0.0.5:8786")

    @property
    def serial(self) -> bool:
        """True when every task runs in this process, one after the other."""
        return self.client is None and self.scheduler is None and self.workers == 1


class Shared:
    """A value tasks read, shipped to the workers once (to each of them with ``broadcast``)."""

    __slots__ = ("broadcast", "value")

    def __init__(self, value: Any, *, broadcast: bool = True) -> None:
        self.value = value
        self.broadcast = broadcast


class TaskPool(Protocol):
    """Runs ``fn(*args)`` for each task; :class:`Shared` arguments arrive as their values."""

    def worker_threads(self) -> int | None:
        """The cluster's worker threads now (0 while none has joined); None when tasks run in this process."""
        ...

    def run(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[Any, ...]],
        *,
        total: int,
        on_failure: OnFailure,
        progress: Progress | None = None,
        sizes: Sequence[int] | None = None,
    ) -> list[Any]:
        """The results in task order; ``on_failure(args, exc)`` stands in for a task that failed.

        ``progress(done, total)`` follows finished tasks; with ``sizes`` (how many runs each task holds)
        it counts runs instead.
        """
        ...


@contextmanager
def task_pool(compute: Compute) -> Iterator[TaskPool]:
    """A pool for ``compute``; a cluster it starts (or a client it opens) is closed on exit."""
    if compute.serial:
        yield _SerialPool()
        return
    if compute.client is not None:
        yield _DaskPool(compute.client)
        return
    if compute.scheduler is not None:
        with _connect(compute.scheduler) as client:
            yield _DaskPool(client)
        return
    with local_cluster(compute.workers) as cluster, Client(cluster) as client:
        yield _DaskPool(client)


def local_cluster(workers: int) -> LocalCluster:
    """A LocalCluster of ``workers`` processes of one thread each, with :data:`LOCAL_CLUSTER_CONFIG`; a
    failure to start says the likely reason."""
    try:
        return _start_local_cluster(workers)
    except RuntimeError as exc:
        raise ConfigError(
            f"the local Dask cluster could not start its {workers} worker process(es) ({exc}); Dask starts "
            "workers as fresh Python processes that import your script again: in a script, call the sweep "
            'under `if __name__ == "__main__":`, or pass jobs=1 to run in this process'
        ) from exc


def _start_local_cluster(workers: int) -> LocalCluster:
    # processes: a backtest is pure Python and holds the GIL; one thread each: one backtest per core.
    # The scheduler's HTTP server on a free port (its default 8787 collides with any other cluster, and
    # says so in a warning); Dask's own logs only when they are errors. The settings are read as the
    # scheduler, nannies and workers start (a nanny hands them to its worker process).
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )


def _connect(address: str) -> Client:
    try:
        return Client(address, timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach a Dask scheduler at {address} ({type(exc).__name__}: {exc}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or drop --scheduler to run locally"
        ) from exc


def ship_code_of(cls: type) -> None:
    """Let workers unpickle ``cls`` even if its module was loaded from a file and is not importable there.

    A module a worker can import by name (an installed package) is left alone: it is pickled by reference,
    as usual. A top-level module no import path can find (a strategy file loaded by path) is registered
    with cloudpickle to travel by value, code included.
    """
    name = cls.__module__
    module = sys.modules.get(name)
    if module is None or name == "__main__":
        return  # cloudpickle already ships __main__'s code by value
    top = name.partition(".")[0]
    if top in sys.builtin_module_names or importlib.machinery.PathFinder.find_spec(top) is not None:
        return
    cloudpickle.register_pickle_by_value(module)


def _local(arg: Any) -> Any:
    return arg.value if isinstance(arg, Shared) else arg


class _SerialPool:
    """Every task in this process, in order."""

    def worker_threads(self) -> int | None:
        return None

    def run(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[Any, ...]],
        *,
        total: int,
        on_failure: OnFailure,
        progress: Progress | None = None,
        sizes: Sequence[int] | None = None,
    ) -> list[Any]:
        results: list[Any] = []
        counter = _Counter(total, sizes, progress)
        for index, args in enumerate(tasks):
            try:
                results.append(fn(*(_local(a) for a in args)))
            except Exception as exc:  # one failed task is reported by the caller; the rest go on
                results.append(on_failure(args, exc))
            counter.finished(index)
        return results


class _Counter:
    """Reports finished tasks to ``progress`` (counting each as its size when sizes are given)."""

    __slots__ = ("done", "progress", "sizes", "total")

    def __init__(self, total: int, sizes: Sequence[int] | None, progress: Progress | None) -> None:
        self.sizes = sizes
        self.total = sum(sizes) if sizes is not None else total
        self.progress = progress
        self.done = 0

    def finished(self, index: int) -> None:
        self.done += self.sizes[index] if self.sizes is not None else 1
        if self.progress is not None:
            self.progress(self.done, self.total)


@dataclass(slots=True)
class _Pending:
    index: int
    args: tuple[Any, ...]
    attempt: int


class _DaskPool:
    """Tasks on a Dask client, a bounded window at a time."""

    def __init__(self, client: Client) -> None:
        self.client = client
        # id(Shared) -> (the Shared, its future, tasks in flight that read it); holding the Shared keeps
        # its id from being reused while the entry lives.
        self._shipped: dict[int, tuple[Shared, Future, int]] = {}

    def run(
        self,
        fn: Callable[..., Any],
        tasks: Iterable[tuple[Any, ...]],
        *,
        total: int,
        on_failure: OnFailure,
        progress: Progress | None = None,
        sizes: Sequence[int] | None = None,
    ) -> list[Any]:
        counter = _Counter(total, sizes, progress)
        flight = _Flight(self, fn, enumerate(tasks), total=total, on_failure=on_failure, counter=counter)
        try:
            flight.submit(flight.fresh(flight.window))
            for batch in flight.completed.batches():
                flight.collect(batch)
        finally:
            if flight.pending:  # interrupted (Ctrl-C, a failing progress callback): stop the cluster's work
                self.client.cancel(list(flight.pending))
            self._shipped.clear()  # the shared values' futures: the workers may drop them now
        return flight.results

    def _values(self, futures: Sequence[Future]) -> list[Any]:
        """Each finished future's result (one gather for the lot), else its exception."""
        done = {f.key: f for f in futures if f.status == "finished"}
        # keyed, so a result lost between finishing and the gather is missing, not shifting the others
        results = self.client.gather(done, errors="skip") if done else {}
        values: list[Any] = []
        for future in futures:
            if future.key in results:
                values.append(results[future.key])
            elif future.status == "error":
                values.append(future.exception())
            else:  # cancelled, or its result lost between finishing and the gather
                values.append(CancelledError(f"the task ended as {future.status!r}"))
        return values

    def _outcome(self, future: Future, value: Any, item: _Pending) -> Any:
        """The task's result, ``_AGAIN`` to resubmit it, or a ``_Failed`` for ``on_failure``."""
        if future.status == "finished" and not isinstance(value, CancelledError):
            return value
        exc = value if isinstance(value, BaseException) else CancelledError(repr(value))
        if isinstance(exc, KilledWorker | CancelledError) and item.attempt < RESUBMITS:
            # lost to the cluster, not to its own code: run it again elsewhere
            log.warning("a task was lost with its worker (%s); submitting it again", type(exc).__name__)
            return _AGAIN
        return _Failed(exc)

    def worker_threads(self) -> int | None:
        return sum(self.client.nthreads().values())

    def _window(self) -> int:
        return max(_MIN_WINDOW, _WINDOW_PER_THREAD * (self.worker_threads() or 0))

    def _ship(self, args: Iterable[Any]) -> None:
        """Ship every :class:`Shared` among ``args`` not on the cluster yet (or lost with its workers): one
        scatter for all the broadcast values and one for the others, each a round trip to the scheduler."""
        todo: dict[int, Shared] = {}
        for arg in args:
            if isinstance(arg, Shared) and id(arg) not in todo:
                entry = self._shipped.get(id(arg))
                if entry is None or entry[1].status != "finished":  # never shipped, or lost with its workers
                    todo[id(arg)] = arg
        for broadcast in (True, False):
            group = [arg for arg in todo.values() if arg.broadcast is broadcast]
            if group:
                for arg, future in zip(group, self._scatter(group, broadcast), strict=True):
                    self._shipped[id(arg)] = (arg, future, 0)

    def _remote(self, arg: Any) -> Any:
        """The future of a shipped :class:`Shared` (counted as read by one more task), else ``arg``."""
        if not isinstance(arg, Shared):
            return arg
        shared, future, users = self._shipped[id(arg)]
        self._shipped[id(arg)] = (shared, future, users + 1)
        return future

    def _scatter(self, args: Sequence[Shared], broadcast: bool) -> list[Future]:
        """Ship the values of ``args``; again, after a pause and once a worker is up, if workers came or went
        while they were being copied to them all."""
        attempt = 1
        while True:
            try:
                # each value wrapped, so a list or dict value is shipped whole rather than split up
                values = [_ByValue(arg.value) for arg in args]
                return list(self.client.scatter(values, broadcast=broadcast, hash=False))
            # KeyError: a worker left mid-broadcast; ValueError: one left between the scheduler counting
            # the workers and copying to them ("Can not use replicate to delete data"); OSError: the comm
            # to a dying worker closed, or no worker is left at all
            except (KeyError, ValueError, OSError) as exc:
                if attempt == _SCATTER_TRIES:
                    raise
                log.warning(
                    "shipping data to the workers failed (%s: %s); trying again", type(exc).__name__, exc
                )
                time.sleep(_SCATTER_PAUSE * attempt)
                self._await_a_worker()
                attempt += 1

    def _await_a_worker(self) -> None:
        """Wait until at least one worker is up (none is left when the last one died and its nanny is still
        restarting it); a :class:`ConfigError` if none comes back within ``_WORKERS_BACK_S``."""
        deadline = time.monotonic() + _WORKERS_BACK_S
        # asked of the scheduler itself: a LocalCluster's own view of its workers (what
        # Client.wait_for_workers reads) can lag behind a worker its nanny restarted
        while not self.worker_threads():
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"no Dask worker is left to run the sweep, and none joined within {_WORKERS_BACK_S:.0f} s; "
                    "start workers for the scheduler (dask worker tcp://HOST:8786) or use a local cluster"
                )
            time.sleep(0.1)

    def _release(self, args: Sequence[Any]) -> None:
        """Forget a one-task value once no task in flight reads it (broadcast values stay for the run)."""
        for arg in args:
            if isinstance(arg, Shared) and id(arg) in self._shipped:
                shared, future, users = self._shipped[id(arg)]
                if users <= 1 and not shared.broadcast:
                    del self._shipped[id(arg)]
                else:
                    self._shipped[id(arg)] = (shared, future, users - 1)


class _Flight:
    """One :meth:`_DaskPool.run`: the tasks in flight, the results so far, the tasks to run again."""

    def __init__(
        self,
        pool: _DaskPool,
        fn: Callable[..., Any],
        todo: Iterator[tuple[int, tuple[Any, ...]]],
        *,
        total: int,
        on_failure: OnFailure,
        counter: _Counter,
    ) -> None:
        self.pool, self.fn, self.todo, self.on_failure, self.counter = pool, fn, todo, on_failure, counter
        self.results: list[Any] = [None] * total
        self.pending: dict[Future, _Pending] = {}
        self.completed = as_completed()
        self.window = pool._window()
        self.suspects: deque[_Pending] = deque()  # lost with a worker: each runs again alone, see collect

    def fresh(self, count: int) -> list[_Pending]:
        """Up to ``count`` tasks not yet submitted (the task iterable is read only this far)."""
        return [_Pending(index, args, 0) for index, args in _take(self.todo, count)]

    def submit(self, items: Sequence[_Pending]) -> None:
        if not items:
            return
        self.pool._ship(a for item in items for a in item.args)
        remote = (tuple(self.pool._remote(a) for a in item.args) for item in items)
        futures = self.pool.client.map(self.fn, *zip(*remote, strict=True), pure=False)  # one message
        for future, item in zip(futures, items, strict=True):
            self.pending[future] = item
            self.completed.add(future)

    def collect(self, batch: Sequence[Future]) -> None:
        """Take a batch of completed futures, then top the window up (or run a suspect again)."""
        finished = []
        for future, value in zip(batch, self.pool._values(batch), strict=True):
            item = self.pending.pop(future)
            finished.append((future, item))
            outcome = self.pool._outcome(future, value, item)
            if outcome is _AGAIN:
                self.suspects.append(_Pending(item.index, item.args, item.attempt + 1))
                continue
            failed = isinstance(outcome, _Failed)
            self.results[item.index] = self.on_failure(item.args, outcome.exc) if failed else outcome
            self.counter.finished(item.index)
        if self.suspects:
            # A worker died under these tasks, and any one of them may have killed it: each runs again
            # alone, once the others have drained, so a task that kills every worker it meets takes no
            # other task down with it.
            if not self.pending:
                self.submit([self.suspects.popleft()])
        else:
            self.submit(self.fresh(self.window - len(self.pending)))
        for future, item in finished:  # after the resubmission, so a value still read is reused
            self.pool._release(item.args)
            future.release()


class _ByValue:
    """Pickles its value with cloudpickle, honouring :func:`ship_code_of`; unpickles as the bare value.

    Dask tries the standard pickle first, which pickles a class by reference even when its module was
    registered to travel by value, so a strategy loaded from a file would not unpickle on a worker.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return cloudpickle.loads, (cloudpickle.dumps(self.value),)


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_AGAIN = object()


def _take(items: Iterator[tuple[int, tuple[Any, ...]]], count: int) -> list[tuple[int, tuple[Any, ...]]]:
    taken = []
    for _ in range(count):
        item = next(items, None)
        if item is None:
            break
        taken.append(item)
    return taken
