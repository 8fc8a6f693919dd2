"""ADAE: one row per treatment-emergent adverse event of an analysed patient.

Variables follow CDISC ADaM ADAE names in lower case: ``aeseq`` (sequence within patient, numbered by
:func:`immunosep.conduct.cdisc_ids.aeseq_order` like SDTM AESEQ: onset day, then record id), ``astdy`` (onset
study day), ``aesoc`` / ``aedecod`` (MedDRA system-organ class and preferred term), ``aeser`` (0/1),
``aerel`` (relatedness as recorded), ``arelgr1`` ("related" for probably/possibly related, "not related"
otherwise: docs/requirements.md "Reports", Table 3), ``aeexp`` (0/1 expected), ``susar`` (0/1), plus the
patient's ``siteid``, ``stratum`` and ``arm`` from ADSL.
"""

from __future__ import annotations

import pandas as pd

from immunosep.analysis.raw import RELATED_LEVELS
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
    events = adverse_events.reset_index(drop=True)
    # A hand-built frame without the store's record ids numbers a subject's same-day events in frame order.
    record_id = events["ae_id"] if "ae_id" in events.columns else pd.Series(range(len(events)))
    events = events.assign(
        aeseq=aeseq_order(
            events["usubjid"].astype(str).tolist(),
            pd.to_numeric(events["onset_day"], errors="coerce").tolist(),
            pd.to_numeric(record_id).astype(int).tolist(),
        )
    )
    ae = events.merge(keys, on="usubjid", how="inner")
    ae = ae.sort_values(["usubjid", "aeseq"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame(
        {
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
        }
    )
    return out
