"""The laboratory values of Table 1 (day 1 of the daily CRF), from the database to ADSL.

Expected values are worked by hand: 34.2 umol/L bilirubin = 2.0 mg/dL (1 mg/dL = 17.1 umol/L); 176.8 umol/L
creatinine = 2.0 mg/dL (1 mg/dL = 88.4 umol/L).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from handmade import handmade_raw

from immunosep.analysis.adsl import derive_adsl, derive_vars_baseline_labs
from immunosep.analysis.extract import extract_raw_trial
from immunosep.conduct import crf
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.store.db import session_scope

LABS = ("pao2_fio2_baseline", "platelets_baseline", "bilirubin_baseline", "creatinine_baseline")


def test_baseline_labs_come_from_day_1_in_mg_dl(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    inv = trial.actors["inv1"]
    pid = enroll()
    day1 = crf.DailyInputs(
        pao2_fio2_mmhg=180.0,
        ventilated=True,
        platelets_1e3_ul=90.0,
        bilirubin=34.2,
        bilirubin_unit="umol/L",
        creatinine=176.8,
        creatinine_unit="umol/L",
    )
    day2 = crf.DailyInputs(pao2_fio2_mmhg=300.0, platelets_1e3_ul=200.0, bilirubin=0.5, creatinine=0.9)
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, pid, 1, day1)
        crf.record_day(s, inv, pid, 2, day2)
    raw, protocol = extract_raw_trial(trial.url)
    adsl = derive_adsl(raw, protocol).set_index("usubjid")
    got = adsl.loc[pid, list(LABS)].astype(float).to_numpy()
    np.testing.assert_allclose(got, [180.0, 90.0, 2.0, 2.0], rtol=0, atol=1e-9)


def test_derive_vars_baseline_labs_keeps_missing_and_withdrawn_empty() -> None:
    p = default_protocol()
    raw = handmade_raw()
    daily = raw.daily_sofa.copy()
    day1 = daily["day"] == 1
    daily.loc[day1 & (daily["usubjid"] == "S01-0001"), "platelets_1e3_ul"] = 120.0
    daily.loc[(daily["day"] == 2) & (daily["usubjid"] == "S01-0002"), "platelets_1e3_ul"] = 55.0  # not day 1
    adsl = derive_adsl(replace(raw, daily_sofa=daily), p).set_index("usubjid")
    assert adsl.loc["S01-0001", "platelets_baseline"] == 120.0
    assert pd.isna(adsl.loc["S01-0002", "platelets_baseline"])
    assert adsl.loc[:, "creatinine_baseline"].isna().all()  # the column was not in the daily frame
    withdrawn = adsl.loc[adsl["analysed"] == 0]
    assert len(withdrawn) and withdrawn[list(LABS)].isna().all().all()


def test_derive_vars_baseline_labs_refuses_to_overwrite() -> None:
    p = default_protocol()
    adsl = derive_adsl(handmade_raw(), p)
    with pytest.raises(ImmunoSepError, match="overwrite"):
        derive_vars_baseline_labs(adsl, handmade_raw().daily_sofa, p)
