"""Example strategies that ship with copilot_quant (importable, and runnable from the CLI).

* :mod:`copilot_quant.examples.sma_cross` — the guide's moving-average crossover, written both ways:
  :class:`~copilot_quant.examples.sma_cross.SimpleMovingAverage` (pandas per bar, exactly the guide's
  logic) and :class:`~copilot_quant.examples.sma_cross.SmaCrossFast` (the same rules on the fast path).
"""

from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast

__all__ = ["SimpleMovingAverage", "SmaCrossFast"]
