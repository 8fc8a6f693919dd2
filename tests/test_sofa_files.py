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


def _mixed_days(n: int, seed: int) -> pd.DataFrame:
    """Every kind of column a Parquet file brings: floats with nulls, nullable ints, booleans with nulls,
    unit alternatives, and an id column that must pass untouched."""
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "usubjid": [f"S01-{i:04d}" for i in range(n)],
            "pao2_kpa": rng.uniform(6, 25, n),
            "fio2": rng.uniform(0.3, 1.0, n),
            "ventilated": pd.array(rng.random(n) < 0.5, dtype="boolean"),
            "platelets_1e3_ul": rng.uniform(5, 400, n),
            "bilirubin_umol_l": rng.uniform(5, 300, n),
            "map_mmhg": rng.uniform(40, 110, n),
            "norepinephrine_ug_kg_min": rng.uniform(0, 0.6, n),
            "gcs": pd.array(rng.integers(3, 16, n), dtype="Int64"),
            "creatinine_mg_dl": rng.uniform(0.3, 8, n),
            "urine_ml_day": rng.uniform(0, 3000, n),
        }
    )
    for col in frame.columns[1:]:
        frame.loc[rng.random(n) < 0.1, col] = None
    return frame


@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_parquet_columns_go_to_numpy_with_the_frame_kernels_result(tmp_path: Path, chunk_rows: int) -> None:
    """Arrow buffers read directly (nulls from the validity bitmap, slices at an offset) score exactly
    as the pandas frame does, column for column."""
    days = _mixed_days(300, 5)
    inp, outp = tmp_path / "in.parquet", tmp_path / "out.parquet"
    days.to_parquet(inp, index=False)
    score_file(inp, outp, chunk_rows=chunk_rows)
    got, want = pd.read_parquet(outp), score_sofa_frame(days)
    for col in ("sofa_respiration", "sofa_cns", "sofa_liver", "sofa_total"):
        assert got[col].tolist() == want[col].tolist(), col
    assert got["sofa_missing"].astype(str).tolist() == want["sofa_missing"].tolist()
    assert got["usubjid"].tolist() == days["usubjid"].tolist()


def test_arrow_columns_as_numpy_keep_nulls_offsets_and_types() -> None:
    import numpy as np
    import pyarrow as pa

    from immunosep.sofa_files import _arrow_numpy

    sliced = pa.array([1.5, None, 2.5, None, 7.0, 8.0, None, 1.0, 2.0, 3.0]).slice(3)
    cases = [
        (pa.chunked_array([[1.0, None], [3.0]]), [1.0, np.nan, 3.0]),
        (pa.chunked_array([[1, 2], [None]]), [1.0, 2.0, np.nan]),
        (pa.chunked_array([[True, None, False]]), [1.0, np.nan, 0.0]),
        (sliced, [np.nan, 7.0, 8.0, np.nan, 1.0, 2.0, 3.0]),
    ]
    flags = pa.array([True, False, True, True, False, False, True, False, True, True, False])
    cases += [
        (pa.array([1.25, None, 0.1], type=pa.float32()), [1.25, np.nan, float(np.float32(0.1))]),
        (pa.array([-3, None, 127], type=pa.int8()), [-3.0, np.nan, 127.0]),
        (pa.array([7, 65535], type=pa.uint16()), [7.0, 65535.0]),
        (
            pa.array([None, True, False, None, True, True, False, True, True, None]).slice(5),
            [1, 0, 1, 1, np.nan],
        ),
    ]
    for column, want in cases:
        got = _arrow_numpy(column)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, np.array(want))
    # booleans without nulls stay booleans (the kernel reads them as 0/1), at any bit offset
    for start in (0, 3, 9):
        got = _arrow_numpy(flags.slice(start))
        assert got.dtype == np.bool_
        assert got.tolist() == flags.slice(start).to_pylist()
    assert _arrow_numpy(pa.array(["1.5", None])).tolist() == ["1.5", None]


def test_parquet_scoring_imports_neither_pandas_nor_pyarrow_compute(tmp_path: Path) -> None:
    """pyarrow's ``to_numpy`` imports pandas and its ``cast`` pyarrow.compute: a third of a second each
    of the one-second ``immunosep sofa --input`` (issue 21). Booleans, integers and floats with nulls."""
    import subprocess
    import sys

    days = _mixed_days(50, 3).drop(columns=["usubjid"])
    inp, outp = tmp_path / "in.parquet", tmp_path / "out.parquet"
    days.to_parquet(inp, index=False)
    code = (
        "import sys; from pathlib import Path; from immunosep.sofa_files import score_file; "
        f"score_file(Path({str(inp)!r}), Path({str(outp)!r}), chunk_rows=20); "
        "print(sorted(m for m in ('pandas', 'pyarrow.compute') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_text_in_a_parquet_column_is_refused_with_its_row(tmp_path: Path) -> None:
    inp, outp = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pd.DataFrame({"gcs": ["15", "14", "fifteen"]}).to_parquet(inp, index=False)
    with pytest.raises(
        ImmunoSepError, match=r"column gcs has a non-numeric value 'fifteen' \(first offending row 3\)"
    ):
        score_file(inp, outp)
    assert not outp.exists()


def test_scoring_parquet_does_not_import_pandas(tmp_path: Path) -> None:
    """pandas costs a third of the one-second budget of ``immunosep sofa --input`` on a million rows."""
    import subprocess
    import sys

    inp = tmp_path / "in.parquet"
    _mixed_days(50, 1).to_parquet(inp, index=False)
    code = (
        "import sys\nfrom pathlib import Path\nfrom immunosep.sofa_files import score_file\n"
        f"score_file(Path({str(inp)!r}), Path({str(tmp_path / 'out.parquet')!r}))\n"
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
