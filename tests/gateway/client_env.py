"""Where each third-party TWS API client the compatibility suite drives comes from.

ib_async is the project's own dependency, and the current IB API (``nautilus-ibapi`` 10.4x) is in the
``dev`` extra. Two more cannot share that environment: IB's API 10.19 has the same import name (``ibapi``)
as 10.4x, and ib_insync 0.9.86 requires ``eventkit``, whose package name clashes with ib_async's
``aeventkit``. Those are installed once, without dependencies, into their own directory under the repo's
``.pytest_cache`` (from the package registry, with pip) and put first on the scenario subprocess's path.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parents[2] / ".pytest_cache" / "ib-clients"


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """One client under test: how to get it and which scenario drives it."""

    name: str
    requirement: str  # pip requirement of the version under test
    distribution: str  # the installed distribution whose version is checked
    version_prefix: str  # the environment's copy is used only if its version starts with this
    scenario: str  # module in tests.gateway.client_scenarios
    module: str = ""  # import name passed to the insync-family scenario


def _installed(spec: ClientSpec) -> bool:
    try:
        return importlib.metadata.version(spec.distribution).startswith(spec.version_prefix)
    except importlib.metadata.PackageNotFoundError:
        return False


def client_path(spec: ClientSpec) -> Path | None:
    """The directory to put first on ``sys.path`` for ``spec`` (None: the environment already has it).

    Installs into the cache on first use; fails the test with the reason when the registry cannot be
    reached, rather than skipping a compatibility check silently.
    """
    if _installed(spec):
        return None
    target = CACHE / spec.name
    if (target / ".complete").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", dir=CACHE))  # private: runs may overlap
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(staging)]
    done = subprocess.run([*command, spec.requirement], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.fail(
            f"cannot install {spec.requirement} for the client compatibility tests (pip exit "
            f"{done.returncode}); the package registry must be reachable once, after which the copy in "
            f"{CACHE} is reused.\n{done.stderr.strip()[-2000:]}"
        )
    (staging / ".complete").write_text(spec.requirement + "\n")
    try:
        staging.rename(target)
    except OSError:  # another run finished the same install first (or left a broken copy): use a fresh one
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        else:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def scenario_env(path: Path | None) -> dict[str, str]:
    """The environment of a scenario subprocess: ``path`` first, then this test run's own path."""
    env = dict(os.environ)
    parts = [str(path)] if path is not None else []
    parts.append(str(Path(__file__).resolve().parents[2]))
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def run_family_scenario(spec: ClientSpec, port: int, family: str) -> dict:
    """Run ``tests.gateway.client_scenarios.<family>_insync`` (ib_async/ib_insync) or ``<family>_ibapi``
    (IB's client) for ``spec`` against the gateway on ``port``; the JSON it printed last."""
    insync = spec.scenario == "insync_family"
    module = f"{family}_insync" if insync else f"{family}_ibapi"
    args = [sys.executable, "-m", f"tests.gateway.client_scenarios.{module}"]
    args += [spec.module, str(port)] if insync else [str(port)]
    done = subprocess.run(
        args, capture_output=True, text=True, env=scenario_env(client_path(spec)), timeout=120, check=False
    )
    assert done.returncode == 0, f"{spec.name} {family} scenario failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])
