"""ADAE: one row per treatment-emergent adverse event of an analysed patient.

Variables follow CDISC ADaM ADAE names in lower case: ``aeseq`` (sequence within patient), ``astdy`` (onset
study day), ``aesoc`` / ``aedecod`` (MedDRA system-organ class and preferred term), ``aeser`` (0/1),
``aerel`` (relatedness as recorded), ``arelgr1`` ("related" for probably/possibly related, "not related"
otherwise: docs/requirements.md "Reports", Table 3), ``aeexp`` (0/1 expected), ``susar`` (0/1), plus the
patient's ``siteid``, ``stratum`` and ``arm`` from ADSL.
"""

from __future__ import annotations

import pandas as pd

from immunosep.analysis.raw import RELATED_LEVELS
from immunosep.errors import ImmunoSepError

RELATED = "related"
NOT_RELATED = "not related"


def derive_adae(adsl: pd.DataFrame, adverse_events: pd.DataFrame) -> pd.DataFrame:
    """ADAE for the analysed patients of ``adsl``; events of other patients are dropped."""
    for col in ("usubjid", "siteid", "stratum", "arm", "analysed"):
        if col not in adsl.columns:
            raise ImmunoSepError(f"derive_adae needs ADSL column {col!r}")
    keys = adsl.loc[adsl["analysed"] == 1, ["usubjid", "siteid", "stratum", "arm"]]
    ae = adverse_events.merge(keys, on="usubjid", how="inner")
    ae = ae.sort_values(["usubjid", "onset_day", "soc_name", "pt_name"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame(
        {
            "usubjid": ae["usubjid"].astype(str),
            "siteid": ae["siteid"].astype(str),
            "stratum": ae["stratum"].astype(str),
            "arm": ae["arm"].astype(str),
            "aeseq": ae.groupby("usubjid").cumcount() + 1,
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
