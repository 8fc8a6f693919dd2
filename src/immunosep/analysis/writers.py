"""Writing the analysis datasets as a submission package: CSV, Parquet and SAS transport v5 (XPT), each
with a data dictionary.

What is written is the ADaM view of :mod:`immunosep.analysis.adam` (ADaMIG 1.3 names of 8 characters or
fewer, labels of 40 or fewer, Y/N flags, SAS dates with the DATE9. format), not the internal frames the plan
uses. XPT files are SAS transport version 5 (``pyreadstat.write_xport(..., file_format_version=5)``), the
version FDA and PMDA accept, with the dataset label and every variable's label and format; character
variables are at most 200 bytes. ``define.xml`` (Define-XML 2.1, :mod:`immunosep.analysis.define_xml`) and
its stylesheet describe the XPT files. CSV and Parquet carry the same values (dates as SAS date numbers, so the
three formats agree); an empty value is an empty cell in CSV and SAS missing (``.``) or blank in XPT.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyreadstat

from immunosep.analysis.adam import MAX_CHAR, AdamDataset, adam_view, char_length
from immunosep.analysis.define_xml import adam_define
from immunosep.analysis.dictionary import adam_dictionary
from immunosep.conduct.define_xml import Document, write_define
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

FORMATS = ("csv", "parquet", "xpt")


def xpt_frame(dataset: AdamDataset) -> pd.DataFrame:
    """The values as SAS sees them: Num as float64, Char as str (empty for missing), at most 200 bytes."""
    out = pd.DataFrame(index=dataset.data.index)
    for v in dataset.variables:
        series = dataset.data[v.name]
        if v.kind == "Num":
            out[v.name] = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            out[v.name] = series.astype(object).where(series.notna(), "").astype(str)
            if char_length(out[v.name]) > MAX_CHAR:
                raise ImmunoSepError(f"{dataset.name}.{v.name} has a value longer than {MAX_CHAR} bytes")
    return out.reset_index(drop=True)


def write_adam(
    dataset: AdamDataset, out_dir: Path, protocol: Protocol, formats: tuple[str, ...] = FORMATS
) -> dict[str, Path]:
    """Write one ADaM dataset as ``<name>.csv|.parquet|.xpt`` plus ``<name>_dictionary.csv``."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ImmunoSepError(f"unknown dataset format(s) {sorted(unknown)}; choose from {FORMATS}")
    out_dir.mkdir(parents=True, exist_ok=True)
    name = dataset.name.lower()
    frame = xpt_frame(dataset)
    paths: dict[str, Path] = {}
    if "csv" in formats:
        paths["csv"] = out_dir / f"{name}.csv"
        frame.to_csv(paths["csv"], index=False)
    if "parquet" in formats:
        paths["parquet"] = out_dir / f"{name}.parquet"
        frame.to_parquet(paths["parquet"], index=False)
    if "xpt" in formats:
        paths["xpt"] = out_dir / f"{name}.xpt"
        pyreadstat.write_xport(
            frame,
            str(paths["xpt"]),
            file_label=dataset.label,
            column_labels={v.name: v.label for v in dataset.variables},
            table_name=dataset.name,
            file_format_version=5,
            variable_format={v.name: v.fmt for v in dataset.variables if v.fmt},
        )
    paths["dictionary"] = out_dir / f"{name}_dictionary.csv"
    adam_dictionary(dataset, protocol).to_csv(paths["dictionary"], index=False)
    return paths


def write_datasets(
    datasets: Mapping[str, pd.DataFrame],
    out_dir: Path,
    protocol: Protocol,
    formats: tuple[str, ...] = FORMATS,
    *,
    blinded: bool = False,
    documents: tuple[Document, ...] = (),
) -> dict[str, dict[str, Path]]:
    """Write the ADaM view of ``datasets`` (internal name -> frame, ADSL required) into ``out_dir``, with
    ``define.xml`` and its stylesheet when XPT files are written (key ``"define"`` of the result).

    ``blinded`` writes the blinded package (no ARMCD/ARM, treatment variables masked; see
    :mod:`immunosep.analysis.adam`); ``documents`` (hrefs relative to ``out_dir``) are linked from define.xml
    as supplemental documents when their files exist."""
    view = adam_view(datasets, protocol, blinded=blinded)
    paths = {name: write_adam(ds, out_dir, protocol, formats) for name, ds in view.items()}
    if "xpt" in formats:  # define.xml points at the XPT files
        frames = {name: xpt_frame(ds) for name, ds in view.items()}
        define, stylesheet = write_define(
            adam_define(view, frames, protocol, blinded=blinded, documents=documents), out_dir
        )
        paths["define"] = {"xml": define, "xsl": stylesheet}
    return paths
