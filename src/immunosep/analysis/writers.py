"""Writing the analysis datasets: CSV, Parquet and SAS transport (XPT), each with a data dictionary.

XPT files are SAS transport version 8 (``pyreadstat.write_xport``), which keeps the variable names of up to
32 characters (version 5 would truncate them to 8); the variable labels are the dictionary's labels. Empty
0/1 values are written as empty cells in CSV and as SAS missing (``.``) in XPT.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyreadstat

from immunosep.analysis.dictionary import data_dictionary
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

FORMATS = ("csv", "parquet", "xpt")


def _for_xpt(dataset: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float64 (nullable ints are not SAS types), text as str without NaN."""
    out = pd.DataFrame(index=dataset.index)
    for col in dataset.columns:
        series = dataset[col]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            out[col] = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            out[col] = series.fillna("").astype(str)
    return out.reset_index(drop=True)


def write_dataset(
    name: str, dataset: pd.DataFrame, out_dir: Path, protocol: Protocol, formats: tuple[str, ...] = FORMATS
) -> dict[str, Path]:
    """Write one dataset as ``<name>.csv|.parquet|.xpt`` plus ``<name>_dictionary.csv``; returns the paths."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ImmunoSepError(f"unknown dataset format(s) {sorted(unknown)}; choose from {FORMATS}")
    out_dir.mkdir(parents=True, exist_ok=True)
    dictionary = data_dictionary(dataset, protocol)
    paths: dict[str, Path] = {}
    if "csv" in formats:
        paths["csv"] = out_dir / f"{name}.csv"
        dataset.to_csv(paths["csv"], index=False)
    if "parquet" in formats:
        paths["parquet"] = out_dir / f"{name}.parquet"
        dataset.reset_index(drop=True).to_parquet(paths["parquet"], index=False)
    if "xpt" in formats:
        paths["xpt"] = out_dir / f"{name}.xpt"
        labels = dict(zip(dictionary["variable"], (lbl[:40] for lbl in dictionary["label"]), strict=True))
        pyreadstat.write_xport(
            _for_xpt(dataset),
            str(paths["xpt"]),
            file_label=name.upper(),
            column_labels=labels,
            table_name=name.upper()[:8],
            file_format_version=8,
        )
    paths["dictionary"] = out_dir / f"{name}_dictionary.csv"
    dictionary.to_csv(paths["dictionary"], index=False)
    return paths


def write_datasets(
    datasets: Mapping[str, pd.DataFrame],
    out_dir: Path,
    protocol: Protocol,
    formats: tuple[str, ...] = FORMATS,
) -> dict[str, dict[str, Path]]:
    """Write every dataset of ``datasets`` (name -> frame) into ``out_dir``."""
    return {name: write_dataset(name, frame, out_dir, protocol, formats) for name, frame in datasets.items()}
