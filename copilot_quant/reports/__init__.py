"""HTML reports, one self-contained page each (plotly.js embedded, opens offline).

* :mod:`~copilot_quant.reports.backtest` — a backtest's metrics, charts (equity beside its benchmark,
  drawdown, prices with trades), per-symbol and monthly tables and its trades
  (:mod:`~copilot_quant.reports.backtest_tables`, :mod:`~copilot_quant.reports.markers`,
  :mod:`~copilot_quant.reports.trades`);
* :mod:`~copilot_quant.reports.sweep` — a parameter sweep's landscape
  (:mod:`~copilot_quant.reports.sweep_figure`, :mod:`~copilot_quant.reports.sweep_values`);
* :mod:`~copilot_quant.reports.walk_forward` — a walk-forward's chained out-of-sample curve and folds;
* :mod:`~copilot_quant.reports.page` and :mod:`~copilot_quant.reports.charts` — the page shell, styles and
  chart helpers they share.

plotly is imported by the page modules only, so importing this package costs nothing.
"""
