"""ADAE: one row per treatment-emergent adverse event of an analysed patient.

Variables follow CDISC ADaM ADAE names in lower case: ``aeseq`` (sequence within patient, numbered by
:func:`immunosep.conduct.cdisc_ids.aeseq_order` like SDTM AESEQ: onset day, then record id), ``astdy`` (onset
study day), ``aesoc`` / ``aedecod`` (MedDRA system-organ class and preferred term), ``aeser`` (0/1),
``aerel`` (relatedness as recorded), ``arelgr1`` ("related" for probably/possibly related, "not related"
otherwise: docs/requirements.md "Reports", Table 3), ``aeexp`` (0/1 expected), ``susar`` (0/1), ``aeacn``
(action taken, CDISC ACN), ``aeout`` (outcome, CDISC OUT), ``aendy`` (end study day, empty while ongoing),
the seriousness criteria ``aesdth``, ``aeslife``, ``aeshosp``, ``aesdisab``, ``aescong``, ``aesmie`` (0/1,
empty where not collected: events recorded before they were, or a frame without them), plus the
patient's ``siteid``, ``stratum`` and ``arm`` from ADSL.
"""

from __future__ import annotations

import pandas as pd

from immunosep.analysis.raw import RELATED_LEVELS
from immunosep.clinical.adverse_events import SERIOUSNESS_CRITERIA
from immunosep.conduct.cdisc_ids import aeseq_order
from immunosep.errors import ImmunoSepError

RELATED = "related"
NOT_RELATED = "not related"


def derive_adae(adsl: pd.DataFrame, adverse_events: pd.DataFrame) -> pd.DataFrame:
    """ADAE for the analysed patients of ``adsl``; events of other patients are dropped."""
    for col in ("usubjid", "siteid", "stratum", "arm", "analysed"):
        if col not in adsl.columns:
            raise ImmunoSepError(f"derive_adae needs ADSL column {col!r}")
    keys = adsl.loc[adsl["analysed"] == 1, ["usubjid", "siteid", "stratum", "arm"]]
    # A hand-built frame without the store's record ids numbers a subject's same-day events in frame order.
    ae_ids = adverse_events.get("ae_id")
    record_id = ae_ids if ae_ids is not None else pd.Series(range(len(adverse_events)))
    events = adverse_events.assign(  # a copy with the new column (the input frame is not modified)
        aeseq=aeseq_order(
            adverse_events["usubjid"].astype(str).tolist(),
            pd.to_numeric(adverse_events["onset_day"], errors="coerce").tolist(),
            pd.to_numeric(record_id).astype(int).tolist(),
        )
    )
    ae = events.merge(keys, on="usubjid", how="inner")
    ae = ae.sort_values(["usubjid", "aeseq"], kind="stable", ignore_index=True)
    columns = {
        "usubjid": ae["usubjid"].astype(str),
        "siteid": ae["siteid"].astype(str),
        "stratum": ae["stratum"].astype(str),
        "arm": ae["arm"].astype(str),
        "aeseq": ae["aeseq"].astype(int),
        "astdy": pd.to_numeric(ae["onset_day"], errors="coerce"),
        "aesoc": ae["soc_name"].astype(str),
        "aedecod": ae["pt_name"].astype(str),
        "aeser": ae["serious"].astype(bool).astype("int8"),
        "aerel": ae["relatedness"].astype(str),
        "arelgr1": ae["relatedness"].isin(RELATED_LEVELS).map({True: RELATED, False: NOT_RELATED}),
        "aeexp": ae["expected"].astype(bool).astype("int8"),
        "susar": ae["susar"].astype(bool).astype("int8"),
        "aeacn": _optional_text(ae, "action"),
        "aeout": _optional_text(ae, "outcome"),
        "aendy": pd.to_numeric(
            ae.get("end_day", pd.Series(index=ae.index, dtype="float64")), errors="coerce"
        ),
    }
    for name, (variable, _) in SERIOUSNESS_CRITERIA.items():
        columns[variable.lower()] = _optional_flag(ae, f"crit_{name}")
    # Each column is a new Series of this function's: kept as it is, one block each, instead of pandas'
    # stacking copy of every value into one block per dtype.
    return pd.DataFrame(columns, copy=False)


def _optional_text(frame: pd.DataFrame, column: str) -> pd.Series:
    """A text column of the events, "" where missing or absent from the frame."""
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), "").astype(str)


def _optional_flag(frame: pd.DataFrame, column: str) -> pd.Series:
    """A yes/no column of the events as nullable 0/1 (NA where not collected or absent from the frame)."""
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="Int8")
    values = frame[column].astype(object).where(frame[column].notna(), None)
    return pd.Series([None if v is None else int(bool(v)) for v in values], index=frame.index, dtype="Int8")
