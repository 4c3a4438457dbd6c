"""Values in the sweep and walk-forward pages: parameter values as chart coordinates, and table cells
formatted as people (and ``copilot-quant sweep``'s table) read them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Label",
    "as_number",
    "axis_order",
    "d3_format",
    "error_text",
    "format_cell",
    "is_missing",
    "param_label",
    "params_at",
    "params_text",
]

Label = int | float | str  # a parameter value as the charts show it


def param_label(value: Any) -> Label:
    """A parameter value as a chart coordinate: numbers stay numbers, anything else becomes its text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return str(value)


def axis_order(labels: Sequence[Label]) -> list[Label]:
    """The distinct labels in axis order: numbers ascending, otherwise by their text."""
    distinct = list(dict.fromkeys(labels))
    if all(isinstance(v, int | float) for v in distinct):
        return sorted(distinct, key=float)
    return sorted(distinct, key=str)


def _is_percent(name: str) -> bool:
    # the same rule as the CLI's table: returns and drawdowns are fractions shown as percentages
    return "return" in name or "drawdown" in name


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def format_cell(value: Any, name: str) -> str:
    """One table value as the sweep tables show it (the page's and ``copilot-quant sweep``'s): ratios
    with two decimals, returns and drawdowns as percentages, counts and money as whole numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    if is_missing(value):
        return "-"
    if isinstance(value, float):
        if name.endswith("fills"):
            return f"{value:,.0f}"
        if _is_percent(name):
            return f"{value:.2%}"
        return f"{value:,.0f}" if name == "final_value" else f"{value:.2f}"
    return str(value)


def error_text(value: Any) -> str:
    """The error column's text: empty when the combination ran."""
    return "" if is_missing(value) else str(value)


def d3_format(name: str) -> str:
    return ".1%" if _is_percent(name) else ".2f"


def as_number(value: Any) -> float:
    """A table value as a float for a chart (NaN for a missing one)."""
    return math.nan if is_missing(value) else float(value)


def params_text(row: pd.Series, names: Sequence[str]) -> str:
    return ", ".join(f"{n}={param_label(row[n])}" for n in names)


def params_at(table: pd.DataFrame, rank: int, names: Sequence[str]) -> str:
    return ", ".join(f"{n}={param_label(table.at[rank, n])}" for n in names)
