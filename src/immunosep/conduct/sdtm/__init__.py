"""SDTM (SDTMIG 3.4) datasets of the locked trial, one module per class of domain.

:func:`sdtm_frames` builds every dataset as a data frame whose columns follow
:data:`~immunosep.conduct.sdtm.metadata.DATASETS`; a blinded export drops or masks the variables
:mod:`immunosep.conduct.blinding` seals. ``conduct.export`` writes them as XPT v5, CSV and Parquet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from immunosep.conduct.access import trial
from immunosep.conduct.blinding import export_masks, export_variables
from immunosep.conduct.sdtm import design, events, findings, interventions, subjects
from immunosep.conduct.sdtm.base import load_context
from immunosep.conduct.sdtm.metadata import DATASETS, Dataset

__all__ = ["DATASETS", "Dataset", "frame", "sdtm_frames"]

#: The SDTMIG's sort keys of each dataset (its first rows are the same for every subject-level domain).
KEYS: dict[str, tuple[str, ...]] = {
    "DM": ("USUBJID",),
    "DS": ("USUBJID", "DSSEQ"),
    "EX": ("USUBJID", "EXSEQ"),
    "EC": ("USUBJID", "ECSEQ"),
    "PR": ("USUBJID", "PRSEQ"),
    "AE": ("USUBJID", "AESEQ"),
    "LB": ("USUBJID", "LBSEQ"),
    "RS": ("USUBJID", "RSSEQ"),
    "SE": ("USUBJID", "SESEQ"),
    "SV": ("USUBJID", "VISITNUM"),
    "TA": ("ARMCD", "TAETORD"),
    "TE": ("ETCD",),
    "TV": ("VISITNUM",),
    "TI": ("IETESTCD",),
    "TS": ("TSPARMCD", "TSSEQ"),
    "SUPPDM": ("USUBJID", "QNAM"),
    "SUPPEX": ("USUBJID", "IDVARVAL", "QNAM"),
    "SUPPAE": ("USUBJID", "IDVARVAL", "QNAM"),
}


def frame(name: str, rows: Iterable[dict[str, Any]], *, blinded: bool) -> pd.DataFrame:
    """One dataset: its variables in the metadata's order (less the sealed ones), typed Char or Num."""
    spec = DATASETS[name]
    columns = export_variables(name, spec.names(), blinded=blinded)
    df = pd.DataFrame(list(rows), columns=columns)
    for variable, mask in export_masks(name, blinded=blinded).items():
        if variable in df:
            df[variable] = mask
    for v in spec.variables:
        if v.name not in df:
            continue
        if v.type == "Num":
            df[v.name] = pd.to_numeric(df[v.name], errors="raise").astype("float64")
        else:
            df[v.name] = df[v.name].fillna("").astype(str)
    return df.reset_index(drop=True)


def sdtm_frames(session: Session, *, blinded: bool) -> dict[str, pd.DataFrame]:
    """Every SDTM dataset of the trial, by name (DM first, trial design domains last)."""
    ctx = load_context(session, blinded=blinded)
    dm, suppdm = subjects.dm(ctx)
    ex, suppex, ec = interventions.ex_ec(ctx, session)
    pr = interventions.pr(ctx, session)
    ae, suppae = events.ae(ctx, session)
    lb = findings.lb(ctx, session)
    rs = findings.rs(ctx, session)
    visits: dict[str, set[int]] = {}
    for rows in (lb, rs, pr):
        for r in rows:
            visits.setdefault(r["USUBJID"], set()).add(int(r["VISITNUM"]))
    rows_by_name: dict[str, list[dict[str, Any]]] = {
        "DM": dm,
        "DS": subjects.ds(ctx),
        "EX": ex,
        "EC": ec,
        "PR": pr,
        "AE": ae,
        "LB": lb,
        "RS": rs,
        "SE": subjects.se(ctx),
        "SV": subjects.sv(ctx, visits),
        "TS": design.ts(ctx, locked_at=trial(session).locked_at, subjects=len(dm)),
        "TA": design.ta(ctx),
        "TE": design.te(ctx),
        "TV": design.tv(ctx),
        "TI": design.ti(ctx),
        "SUPPDM": suppdm,
        "SUPPEX": suppex,
        "SUPPAE": suppae,
    }
    out = {}
    for name, rows in rows_by_name.items():
        df = frame(name, rows, blinded=blinded)
        keys = [k for k in KEYS[name] if k in df]
        out[name] = df.sort_values(keys, kind="stable").reset_index(drop=True)
    return out
