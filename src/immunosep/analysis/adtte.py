"""ADTTE: time-to-event parameters, one row per analysed patient and parameter.

Parameters (``paramcd``): ``OS28`` and ``OS90`` (one per protocol mortality day: time to death from day 1,
censored at the last contact or at the horizon), and ``SIDFREV`` (time to reversal of sepsis-induced immune
dysfunction among assessable patients, censored at the last draw of the stratum's marker). ``aval`` is in
days, ``cnsr`` is 1 when censored and 0 for an event (CDISC ADaM ADTTE convention).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

KEEP = ("usubjid", "siteid", "stratum", "arm")


def os_paramcd(day: int) -> str:
    """Parameter code of overall survival to ``day`` (``OS28``)."""
    return f"OS{day}"


def derive_param_os(adsl: pd.DataFrame, horizon_day: int) -> pd.DataFrame:
    """Overall survival to ``horizon_day``: death on or before it is an event at ``death_day``; otherwise the
    patient is censored at ``min(last_contact_day, horizon_day)`` (a patient alive beyond the horizon at the
    horizon). The first possible time is day 1."""
    for col in (*KEEP, "analysed", "death_day", "last_contact_day"):
        if col not in adsl.columns:
            raise ImmunoSepError(f"derive_param_os needs ADSL column {col!r}")
    a = adsl.loc[adsl["analysed"] == 1]
    death = pd.to_numeric(a["death_day"], errors="coerce").to_numpy(float)
    last = pd.to_numeric(a["last_contact_day"], errors="coerce").fillna(1.0).to_numpy(float)
    event = death <= horizon_day
    aval = np.where(event, death, np.minimum(np.maximum(last, 1.0), horizon_day))
    out = a.loc[:, list(KEEP)].copy()
    out["paramcd"] = os_paramcd(horizon_day)
    out["param"] = f"Time to death within {horizon_day} days (days)"
    out["aval"] = aval
    out["cnsr"] = (~event).astype("int8")
    return out.reset_index(drop=True)


def derive_param_sidf_reversal(adsl: pd.DataFrame) -> pd.DataFrame:
    """Time to SIDF reversal among assessable patients (``sidf_reversal`` not empty): the reversal day is an
    event; a patient who did not reverse is censored at the last draw of the stratum's marker."""
    for col in (*KEEP, "analysed", "sidf_reversal", "sidf_reversal_day", "sidf_last_draw_day"):
        if col not in adsl.columns:
            raise ImmunoSepError(f"derive_param_sidf_reversal needs ADSL column {col!r}")
    a = adsl.loc[(adsl["analysed"] == 1) & adsl["sidf_reversal"].notna()]
    event = (a["sidf_reversal"] == 1).to_numpy(bool)
    aval = np.where(
        event,
        pd.to_numeric(a["sidf_reversal_day"], errors="coerce").to_numpy(float),
        pd.to_numeric(a["sidf_last_draw_day"], errors="coerce").to_numpy(float),
    )
    out = a.loc[:, list(KEEP)].copy()
    out["paramcd"] = "SIDFREV"
    out["param"] = "Time to reversal of sepsis-induced immune dysfunction (days)"
    out["aval"] = aval
    out["cnsr"] = (~event).astype("int8")
    return out.reset_index(drop=True)


def derive_adtte(adsl: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """ADTTE: OS for every protocol mortality day, then SIDFREV, sorted by ``paramcd`` and ``usubjid``."""
    parts = [derive_param_os(adsl, d) for d in protocol.endpoints.mortality.days]
    parts.append(derive_param_sidf_reversal(adsl))
    adtte = pd.concat(parts, ignore_index=True)
    return adtte.sort_values(["paramcd", "usubjid"], kind="stable").reset_index(drop=True)
