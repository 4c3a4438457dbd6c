"""Run every benchmark, each in its own Python process (``make bench``); exits non-zero if one fails.

Each script times the project against a peer in the same run and prints the ratio; see its docstring for
what exactly is measured. Nothing here asserts a time: machines are noisy, the printed ratios are the claim.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = (
    "bench_backtest.py",
    "bench_portfolio.py",
    "bench_sweep.py",
    "bench_gateway.py",
    "bench_live.py",
    "bench_download.py",
    "bench_console.py",
)


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for name in SCRIPTS:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(here / name)])
        print(f"== {name}: exit {code} after {time.perf_counter() - started:.0f} s\n", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
