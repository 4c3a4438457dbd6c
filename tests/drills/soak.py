"""The chaos soak: a long fast replay with faults fired at random and the engine SIGKILLed and restarted.

The gateway runs in this process (so faults are fired through its Python API); the engine runs in a
child process (:mod:`soak_engine`) so it can be killed without warning. At the end the engine is stopped
cleanly, and the journal is checked against the gateway's own record of executions, per strategy:

* every execution of the account reached the journal exactly once (0 lost, 0 doubled);
* each strategy's journaled fills belong to orders it placed; no execution is orphaned;
* the positions the journal implies equal the gateway's positions, symbol by symbol;
* the engine's memory stays flat (RSS of the last engine process early and at the end).

Run the long version with ``python -m tests.drills.soak --bars 50000``; the test suite runs a short one.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.journal import TradeJournal

ENGINE_SCRIPT = Path(__file__).with_name("soak_engine.py")
ACCOUNT = "DU1234567"
CLIENT_ID = 91


@dataclass(slots=True)
class SoakConfig:
    bars: int = 600  # market bars (1 minute each) the gateway replays
    speed: float = 60.0  # bars per second
    kills: int = 2  # SIGKILLs of the engine, spread over the run
    faults: int = 6  # random gateway faults, spread over the run
    strategies: int = 1
    symbols: tuple[str, ...] = ("AAPL", "MSFT")
    seed: int = 7
    start: str = "2024-03-04 09:30"


@dataclass(slots=True)
class StrategyRow:
    name: str
    orders: int = 0
    fills: int = 0
    shares: float = 0.0


@dataclass(slots=True)
class SoakReport:
    bars: int
    kills: int
    faults: Counter[str]
    executions: int  # at the gateway, for this account's journaled orders
    journal_fills: int
    lost: list[str]  # executions the journal does not have
    doubled: list[str]  # exec ids journaled more than once
    resent: list[str]  # journal refs that reached the gateway as more than one order
    orphaned: list[str]  # journaled fills whose order no strategy placed
    position_diffs: dict[str, tuple[float, float]]  # symbol -> (journal, gateway)
    strategies: list[StrategyRow]
    rss_start_mb: float
    rss_end_mb: float
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.resent or self.orphaned or self.position_diffs)

    def table(self) -> str:
        lines = [
            f"chaos soak: {self.bars} bars, {self.kills} engine kills, faults "
            + (", ".join(f"{k}×{v}" for k, v in sorted(self.faults.items())) or "none")
            + f", {self.elapsed_s:.0f} s",
            f"{'strategy':<10} {'orders':>7} {'fills':>6} {'net shares':>11}",
            *(f"{r.name:<10} {r.orders:>7} {r.fills:>6} {r.shares:>11g}" for r in self.strategies),
            f"executions at the gateway {self.executions}, in the journal {self.journal_fills}: "
            f"lost {len(self.lost)}, doubled {len(self.doubled)}, orphaned {len(self.orphaned)}; "
            f"orders sent twice {len(self.resent)}",
            "positions: "
            + ("journal == gateway" if not self.position_diffs else f"DIFFER {self.position_diffs}"),
            f"engine RSS (last engine process): {self.rss_start_mb:.0f} MB when ready, "
            f"{self.rss_end_mb:.0f} MB at the end",
            *self.notes,
            "RESULT: " + ("OK" if self.ok else "FAILED"),
        ]
        return "\n".join(lines)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class _Engine:
    """One engine process: started, waited for READY, killed or stopped."""

    def __init__(self, port: int, config: SoakConfig, journal_dir: Path, log: Path) -> None:
        env = {**os.environ, "COPILOT_QUANT_JOURNAL_DIR": str(journal_dir)}
        args = [
            sys.executable,
            str(ENGINE_SCRIPT),
            str(port),
            str(CLIENT_ID),
            ",".join(config.symbols),
            str(config.strategies),
            str(config.seed),
        ]
        self._log = log.open("a")
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not result or result[0].strip() != "READY":
            self.kill()
            raise RuntimeError(f"the soak engine did not start: {result!r} (see the engine log)")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self._close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        finally:
            self.kill()

    def _close(self) -> None:
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def _faults(gateway: GatewayServer, rng: random.Random) -> dict[str, Callable[[], None]]:
    def lost_and_restored() -> None:
        gateway.connectivity_lost()
        time.sleep(rng.uniform(0.5, 2))
        gateway.connectivity_restored(data_lost=rng.random() < 0.5)

    def withheld() -> None:
        gateway.withhold_executions(True)
        time.sleep(rng.uniform(0.5, 2))
        gateway.withhold_executions(False)

    return {
        "drop": lambda: gateway.drop_all() and None,
        "restart": gateway.restart,
        "lost/restored": lost_and_restored,
        "competing": gateway.competing_session,
        "reject": lambda: gateway.reject_next_order("soak: rejected"),
        "withhold": withheld,
    }


def run_soak(
    config: SoakConfig, workdir: Path, progress: Callable[[str], None] = lambda _: None
) -> SoakReport:
    """Run one soak in ``workdir`` (journal, gateway state, engine log) and return its report."""
    began = time.monotonic()
    rng = random.Random(config.seed)
    journal_dir = workdir / "journal"
    gateway = GatewayServer(
        GatewayConfig(
            port=0,
            data=SyntheticDataProvider(seed=config.seed),
            symbols=list(config.symbols),
            bar_interval="1m",
            start=config.start,
            account=ACCOUNT,
            state_file=workdir / "gateway-state.json",
        )
    ).start()
    counter = _StepCounter(gateway)
    fired: Counter[str] = Counter()
    log = workdir / "engine.log"
    engine: _Engine | None = None
    try:
        engine = _Engine(gateway.port, config, journal_dir, log)
        engine.wait_ready()
        rss_start = _rss_mb(engine.proc.pid)  # of the engine that runs to the end: reset at each restart
        # Every stretch of the run ends with a kill, a fault or nothing; kills and faults at random stretches.
        events = ["kill"] * config.kills + ["fault"] * config.faults
        stretches = len(events) + 1
        rng.shuffle(events)
        events.append("end")
        per_stretch = max(config.bars // stretches, 1)
        faults = _faults(gateway, rng)
        gateway.clock.run(config.speed)
        delivered = 0
        for event in events:
            target = delivered + per_stretch
            while counter.steps < target:
                time.sleep(0.05)
            delivered = target
            if event == "kill":
                engine.kill()
                fired["engine SIGKILL"] += 1
                progress(f"bar ~{delivered}: engine killed")
                time.sleep(rng.uniform(0.2, 1.5))  # the market moves on while it is down
                engine = _Engine(gateway.port, config, journal_dir, log)
                engine.wait_ready()
                rss_start = _rss_mb(engine.proc.pid)
            elif event == "fault":
                name = rng.choice(sorted(faults))
                faults[name]()
                fired[name] += 1
                progress(f"bar ~{delivered}: fault {name}")
        gateway.clock.pause()
        time.sleep(3)  # last orders and fills settle (market orders fill at the next bar: step one more)
        gateway.clock.step(2)
        time.sleep(3)
        rss_end = _rss_mb(engine.proc.pid)
        engine.stop()
        engine = None
        return _report(
            gateway,
            journal_dir,
            bars=counter.steps,
            fired=fired,
            rss_start=rss_start,
            rss_end=rss_end,
            elapsed=time.monotonic() - began,
        )
    finally:
        if engine is not None:  # the run failed: never leave an engine process behind
            engine.kill()
        gateway.stop()


class _StepCounter:
    """Counts the market's steps (bars delivered), whatever the calendar does between them."""

    def __init__(self, gateway: GatewayServer) -> None:
        self.steps = 0
        gateway.clock.market.step_listeners.append(self)

    def __call__(self, end: object, closed: bool) -> None:
        self.steps += 1


def _report(
    gateway: GatewayServer,
    journal_dir: Path,
    *,
    bars: int,
    fired: Counter[str],
    rss_start: float,
    rss_end: float,
    elapsed: float,
) -> SoakReport:
    with TradeJournal(journal_dir / f"{ACCOUNT}.sqlite", read_only=True) as journal:
        orders = journal.orders()
        fills = journal.fills()
    owner = {o.order_ref: o.strategy for o in orders}
    executions = [e for e in gateway.broker.executions() if e.order_ref in owner]
    journaled = Counter(f.exec_id for f in fills)
    sent = Counter(o.order_ref for o in [*gateway.broker.open_orders(), *gateway.broker.completed_orders()])
    rows: dict[str, StrategyRow] = {}
    for order in orders:
        name = order.strategy or "?"
        rows.setdefault(name, StrategyRow(name)).orders += 1
    for fill in fills:
        name = owner.get(fill.order_ref or "") or "?"
        row = rows.setdefault(name, StrategyRow(name))
        row.fills += 1
        row.shares += fill.signed_quantity
    journal_pos: dict[str, float] = defaultdict(float)
    for fill in fills:
        journal_pos[fill.symbol] += fill.signed_quantity
    gateway_pos = {p.contract.symbol: p.position for p in gateway.broker.positions()}
    diffs = {
        s: (journal_pos.get(s, 0.0), gateway_pos.get(s, 0.0))
        for s in set(journal_pos) | set(gateway_pos)
        if abs(journal_pos.get(s, 0.0) - gateway_pos.get(s, 0.0)) > 1e-9
    }
    return SoakReport(
        bars=bars,
        kills=fired["engine SIGKILL"],
        faults=Counter({k: v for k, v in fired.items() if k != "engine SIGKILL"}),
        executions=len(executions),
        journal_fills=len(fills),
        lost=sorted({e.exec_id for e in executions} - set(journaled)),
        doubled=sorted(x for x, n in journaled.items() if n > 1),
        resent=sorted(ref for ref, n in sent.items() if ref in owner and n > 1),
        orphaned=sorted(f.exec_id for f in fills if owner.get(f.order_ref or "") is None),
        position_diffs=diffs,
        strategies=sorted(rows.values(), key=lambda r: r.name),
        rss_start_mb=rss_start,
        rss_end_mb=rss_end,
        elapsed_s=elapsed,
    )


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--speed", type=float, default=200.0)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--faults", type=int, default=40)
    parser.add_argument("--strategies", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = SoakConfig(
        bars=args.bars,
        speed=args.speed,
        kills=args.kills,
        faults=args.faults,
        strategies=args.strategies,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(prefix="copilot-quant-soak-") as tmp:
        report = run_soak(config, Path(tmp), progress=lambda m: print(m, flush=True))
        print(report.table())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
