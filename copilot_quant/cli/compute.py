"""Where `sweep` and `batch` run their backtests: ``--jobs``, ``--scheduler`` and ``--serial``.

By default a Dask ``LocalCluster`` of one worker process per core starts for the command and stops with
it. ``--scheduler tcp://HOST:8786`` (or the environment variable ``DASK_SCHEDULER_ADDRESS``, which Dask's
own tools read too) runs on a running Dask cluster instead; ``--serial`` (or ``--jobs 1``) runs every
backtest in this process, one after the other — the path for a debugger. An explicit ``--jobs`` or
``--serial`` wins over the environment variable; on the command line they cannot be combined with
``--scheduler``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import typer

from copilot_quant.errors import ConfigError

__all__ = [
    "ENV_SCHEDULER",
    "Where",
    "jobs_option",
    "quiet_dask_logs",
    "resolve",
    "scheduler_option",
    "serial_option",
]

#: The environment variable Dask itself reads for the scheduler's address.
ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"


def jobs_option() -> Any:
    return typer.Option(
        None,
        "--jobs",
        "-j",
        help="Worker processes of the local Dask cluster (default: one per core); 1 runs in this process.",
    )


def scheduler_option() -> Any:
    return typer.Option(
        None,
        "--scheduler",
        metavar="ADDRESS",
        help=f"Run on a running Dask cluster, e.g. tcp://10.0.0.5:8786 (default: ${ENV_SCHEDULER} if set).",
    )


def serial_option() -> Any:
    return typer.Option(False, "--serial", help="Run every backtest in this process (for debugging).")


@dataclass(frozen=True, slots=True)
class Where:
    """The ``jobs``/``scheduler`` arguments of run_sweep and friends, and a phrase for the user."""

    jobs: int
    scheduler: str | None

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "scheduler": self.scheduler}

    def describe(self) -> str:
        if self.scheduler is not None:
            return f"on the Dask cluster at {self.scheduler}"
        if self.jobs == 1:
            return "in this process"
        return f"on a local Dask cluster of {self.jobs} worker processes"


def resolve(jobs: int | None, scheduler: str | None, serial: bool) -> Where:
    """The options as one setting; a contradictory pair is a ConfigError naming both."""
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if scheduler is not None:
        if serial:
            raise ConfigError("--serial runs in this process and --scheduler on a cluster; give one of them")
        if jobs is not None:
            raise ConfigError("--jobs sizes a local cluster; with --scheduler the cluster's workers decide")
        return Where(1, _address(scheduler, "--scheduler"))
    if serial:
        if jobs is not None and jobs != 1:
            raise ConfigError(f"--serial runs one backtest at a time; drop --jobs {jobs}")
        return Where(1, None)
    if jobs is not None:
        return Where(jobs, None)
    from_env = os.environ.get(ENV_SCHEDULER, "").strip()
    if from_env:
        return Where(1, _address(from_env, f"${ENV_SCHEDULER}"))
    return Where(os.cpu_count() or 1, None)


def _address(text: str, where: str) -> str:
    address = text.strip()
    if not address:
        raise ConfigError(f"{where} is empty; give the scheduler's address, e.g. tcp://10.0.0.5:8786")
    return address


def quiet_dask_logs() -> None:
    """Dask's own INFO logs (workers starting, nannies closing) out of the command's output.

    Dask sets its ``distributed`` logger to INFO when imported, so the root level (``-v``) does not filter
    them; a local cluster raises the level while it runs but restores it before logging its shutdown.
    Warnings (a worker lost, a task resubmitted) and errors still show; ``-vv`` shows everything.
    """
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("distributed").setLevel(logging.WARNING)
