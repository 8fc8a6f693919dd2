"""Export of the locked trial as SDTM (SDTMIG 3.4): SAS transport v5 (XPT), CSV and Parquet per dataset.

The datasets are built by :mod:`immunosep.conduct.sdtm` (DM, DS, EX, EC, PR, AE, LB, RS, SE, SV, the trial
design domains TS, TA, TE, TV, TI and SUPPDM/SUPPEX/SUPPAE); USUBJID is
:func:`immunosep.conduct.cdisc_ids.usubjid`, the one ADaM uses. Each dataset is written as
``<name>.xpt`` (transport version 5, the version FDA and PMDA accept: names <= 8 characters, labels <= 40,
a dataset label), ``<name>.csv`` and ``<name>.parquet``; ``define.xml`` (Define-XML 2.1, with its
stylesheet ``define2-1.xsl``; :mod:`immunosep.conduct.sdtm.define_xml`) describes every dataset and
variable, and ``define.csv``/``define.json`` list every variable with its label, type and origin as plain
tables (docs/conduct.md explains them).

A blinded export (the default, and the only one a blinded role can ask for) has no arm variables, masks the
treatment name and drops the dose; which variables are sealed or masked is
:mod:`immunosep.conduct.blinding`'s rule.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyreadstat
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, trial
from immunosep.conduct.access_log import log_access
from immunosep.conduct.define_xml import write_define
from immunosep.conduct.permissions import can, require
from immunosep.conduct.sdtm import DATASETS, sdtm_frames
from immunosep.conduct.sdtm.define_xml import sdtm_define
from immunosep.conduct.sdtm.design import SDTMIG_VERSION
from immunosep.conduct.trial import protocol_of
from immunosep.errors import AccessDenied, ImmunoSepError

#: XPT v5 limits (SAS transport version 5): variable and dataset names, labels, character values in bytes.
XPT_NAME_MAX, XPT_LABEL_MAX, XPT_CHAR_MAX = 8, 40, 200

#: dataset -> variable -> (label, type): the data dictionary as a plain mapping (from the SDTM metadata).
VARIABLES: dict[str, dict[str, tuple[str, str]]] = {
    name: {v.name: (v.label, v.type) for v in d.variables} for name, d in DATASETS.items()
}

__all__ = ["VARIABLES", "ExportResult", "export_sdtm", "sdtm_frames", "write_xpt"]


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    blinded: bool
    rows: dict[str, int]
    files: tuple[Path, ...]


def ascii_text(value: str) -> str:
    """``value`` in ASCII: accents dropped (``Anämie`` -> ``Anamie``), any other non-ASCII character ``?``."""
    if value.isascii():
        return value
    plain = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    return plain.encode("ascii", "replace").decode("ascii")


def write_xpt(df: pd.DataFrame, path: Path, name: str) -> list[str]:
    """Write one dataset as SAS transport version 5 with its dataset and variable labels.

    Transport v5 text is ASCII (FDA's Technical Conformance Guide; readers decode other bytes differently,
    and ``pandas.read_sas`` drops rows after one), so character values are written through
    :func:`ascii_text`; the variables where that changed a value are returned (the CSV and Parquet files
    keep the text as entered). Refuses (ImmunoSepError) what version 5 cannot hold, rather than letting a
    reader truncate it.
    """
    spec = DATASETS[name]
    df = df.copy()
    changed = []
    for column in df.columns:
        if df[column].dtype == object:
            ascii_values = df[column].map(ascii_text)
            if not ascii_values.equals(df[column]):
                changed.append(f"{name}.{column}")
                df[column] = ascii_values
    if len(name) > XPT_NAME_MAX or len(spec.label) > XPT_LABEL_MAX:
        raise ImmunoSepError(f"dataset {name} ({spec.label!r}) exceeds the XPT v5 name/label limits")
    labels: list[str | None] = []
    for column in df.columns:
        label = spec.variable(column).label
        if len(column) > XPT_NAME_MAX or len(label) > XPT_LABEL_MAX:
            raise ImmunoSepError(f"{name}.{column} ({label!r}) exceeds the XPT v5 name/label limits")
        if df[column].dtype == object and any(len(str(x).encode()) > XPT_CHAR_MAX for x in df[column]):
            raise ImmunoSepError(f"{name}.{column} has a value over {XPT_CHAR_MAX} bytes: shorten it")
        labels.append(label)
    pyreadstat.write_xport(
        df, str(path), file_format_version=5, table_name=name, file_label=spec.label, column_labels=labels
    )
    return changed


def _csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The CSV shows whole numbers without ``.0`` (XPT and Parquet keep SAS's 8-byte floats)."""
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype.kind == "f" and bool((values.dropna() % 1 == 0).all()):
            out[column] = values.astype("Int64")
    return out


def export_sdtm(
    session: Session, actor: Actor | None, out_dir: str | Path, *, unblinded: bool = False
) -> ExportResult:
    """Write the locked trial to ``out_dir``: ``<dataset>.xpt|.csv|.parquet``, ``define.xml`` (+ stylesheet)
    and ``define.csv|.json``.

    ``actor=None`` is the command line (database access). A blinded role may export blinded data only.
    """
    if actor is not None:
        require(actor, "export")
        if unblinded and not can(actor, "export_unblinded"):
            raise AccessDenied(f"the {actor.role} role may export blinded data only")
    if trial(session).locked_at is None:
        raise ImmunoSepError("the trial is not locked; lock it (`immunosep lock --db URL`) before export")
    frames = sdtm_frames(session, blinded=not unblinded)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    define_rows = []
    transliterated: list[str] = []
    for name, df in frames.items():
        stem = out / name.lower()
        xpt, csv, parquet = stem.with_suffix(".xpt"), stem.with_suffix(".csv"), stem.with_suffix(".parquet")
        transliterated += write_xpt(df, xpt, name)
        _csv_frame(df).to_csv(csv, index=False)
        df.to_parquet(parquet, index=False)
        files += [xpt, csv, parquet]
        for column in df.columns:
            v = DATASETS[name].variable(column)
            define_rows.append(
                {
                    "dataset": name,
                    "dataset_label": DATASETS[name].label,
                    "variable": column,
                    "label": v.label,
                    "type": v.type,
                    "origin": v.origin,
                }
            )
    define_csv, define_json = out / "define.csv", out / "define.json"
    pd.DataFrame(define_rows).to_csv(define_csv, index=False)
    define_json.write_text(
        json.dumps(
            {
                "study": trial(session).code,
                "standard": f"SDTMIG {SDTMIG_VERSION}",
                "blinded": not unblinded,
                "xpt_ascii_transliterated": transliterated,
                "variables": define_rows,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    files += [define_csv, define_json]
    files += write_define(sdtm_define(frames, protocol_of(session), blinded=not unblinded), out)
    rows = {k: len(v) for k, v in frames.items()}
    if unblinded:  # who took the arms out of the database, and when (conduct.access_log)
        log_access(session, actor, "export", "export_unblinded", detail={"format": "sdtm", "rows": rows})
    return ExportResult(out, not unblinded, rows, tuple(files))
