"""journal.export: the export format comes from the file name or ``fmt``; bad ones say how to fix them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.errors import ConfigError
from copilot_quant.journal.export import export_format, write_frame


@pytest.mark.parametrize(
    ("name", "kind"), [("a.csv", "csv"), ("a.CSV", "csv"), ("a.parquet", "parquet"), ("a.pq", "parquet")]
)
def test_the_format_comes_from_the_suffix(name: str, kind: str) -> None:
    assert export_format(Path(name)) == kind


def test_fmt_overrides_the_suffix(tmp_path: Path) -> None:
    written = write_frame(pd.DataFrame({"x": [1, 2]}), tmp_path / "table.txt", fmt="csv")
    assert pd.read_csv(written)["x"].tolist() == [1, 2]


def test_an_unknown_suffix_names_both_the_file_suffixes_and_fmt() -> None:
    with pytest.raises(ConfigError) as caught:
        export_format(Path("out/x.xlsx"))
    message = str(caught.value)
    assert "'out/x.xlsx'" in message
    assert "name the file *.csv or *.parquet" in message  # all a CLI user can do
    assert "fmt='csv'" in message  # and what a Python caller can do instead


def test_a_bad_fmt_names_the_accepted_values() -> None:
    with pytest.raises(
        ConfigError, match="fmt='xlsx' is not an export format; pass fmt='csv' or fmt='parquet'"
    ):
        export_format(Path("x.csv"), "xlsx")
