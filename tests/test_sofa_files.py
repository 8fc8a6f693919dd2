"""Scoring a file of patient-days without the command line: progress, chunking and the no-partial rule.

The command line's tests (tests/commands/test_bedside_cli.py) cover formats, units and error messages.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from immunosep.clinical.sofa import score_sofa_frame
from immunosep.errors import ImmunoSepError
from immunosep.sofa_files import score_file, table_format


def _days(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "usubjid": [f"S01-{i:04d}" for i in range(n)],
            "gcs": [15 - i % 13 for i in range(n)],
            "platelets_1e3_ul": [40.0 + 10 * (i % 20) for i in range(n)],
        }
    )


@pytest.mark.parametrize(("suffix", "total"), [("parquet", 25), ("csv", None)])
def test_progress_is_told_per_chunk_and_the_output_equals_the_kernel(
    tmp_path: Path, suffix: str, total: int | None
) -> None:
    days = _days(25)
    inp, outp = tmp_path / f"in.{suffix}", tmp_path / "out.parquet"
    if suffix == "csv":
        days.to_csv(inp, index=False)
    else:
        days.to_parquet(inp, index=False)
    told: list[tuple[int, int | None]] = []
    rows = score_file(inp, outp, chunk_rows=10, progress=lambda done, n: told.append((done, n)))
    assert rows == 25
    # Parquet knows its length before the first chunk; CSV does not
    assert told == [(0, total), (10, total), (20, total), (25, total)]
    got = pd.read_parquet(outp)
    assert got["sofa_total"].tolist() == score_sofa_frame(days)["sofa_total"].tolist()
    assert not (tmp_path / "out.parquet.part").exists()


def test_a_bad_row_leaves_no_output_and_names_its_row(tmp_path: Path) -> None:
    inp, outp = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"gcs": [15, 14, 13, 12, 20]}).to_csv(inp, index=False)
    with pytest.raises(ImmunoSepError, match="row 5"):
        score_file(inp, outp, chunk_rows=2)
    assert not outp.exists() and not (tmp_path / "out.csv.part").exists()


def test_formats_from_the_file_name() -> None:
    assert table_format(Path("a.CSV"), "input") == "csv"
    assert table_format(Path("a.pq"), "output") == "parquet"
    with pytest.raises(ImmunoSepError, match=r"\.csv or \.parquet"):
        table_format(Path("a.xlsx"), "input")
