"""The chaos soak: a long fast replay with faults fired at random and the engine SIGKILLed and restarted.

The gateway runs in this process (so faults are fired through its Python API); the engine runs in a
child process (:mod:`soak_engine`) so it can be killed without warning. At the end the engine is stopped
cleanly, and the journal is checked against the gateway's own record of executions, per strategy:

* every execution of the account reached the journal exactly once (0 lost, 0 doubled);
* each strategy's journaled fills belong to orders it placed; no execution is orphaned;
* per strategy: its journaled fills equal the gateway's executions of its orders (by exec id), its own
  book in the engine (positions from ``get_performance_summary()["strategies"]``, written by the engine
  when stopped) equals what its journaled fills add up to, and no execution is attributed to two
  strategies (the journal's order of the fill and the gateway's ``orderRef`` name the same one);
* the positions the journal implies equal the gateway's positions, symbol by symbol;
* the engine's memory stays flat (RSS of the last engine process early and at the end).

Run the long version with ``python -m tests.drills.soak --bars 50000 --strategies 3``; the test suite runs
a short one with three strategies.
"""

from __future__ import annotations

import argparse
import json
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
    executions: int = 0  # at the gateway, of this strategy's orders
    shares: float = 0.0
    #: symbol -> net quantity its journaled fills add up to
    journal_position: dict[str, float] = field(default_factory=dict)
    #: symbol -> net quantity of its own book in the engine at the end
    book_position: dict[str, float] = field(default_factory=dict)


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
    #: per-strategy mismatches: its fills vs the gateway's executions of its orders, its book vs its fills
    strategy_diffs: list[str]
    #: exec ids the journal and the gateway attribute to different strategies
    double_attributed: list[str]
    rss_start_mb: float
    rss_end_mb: float
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.doubled
            or self.resent
            or self.orphaned
            or self.position_diffs
            or self.strategy_diffs
            or self.double_attributed
        )

    def table(self) -> str:
        lines = [
            f"chaos soak: {self.bars} bars, {self.kills} engine kills, faults "
            + (", ".join(f"{k}×{v}" for k, v in sorted(self.faults.items())) or "none")
            + f", {self.elapsed_s:.0f} s",
            f"{'strategy':<10} {'orders':>7} {'fills':>6} {'gateway execs':>13} {'net shares':>11}  "
            "position (journal fills; engine book)",
            *(
                f"{r.name:<10} {r.orders:>7} {r.fills:>6} {r.executions:>13} {r.shares:>11g}  "
                f"{_position_text(r.journal_position)}; "
                + ("same" if _same(r.journal_position, r.book_position) else _position_text(r.book_position))
                for r in self.strategies
            ),
            f"executions at the gateway {self.executions}, in the journal {self.journal_fills}: "
            f"lost {len(self.lost)}, doubled {len(self.doubled)}, orphaned {len(self.orphaned)}; "
            f"orders sent twice {len(self.resent)}",
            "positions: "
            + ("journal == gateway" if not self.position_diffs else f"DIFFER {self.position_diffs}"),
            "per strategy: "
            + (
                "fills == gateway executions of its orders, book == its fills"
                if not self.strategy_diffs
                else "DIFFER " + "; ".join(self.strategy_diffs)
            )
            + f"; executions attributed to two strategies: {len(self.double_attributed)}",
            f"engine RSS (last engine process): {self.rss_start_mb:.0f} MB when ready, "
            f"{self.rss_end_mb:.0f} MB at the end",
            *self.notes,
            "RESULT: " + ("OK" if self.ok else "FAILED"),
        ]
        return "\n".join(lines)


def _position_text(position: dict[str, float]) -> str:
    return ", ".join(f"{s} {q:g}" for s, q in sorted(position.items()) if q) or "flat"


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(abs(a.get(s, 0.0) - b.get(s, 0.0)) < 1e-9 for s in set(a) | set(b))


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
        self.summary = journal_dir.parent / "engine-books.json"
        env = {**os.environ, "COPILOT_QUANT_JOURNAL_DIR": str(journal_dir)}
        args = [
            sys.executable,
            str(ENGINE_SCRIPT),
            str(port),
            str(CLIENT_ID),
            ",".join(config.symbols),
            str(config.strategies),
            str(config.seed),
            str(self.summary),
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
        books = json.loads(engine.summary.read_text(encoding="utf-8"))
        engine = None
        return _report(
            gateway,
            journal_dir,
            books,
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
    books: dict[str, dict[str, float]],
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
    rows: dict[str, StrategyRow] = {name: StrategyRow(name) for name in books}
    for order in orders:
        name = order.strategy or "?"
        rows.setdefault(name, StrategyRow(name)).orders += 1
    by_strategy: dict[str, set[str]] = defaultdict(set)  # strategy -> exec ids of its journaled fills
    for fill in fills:
        name = owner.get(fill.order_ref or "") or "?"
        row = rows.setdefault(name, StrategyRow(name))
        row.fills += 1
        row.shares += fill.signed_quantity
        row.journal_position[fill.symbol] = row.journal_position.get(fill.symbol, 0.0) + fill.signed_quantity
        by_strategy[name].add(fill.exec_id)
    at_gateway: dict[str, set[str]] = defaultdict(set)  # strategy -> exec ids of its orders at the gateway
    for execution in executions:
        at_gateway[owner[execution.order_ref] or "?"].add(execution.exec_id)
    strategy_diffs: list[str] = []
    for name, row in rows.items():
        row.executions = len(at_gateway[name])
        row.book_position = {s: float(q) for s, q in books.get(name, {}).items()}
        if by_strategy[name] != at_gateway[name]:
            missing, extra = at_gateway[name] - by_strategy[name], by_strategy[name] - at_gateway[name]
            strategy_diffs.append(f"{name}: journal lacks {sorted(missing)}, has extra {sorted(extra)}")
        if not _same(row.journal_position, row.book_position):
            strategy_diffs.append(f"{name}: book {row.book_position} != its fills {row.journal_position}")
    claims: dict[str, set[str]] = defaultdict(set)  # exec id -> strategies it is attributed to
    for name, ids in [*by_strategy.items(), *at_gateway.items()]:
        for exec_id in ids:
            claims[exec_id].add(name)
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
        strategy_diffs=strategy_diffs,
        double_attributed=sorted(x for x, names in claims.items() if len(names) > 1),
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
    parser.add_argument("--strategies", type=int, default=3)
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
