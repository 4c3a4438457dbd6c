"""Journal tables as pandas frames, and their export to CSV or Parquet (pandas is imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from copilot_quant.errors import ConfigError, JournalError

__all__ = ["FORMATS", "export_format", "table_frame", "write_frame"]

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_TIME_COLUMNS = ("time", "created_at", "submitted_at", "updated_at", "recorded_at")
# Nullable numbers: without this an all-NULL column would come back as dtype object.
_FLOAT_COLUMNS = ("limit_price", "stop_price", "commission", "realized_pnl")


def table_frame(columns: list[str], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows of one journal table as a frame; time columns become tz-aware UTC datetimes."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in _TIME_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    for column in _FLOAT_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].astype("float64")
    return frame


def export_format(path: Path, fmt: str | None = None) -> str:
    """``'csv'`` or ``'parquet'``: ``fmt`` when given, else what the file's suffix says (:data:`FORMATS`).

    Raises :class:`~copilot_quant.errors.ConfigError` when ``fmt`` is neither or the suffix is unknown.
    """
    if fmt is not None:
        kind = fmt.strip().lower()
        if kind not in ("csv", "parquet"):
            raise ConfigError(f"fmt={fmt!r} is not an export format; pass fmt='csv' or fmt='parquet'")
        return kind
    by_suffix = FORMATS.get(path.suffix.lower())
    if by_suffix is None:
        # Worded for both audiences: the CLI's --export options take only a file name.
        raise ConfigError(
            f"cannot tell the export format of {str(path)!r}; name the file *.csv or *.parquet "
            "(from Python, fmt='csv' or fmt='parquet' also works)"
        )
    return by_suffix


def write_frame(frame: pd.DataFrame, path: Path, fmt: str | None = None) -> Path:
    """Write ``frame`` (without its index) to ``path`` as CSV or Parquet (:func:`export_format`).

    Returns ``path``. Raises :class:`~copilot_quant.errors.ConfigError` for an unknown format and
    :class:`~copilot_quant.errors.JournalError` when the file cannot be written.
    """
    kind = export_format(path, fmt)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
    except OSError as exc:
        raise JournalError(
            f"cannot write the export {path}: {exc.strerror or exc}; choose a writable path"
        ) from exc
    return path
