"""Journal tables as pandas frames, and their export to CSV or Parquet (pandas is imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from copilot_quant.errors import ConfigError, JournalError

__all__ = ["FORMATS", "table_frame", "write_frame"]

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


def write_frame(frame: pd.DataFrame, path: Path, fmt: str | None = None) -> Path:
    kind = (fmt or FORMATS.get(path.suffix.lower(), "")).strip().lower()
    if kind not in ("csv", "parquet"):
        raise ConfigError(
            f"cannot tell the export format of {str(path)!r}; name the file *.csv or *.parquet, "
            "or pass fmt='csv' or fmt='parquet'"
        )
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
